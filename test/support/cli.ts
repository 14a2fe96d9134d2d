import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

/** The built `corral` command line, run with this Node. */
export const CLI = path.resolve("clients/ts/dist/cli/main.js");

/** Runs `corral ARGS` to its end: exit code and everything it printed. */
export function corral(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? "");
  });
}

/** A `corral serve` process, its log (JSON lines on stderr) and its exit. */
export interface Serve {
  readonly process: ChildProcess;
  log(): string;
  /** Resolves with the first match of `re` in the log, once it appears. */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  readonly exited: Promise<number | null>;
}

/** Starts `corral serve` with `env` on top of this process's environment. */
export function startServe(env: Record<string, string>): Serve {
  const serve = spawn(process.execPath, [CLI, "serve"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let log = "";
  serve.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => serve.on("close", r));
  return {
    process: serve,
    log: () => log,
    async waitFor(re) {
      for (let m = re.exec(log); ; m = re.exec(log)) {
        if (m) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    exited,
  };
}

/** Runs a program to its end in `cwd` with `env` added: its exit code and stdout and stderr as one text. */
export function runTool(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): Promise<{ code: number | null; said: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let said = "";
    child.stdout.on("data", (d: Buffer) => (said += d.toString()));
    child.stderr.on("data", (d: Buffer) => (said += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, said }));
  });
}
