import { parseArgs } from "node:util";
import { createClient } from "../index.js";
import { clientOptions } from "./client-options.js";

const seconds = (ms: bigint | undefined) => `${Number(ms ?? 0n) / 1000} s`;
const mib = (b: bigint | undefined) => `${Number(b ?? 0n) / 2 ** 20} MiB`;

/** `corral profiles [--server ADDR]`: the profiles the server offers, their limits and mounts. */
export async function profiles(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { server: { type: "string" } } });
  const client = createClient(
    values.server ?? process.env.CORRAL_SERVER ?? "127.0.0.1:50051",
    clientOptions(process.env),
  );
  try {
    for (const p of (await client.listProfiles()).profiles) {
      const l = p.defaultLimits;
      process.stdout.write(`${p.name}: ${p.description}\n`);
      process.stdout.write(
        `  limits: wall ${seconds(l?.wallTimeMs)}, cpu ${seconds(l?.cpuTimeMs)}, memory ${mib(l?.memoryBytes)}, ` +
          `processes ${l?.processes ?? 0}, output ${mib(l?.outputBytes)}\n`,
      );
      for (const m of p.mounts) process.stdout.write(`  ${m.path}${m.writable ? " (rw)" : ""}: ${m.why}\n`);
    }
    return 0;
  } catch (err) {
    const e = err as { details?: string; message: string };
    process.stderr.write(`corral: ${e.details ?? e.message}\n`);
    return 125;
  } finally {
    client.close();
  }
}
