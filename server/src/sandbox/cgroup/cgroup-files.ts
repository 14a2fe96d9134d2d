import { readFile, rmdir, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** Reads a control file, or undefined when it does not exist (ENODEV: its cgroup is being removed). */
export async function readControl(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENODEV") return undefined;
    throw err;
  }
}

/** Writes one value to a control file (the kernel takes one write per value). */
export async function writeControl(file: string, value: string | number): Promise<void> {
  await writeFile(file, String(value));
}

/** A single-number control file, or undefined when absent. */
export async function readNumber(file: string): Promise<number | undefined> {
  const text = await readControl(file);
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** A flat-keyed file ("key value" per line, as cpu.stat, memory.events, pids.events). */
export function parseKeyed(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && Number.isFinite(Number(value))) out.set(key, Number(value));
  }
  return out;
}

/** The pids listed in a cgroup.procs file. */
async function readPids(procsFile: string): Promise<number[]> {
  const text = (await readControl(procsFile)) ?? "";
  return text.split("\n").filter(Boolean).map(Number);
}

/**
 * SIGKILLs every pid in `procsFiles` until all are empty. A task may fork while we read, so
 * this loops; a pid that is gone already is fine.
 */
export async function killUntilEmpty(procsFiles: readonly string[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = (await Promise.all(procsFiles.map(readPids))).flat();
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`tasks ${pids.join(", ")} survive SIGKILL in ${procsFiles.join(", ")}`);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await sleep(5);
  }
}

/** rmdir of a cgroup, retried while the kernel still counts a dying task (EBUSY). */
export async function removeCgroupDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 200) throw err;
      await sleep(5);
    }
  }
}
