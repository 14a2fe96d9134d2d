import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Usage } from "../../domain.js";
import type { CgroupSource, CgroupUsage, JobCgroup } from "../cgroup/types.js";
import { enterHolder } from "../holder-ns.js";
import { resolveExecutable } from "../resolve-executable.js";
import type { OutputSink, Runner, RunResult, RunSpec } from "../runner.js";
import { buildNsjailConfig } from "./build-config.js";
import { classifyOutcome, type RunFacts, type Stops } from "./classify-outcome.js";
import { parseNsjailLog } from "./parse-log.js";
import { watchCpu } from "./watch-cpu.js";

/** Working directory inside every sandbox. */
const WORKDIR = "/workspace";

/** nsjail's log is kept up to this many bytes; it is a few hundred in a normal run. */
const LOG_CAP = 64 * 1024;

/** Without a cgroup, nsjail gets SIGTERM (it kills its jail) and this long before SIGKILL. */
const KILL_GRACE_MS = 2000;

const MiB = 1024 * 1024;

/**
 * Enters each cgroup given before `--`, then becomes nsjail: the jail must be in the job's
 * cgroup before nsjail clones it. A failure is written to nsjail's log fd in nsjail's own
 * line format, so the classifier reports it as a set-up failure.
 */
const JOIN_CGROUPS =
  'while [ "$1" != -- ]; do echo $$ 2>/dev/null >"$1" || { echo "[E][corral] cannot enter cgroup $1" >&3; exit 255; }; shift; done; shift; exec "$@"';

type MutableStops = { -readonly [K in keyof Stops]: Stops[K] };

/** Options of the nsjail runner. */
export interface NsjailRunnerOptions {
  readonly nsjailPath: string;
  /** Job cgroups; without them, memory, process and CPU-time limits are not enforced. */
  readonly cgroups: CgroupSource | undefined;
  readonly logger: Logger;
}

