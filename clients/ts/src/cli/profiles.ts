import { parseArgs } from "node:util";
import { withClient } from "./with-client.js";

const seconds = (ms: bigint | undefined) => `${Number(ms ?? 0n) / 1000} s`;
const mib = (b: bigint | undefined) => `${Number(b ?? 0n) / 2 ** 20} MiB`;

/** `corral profiles [--server ADDR]`: the profiles the server offers, their limits and mounts. */
export async function profiles(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { server: { type: "string" } } });
  return withClient(values.server, async (client) => {
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
  });
}
