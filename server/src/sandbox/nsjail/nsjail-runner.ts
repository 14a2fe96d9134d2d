import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { OutputSink, Runner, RunResult, RunSpec } from "../runner.js";
import { resolveExecutable } from "../resolve-executable.js";
import { buildNsjailConfig } from "./build-config.js";
import { classifyOutcome } from "./classify-outcome.js";
import { parseNsjailLog } from "./parse-log.js";

/** Working directory inside every sandbox. */
export const WORKDIR = "/workspace";

/** nsjail's log is kept up to this many bytes; it is a few hundred in a normal run. */
const LOG_CAP = 64 * 1024;

/** After SIGTERM nsjail kills its jail and exits; past this it gets SIGKILL. */
const KILL_GRACE_MS = 2000;

/** Options of the nsjail runner. */
export interface NsjailRunnerOptions {
  readonly nsjailPath: string;
  readonly logger: Logger;
}

/**
 * Runs each program with a fresh nsjail in ONCE mode. nsjail gets four pipes: 0-2 are the
 * program's own stdio (nsjail hands them straight to it, nsjail-notes.md §5) and 3 carries
 * nsjail's log (`--log_fd 3`, so it never mixes into the program's stderr). The config is a
 * file in the job's private folder: nsjail 3.6 cannot parse its config from a pipe (it reads
 * the file more than once), so `-C /dev/fd/N` fails. `--log_fd` precedes `-C` because `-C`
 * copies the whole config over flags given before it except the log set-up it reads at once.
 */
export function createNsjailRunner(opts: NsjailRunnerOptions): Runner {
  return {
    run: (spec, sink, signal) => runOnce(opts, spec, sink, signal),
  };
}

async function runOnce(
  opts: NsjailRunnerOptions,
  spec: RunSpec,
  sink: OutputSink,
  signal: AbortSignal,
): Promise<RunResult> {
  const env = { ...spec.profile.env, ...spec.env };
  const argv0 = spec.argv[0] ?? "";
  const execPath = await resolveExecutable(argv0, env.PATH ?? "", spec.profile.mounts);
  const started = performance.now();
  const counts = { stdout: 0, stderr: 0 };
  const finish = (
    facts: Omit<Parameters<typeof classifyOutcome>[0], "wallTimeMs" | "outputLimitBytes">,
  ): RunResult => ({
    outcome: classifyOutcome({
      ...facts,
      wallTimeMs: spec.limits.wallTimeMs,
      outputLimitBytes: spec.limits.outputBytes,
    }),
    usage: {
      wallTimeMs: Math.round(performance.now() - started),
      stdoutBytes: counts.stdout,
      stderrBytes: counts.stderr,
      outputTruncated: facts.outputLimitExceeded,
    },
  });
  const noRun = { nsjailExitCode: null, wallTimeExceeded: false, outputLimitExceeded: false, cancelled: false };
  if (execPath === undefined) {
    const problem = `program '${argv0}' not found in the sandbox's PATH (${env.PATH ?? ""})`;
    return finish({ ...noRun, log: { ...parseNsjailLog(""), errors: [problem] } });
  }
  if (signal.aborted) return finish({ ...noRun, cancelled: true, log: parseNsjailLog("") });

  const config = buildNsjailConfig({
    execPath,
    argv: spec.argv,
    env,
    mounts: spec.profile.mounts,
    workspaceHostDir: spec.workspaceHostDir,
    workdir: WORKDIR,
    tmpBytes: spec.profile.tmpBytes,
  });
  const configPath = path.join(spec.privateDir, "nsjail.cfg");
  await writeFile(configPath, config, { mode: 0o600 });
  const child = spawn(opts.nsjailPath, ["--log_fd", "3", "-C", configPath], {
    stdio: ["pipe", "pipe", "pipe", "pipe"],
    env: {},
    cwd: "/",
  });
  const [stdin, stdout, stderr, logPipe] = child.stdio as unknown as [Writable, Readable, Readable, Readable];
  // A program that exits without reading its stdin closes the pipe under us: not an error.
  stdin.on("error", () => undefined);
  stdin.end(spec.stdin);

  let log = "";
  logPipe.setEncoding("utf8");
  logPipe.on("data", (s: string) => {
    if (log.length < LOG_CAP) log += s;
  });

  const stop = { wallTime: false, output: false, cancelled: false };
  let killTimer: NodeJS.Timeout | undefined;
  const kill = (): void => {
    if (child.exitCode !== null || child.signalCode !== null || killTimer) return;
    // SIGTERM: nsjail SIGKILLs the jail's init (the whole pid namespace with it) and reaps it.
    child.kill("SIGTERM");
    killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
  };
  const wallTimer = setTimeout(() => {
    stop.wallTime = true;
    kill();
  }, spec.limits.wallTimeMs);
  const onAbort = (): void => {
    stop.cancelled = true;
    kill();
  };
  signal.addEventListener("abort", onAbort, { once: true });

  const pump = async (name: "stdout" | "stderr", from: Readable): Promise<void> => {
    for await (const chunk of from as AsyncIterable<Buffer>) {
      const room = spec.limits.outputBytes - counts.stdout - counts.stderr;
      if (stop.output || stop.cancelled) continue; // drain and discard after a stop
      const data = chunk.length > room ? chunk.subarray(0, room) : chunk;
      counts[name] += data.length;
      const more = data.length > 0 ? sink.write(name, data) : true;
      if (chunk.length > room) {
        stop.output = true;
        kill();
      } else if (!more) {
        await sink.drained();
      }
    }
  };

  let spawnError: string | undefined;
  try {
    const exited = new Promise<number | null>((resolve) => {
      child.once("error", (err) => {
        spawnError = err.message;
        resolve(null);
      });
      child.once("close", (code) => resolve(code));
    });
    const [code] = await Promise.all([exited, pump("stdout", stdout), pump("stderr", stderr)]);
    return finish({
      nsjailExitCode: code,
      log: parseNsjailLog(log),
      wallTimeExceeded: stop.wallTime,
      outputLimitExceeded: stop.output,
      cancelled: stop.cancelled,
      spawnError,
    });
  } finally {
    clearTimeout(wallTimer);
    clearTimeout(killTimer);
    signal.removeEventListener("abort", onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
