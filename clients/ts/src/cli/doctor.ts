import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { checkHost, loadConfig } from "@corral/server";

/**
 * `corral doctor`: checks this host the way the service will use it, as the user who runs it,
 * and prints each missing piece with the command that fixes it. Exits 1 if anything is missing.
 */
export async function doctor(): Promise<number> {
  const config = loadConfig(process.env);
  const scratch = await mkdtemp(path.join(tmpdir(), "corral-doctor-"));
  try {
    const checks = await checkHost(config, scratch);
    for (const c of checks) process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}\n`);
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