/**
 * Runs each program with a fresh nsjail in ONCE mode, inside a cgroup of its own. nsjail gets
 * four pipes: 0-2 are the program's own stdio (nsjail hands them straight to it,
 * nsjail-notes.md §5) and 3 carries nsjail's log (`--log_fd 3`, so it never mixes into the
 * program's stderr). The config is a file in the job's private folder: nsjail 3.6 cannot
 * parse its config from a pipe (it reads the file more than once), so `-C /dev/fd/N` fails.
 * `--log_fd` precedes `-C` because `-C` copies the whole config over flags given before it.
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
  const { limits } = spec;
  const env = { ...spec.profile.env, ...spec.env };
  const argv0 = spec.argv[0] ?? "";
  const execPath = await resolveExecutable(argv0, env.PATH ?? "", spec.profile.mounts);
  const counts = { stdout: 0, stderr: 0 };
  const stops: MutableStops = { wallTime: false, cpuTime: false, output: false, cancelled: signal.aborted };
  if (execPath === undefined || stops.cancelled) {
    const errors = execPath ? [] : [`program '${argv0}' not found in the sandbox's PATH (${env.PATH ?? ""})`];
    return result(
      { nsjailExitCode: null, log: { ...parseNsjailLog(""), errors }, limits, stops },
      0,
      counts,
      undefined,
    );
  }

  const configPath = path.join(spec.privateDir, `nsjail-${spec.runId}.cfg`);
  await writeFile(
    configPath,
    buildNsjailConfig({
      execPath,
      argv: spec.argv,
      env,
      mounts: [
        ...spec.profile.mounts,
        ...(spec.binds ?? []).map((b) => ({ type: "bind" as const, ...b, rw: false, why: "given for this run" })),
      ],
      workspaceDir: spec.workspace.dir,
      workspaceReadOnly: spec.workspace.readOnly,
      jailIds: { uid: process.getuid!(), gid: process.getgid!(), outside: spec.workspace.uid },
      workdir: WORKDIR,
      tmpBytes: spec.profile.tmpBytes,
      tmpInodes: spec.profile.tmpInodes,
      seccompPolicy: spec.profile.seccomp,
      rlimits: {
        cpuSeconds: Math.ceil(limits.cpuTimeMs / 1000) + 1,
        fileSizeMiB: Math.ceil(limits.fileSizeBytes / MiB),
        openFiles: limits.openFiles,
        stackMiB: Math.ceil(limits.stackBytes / MiB),
      },
    }),
    { mode: 0o600 },
  );
  // nsjail itself is one task of the cgroup, so the program gets `processes` of its own.
  const cgroup = await opts.cgroups?.take();
  try {
    await cgroup?.setLimits({ memoryBytes: limits.memoryBytes, pids: limits.processes + 1 });
    return await supervise(opts, spec, sink, signal, configPath, cgroup, stops, counts);
  } finally {
    await cgroup?.remove();
  }
}

async function supervise(
  opts: NsjailRunnerOptions,
  spec: RunSpec,
  sink: OutputSink,
  signal: AbortSignal,
  configPath: string,
  cgroup: JobCgroup | undefined,
  stops: MutableStops,
  counts: { stdout: number; stderr: number },
): Promise<RunResult> {
  const { limits } = spec;
  // nsjail is made in the namespaces of the job's workspace holder, where the workspace is
  // mounted; there the service's uid is 0, so the credentials are kept as they are.
  const nsjail = [...enterHolder(spec.workspace.holderPid), opts.nsjailPath, "--log_fd", "3", "-C", configPath];
  const started = performance.now();
  const [command, ...args] = cgroup
    ? ["/bin/sh", "-c", JOIN_CGROUPS, "corral-join", ...cgroup.joinFiles, "--", ...nsjail]
    : nsjail;
  const child = spawn(command!, args, { stdio: ["pipe", "pipe", "pipe", "pipe"], env: {}, cwd: "/" });
  const [stdin, stdout, stderr, logPipe] = child.stdio as unknown as [Writable, Readable, Readable, Readable];
  // A program that exits without reading its stdin closes the pipe under us: not an error.
  stdin.on("error", () => undefined);
  if (spec.stdinStream) void feed(stdin, spec.stdin, spec.stdinStream);
  else stdin.end(spec.stdin);

  let log = "";
  let executedAt: number | undefined;
  logPipe.setEncoding("utf8");
  logPipe.on("data", (s: string) => {
    if (log.length < LOG_CAP) log += s;
    // nsjail logs this line just before the program's execve: the end of sandbox set-up.
    if (executedAt === undefined && s.includes("Executing '")) executedAt = performance.now();
  });

  let killTimer: NodeJS.Timeout | undefined;
  let killing: Promise<void> | undefined;
  const kill = (): void => {
    if (cgroup) {
      // Everything in the job's cgroup at once, nsjail included: nothing can fork away. The
      // wrapper itself too, in case it has not joined the cgroup yet.
      child.kill("SIGKILL");
      const again = cgroup
        .killAll()
        .catch((err: unknown) => opts.logger.error({ err }, "could not empty a job cgroup"));
      killing = Promise.all([killing, again]).then(() => undefined);
      return;
    }
    if (child.exitCode !== null || child.signalCode !== null || killTimer) return;
    // SIGTERM: nsjail SIGKILLs the jail's init (the whole pid namespace with it) and reaps it.
    child.kill("SIGTERM");
    killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
  };
  const wallTimer = setTimeout(() => {
    stops.wallTime = true;
    kill();
  }, limits.wallTimeMs);
  const cpuWatch = cgroup
    ? watchCpu(
        () => cgroup.cpuUsageUs(),
        limits.cpuTimeMs,
        availableParallelism(),
        () => {
          stops.cpuTime = true;
          kill();
        },
      )
    : undefined;
  const onAbort = (): void => {
    stops.cancelled = true;
    kill();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort(); // aborted while the sandbox was being prepared
  // The run ends when nsjail does, not when a slow client has read the last output: stop the
  // clocks there, so that neither the wall timer nor the CPU watch fires on a finished run.
  let endedAt: number | undefined;
  child.once("exit", () => {
    endedAt = performance.now();
    clearTimeout(wallTimer);
    cpuWatch?.stop();
  });

  const pump = async (name: "stdout" | "stderr", from: Readable): Promise<void> => {
    for await (const chunk of from as AsyncIterable<Buffer>) {
      if (stops.output || stops.cancelled) continue; // drain and discard after a stop
      const room = limits.outputBytes - counts.stdout - counts.stderr;
      const data = chunk.length > room ? chunk.subarray(0, room) : chunk;
      counts[name] += data.length;
      const more = data.length > 0 ? sink.write(name, data) : true;
      if (chunk.length > room) {
        stops.output = true;
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
    const wallTimeMs = (endedAt ?? performance.now()) - started;
    cpuWatch?.stop();
    // The program's init is gone, so its namespace is too; anything still in the cgroup
    // (nsjail killed from outside, say) goes now, before the counters are read.
    await killing;
    await cgroup?.killAll();
    const usage = await cgroup?.usage();
    const facts: RunFacts = {
      nsjailExitCode: code,
      log: parseNsjailLog(log),
      limits,
      stops,
      spawnError,
      ...(usage && {
        cgroup: { cpuTimeMs: usage.cpuTotalUs / 1000, oomKills: usage.oomKills, pidsMaxHits: usage.pidsMaxHits },
      }),
    };
    return { ...result(facts, wallTimeMs, counts, usage), ...(executedAt && { setupMs: executedAt - started }) };
  } finally {
    clearTimeout(wallTimer);
    clearTimeout(killTimer);
    cpuWatch?.stop();
    signal.removeEventListener("abort", onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

/** Writes `first`, then each chunk as it comes (waiting while the pipe is full), then ends. */
async function feed(stdin: Writable, first: Uint8Array, more: AsyncIterable<Uint8Array>): Promise<void> {
  const write = async (chunk: Uint8Array): Promise<void> => {
    if (!stdin.writable) return;
    if (!stdin.write(chunk)) await Promise.race([once(stdin, "drain"), once(stdin, "close")]);
  };
  try {
    await write(first);
    for await (const chunk of more) {
      if (!stdin.writable) break; // the program is gone; stop reading the client's stdin
      await write(chunk);
    }
  } catch {
    // The stream's own failure (a bad message, a cancelled call) ends the job elsewhere.
  } finally {
    stdin.end();
  }
}

/** Outcome and usage of a run. nsjail is one task of the cgroup: its share is not subtracted. */
function result(
  facts: RunFacts,
  wallTimeMs: number,
  counts: { stdout: number; stderr: number },
  cg: CgroupUsage | undefined,
): RunResult {
  const ms = (us: number): number => Math.round(us / 1000);
  const usage: Usage = {
    wallTimeMs: Math.round(wallTimeMs),
    stdoutBytes: counts.stdout,
    stderrBytes: counts.stderr,
    outputTruncated: facts.stops.output,
    ...(cg && {
      cpuTimeMs: ms(cg.cpuTotalUs),
      cpuUserMs: ms(cg.cpuUserUs),
      cpuSystemMs: ms(cg.cpuSystemUs),
      peakMemoryBytes: cg.peakMemoryBytes,
      // pids.peak counts nsjail too; the program's own peak is one less.
      peakProcesses: cg.peakPids === undefined ? undefined : Math.max(0, cg.peakPids - 1),
    }),
  };
  return { outcome: classifyOutcome(facts), usage };
}
