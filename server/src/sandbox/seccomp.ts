import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";

/** Numbers of the x32 ABI's system calls start here (__X32_SYSCALL_BIT). */
const X32_BASE = 0x40000000;
/** x32 numbers in use: 0..547 in Linux 6.x (the x86-64 ones, then 512+ x32-only). */
const X32_COUNT = 548;

/**
 * Appended to every policy: kill any x32 call, so that nothing a policy denies comes back
 * through the x32 ABI (same architecture, number | 0x40000000). Kafel has no ranges, so the
 * numbers are listed; the filter grows by ~0.2 ms of compile time per sandbox start.
 */
const NO_X32 = `
POLICY corral_no_x32 {
  KILL_PROCESS { ${Array.from({ length: X32_COUNT }, (_, n) => `SYSCALL[${X32_BASE + n}]`).join(", ")} }
}
USE corral_no_x32
`;

/** Reads a profile's seccomp policy (a Kafel file relative to the profiles folder) and adds the x32 rule. */
export async function loadSeccompPolicy(profilesDir: string, file: string): Promise<string> {
  return (await readFile(path.join(profilesDir, file), "utf8")) + NO_X32;
}

/**
 * Compiles `policy` with nsjail by starting one trivial sandbox, so that a broken policy stops
 * the service at start-up instead of failing every job. Resolves to nsjail's complaint, or
 * undefined when it compiled.
 */
export function compileError(nsjailPath: string, policy: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(nsjailPath, ["-Mo", "--chroot", "/", "-q", "--seccomp_string", policy, "--", "/bin/true"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: {},
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", (e) => resolve(e.message));
    child.on("close", (code) => {
      const why = /Could not compile policy: (.*)/.exec(err)?.[1];
      resolve(code === 0 ? undefined : (why ?? (err.trim() || `nsjail exited with ${code}`)));
    });
  });
}
