import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Limits, Usage } from "../../domain.js";
import type { CgroupLimits, CgroupSource, CgroupUsage, JobCgroup } from "../cgroup/types.js";
import { enterHolder } from "../holder-ns.js";
import type { Mount, Profile } from "../profiles.js";
import { resolveExecutable } from "../resolve-executable.js";
import type { OutputSink, Runner, RunResult, RunSpec } from "../runner.js";
import { buildNsjailConfig, type SandboxSpec } from "./build-config.js";
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

/** Where a warm sandbox's start program (server/native/warm-start.c) is bound in the jail. */
const WARM_START = "/.corral/warm-start";

/** A warm sandbox whose nsjail has not started warm-start by then is given up. */
const READY_TIMEOUT_MS = 10_000;

/** Options of the nsjail runner. */
export interface NsjailRunnerOptions {
  readonly nsjailPath: string;
  /** Job cgroups; without them, memory, process and CPU-time limits are not enforced. */
  readonly cgroups: CgroupSource | undefined;
  /** The built warm-start program; needed only to prepare sandboxes ahead (`prepare`). */
  readonly warmStartPath?: string;
  readonly logger: Logger;
}

/** A sandbox to build ahead of its job (see NsjailRunner.prepare). */
export interface WarmSetup {
  /** Unique among runs on this host (names its config file). */
  readonly id: string;
  readonly profile: Profile;
  readonly workspace: RunSpec["workspace"];
  readonly privateDir: string;
  /** Its own cgroup (never a job's), or none where the host has no delegated cgroup. */
  readonly cgroup: JobCgroup | undefined;
  /** The most a job may ask for: the sandbox's rlimits start there, and each job lowers them. */
  readonly ceilings: Limits;
  /** The cgroup limits it waits with: a job that asks for others has them written first. */
  readonly cgroupLimits: CgroupLimits;
}

/** A sandbox built ahead, its program not chosen yet. */
export interface PreparedSandbox {
  /**
   * Runs one program in it, the only one it will ever run: `spec.profile` and
   * `spec.workspace` must be those it was prepared with. Removes its cgroup after.
   */
  run(spec: RunSpec, sink: OutputSink, signal: AbortSignal): Promise<RunResult>;
  /** False once nsjail has ended: nothing can run in it any more. */
  alive(): boolean;
  /** Resolves when its nsjail ends (after its run, or if it dies while waiting). */
  readonly ended: Promise<void>;
  /** Ends it (unused, or after its run) and removes its cgroup; safe to call twice. */
  discard(): Promise<void>;
}

/** Runs programs in fresh sandboxes, and builds sandboxes ahead of their jobs. */
export interface NsjailRunner extends Runner {
  /**
   * Builds a sandbox now whose program comes later: nsjail makes every namespace and mount,
   * applies seccomp and rlimits, and starts warm-start, which waits on fd 4 for its one job.
   * `run` then lowers the cgroup limits and rlimits to the job's and hands the program over:
   * it starts without waiting for nsjail's set-up, in a sandbox nothing ran in before.
   */
  prepare(setup: WarmSetup): Promise<PreparedSandbox>;
}

/**
 * Runs each program with a fresh nsjail in ONCE mode, inside a cgroup of its own. nsjail gets
 * four pipes: 0-2 are the program's own stdio (nsjail hands them straight to it,
 * nsjail-notes.md §5) and 3 carries nsjail's log (`--log_fd 3`, so it never mixes into the
 * program's stderr); a prepared sandbox's gets a fifth, fd 4, for its job. The config is a file in the job's private folder: nsjail 3.6 cannot
 * parse its config from a pipe (it reads the file more than once), so `-C /dev/fd/N` fails.
 * `--log_fd` precedes `-C` because `-C` copies the whole config over flags given before it.
 */
export function createNsjailRunner(opts: NsjailRunnerOptions): NsjailRunner {
  return {
    run: (spec, sink, signal) => runOnce(opts, spec, sink, signal),
    prepare: (setup) => prepare(opts, setup),
  };
}

/** nsjail's rlimits for a run's limits (RLIMIT_CPU: a backstop behind the service's CPU watch). */
function rlimitsOf(limits: Limits): SandboxSpec["rlimits"] {
  return {
    cpuSeconds: Math.ceil(limits.cpuTimeMs / 1000) + 1,
    fileSizeMiB: Math.ceil(limits.fileSizeBytes / MiB),
    openFiles: limits.openFiles,
    stackMiB: Math.ceil(limits.stackBytes / MiB),
  };
}

/** Writes the nsjail config of one sandbox into the run's private folder; returns its path. */
async function writeConfig(
  dir: string,
  id: string,
  run: { profile: Profile; workspace: RunSpec["workspace"]; binds?: RunSpec["binds"] },
  program: Pick<SandboxSpec, "execPath" | "argv" | "env" | "rlimits" | "passFds">,
): Promise<string> {
  const binds: Mount[] = (run.binds ?? []).map((b) => ({ type: "bind", ...b, rw: false, why: "given for this run" }));
  const configPath = path.join(dir, `nsjail-${id}.cfg`);
  const config = buildNsjailConfig({
    ...program,
    mounts: [...run.profile.mounts, ...binds],
    workspaceDir: run.workspace.dir,
    workspaceReadOnly: run.workspace.readOnly,
    jailIds: { uid: process.getuid!(), gid: process.getgid!(), outside: run.workspace.uid },
    workdir: WORKDIR,
    tmpBytes: run.profile.tmpBytes,
    tmpInodes: run.profile.tmpInodes,
    seccompPolicy: run.profile.seccomp,
  });
  await writeFile(configPath, config, { mode: 0o600 });
  return configPath;
}

/** The program's absolute path in the sandbox, or the run's result when it has none or was cancelled. */
async function resolveProgram(
  spec: RunSpec,
  env: Record<string, string>,
  stops: MutableStops,
): Promise<{ execPath: string } | { result: RunResult }> {
  const argv0 = spec.argv[0] ?? "";
  const execPath = await resolveExecutable(argv0, env.PATH ?? "", spec.profile.mounts);
  if (execPath !== undefined && !stops.cancelled) return { execPath };
  const errors = execPath ? [] : [`program '${argv0}' not found in the sandbox's PATH (${env.PATH ?? ""})`];
  const facts = { nsjailExitCode: null, log: { ...parseNsjailLog(""), errors }, limits: spec.limits, stops };
  return { result: result(facts, 0, { stdout: 0, stderr: 0 }, undefined) };
}

const freshStops = (signal: AbortSignal): MutableStops => ({
  wallTime: false,
  cpuTime: false,
  output: false,
  cancelled: signal.aborted,
});

async function runOnce(
  opts: NsjailRunnerOptions,
  spec: RunSpec,
  sink: OutputSink,
  signal: AbortSignal,
): Promise<RunResult> {
  const { limits } = spec;
  const env = { ...spec.profile.env, ...spec.env };
  const stops = freshStops(signal);
  const program = await resolveProgram(spec, env, stops);
  if ("result" in program) return program.result;
  const configPath = await writeConfig(spec.privateDir, spec.runId, spec, {
    execPath: program.execPath,
    argv: spec.argv,
    env,
    rlimits: rlimitsOf(limits),
  });
  // nsjail itself is one task of the cgroup, so the program gets `processes` of its own.
  const cgroup = await opts.cgroups?.take();
  try {
    await cgroup?.setLimits({ memoryBytes: limits.memoryBytes, pids: limits.processes + 1 });
    const nsjail = launch(opts, configPath, spec.workspace.holderPid, cgroup, false);
    const run = await supervise(opts, spec, sink, signal, nsjail, nsjail.startedAt, cgroup, stops);
    const executedAt = nsjail.executedAt();
    return { ...run, ...(executedAt && { setupMs: executedAt - nsjail.startedAt }) };
  } finally {
    await cgroup?.remove();
  }
}

async function prepare(opts: NsjailRunnerOptions, w: WarmSetup): Promise<PreparedSandbox> {
  if (!opts.warmStartPath) throw new Error("the nsjail runner was given no warm-start program");
  const configPath = await writeConfig(
    w.privateDir,
    w.id,
    { ...w, binds: [{ src: opts.warmStartPath, dst: WARM_START }] },
    // Its rlimits start at the ceilings; warm-start lowers them to the job's.
    { execPath: WARM_START, argv: ["corral-warm-start"], env: {}, rlimits: rlimitsOf(w.ceilings), passFds: [3, 4] },
  );
  const { cgroup } = w;
  await cgroup?.setLimits(w.cgroupLimits);
  const nsjail = launch(opts, configPath, w.workspace.holderPid, cgroup, true);
  const alive = (): boolean => nsjail.child.exitCode === null && nsjail.child.signalCode === null;
  // Safe to call twice, and after a run: nsjail is gone by then, and so is the cgroup.
  const discard = async (): Promise<void> => {
    if (alive()) nsjail.child.kill("SIGKILL");
    await cgroup?.remove();
  };
  // Ready once nsjail has started warm-start; the counters from then on are the job's.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, READY_TIMEOUT_MS)));
  await Promise.race([nsjail.executed, late]);
  clearTimeout(timer);
  const before = alive() && nsjail.executedAt() !== undefined ? await cgroup?.usage() : undefined;
  if (!alive() || nsjail.executedAt() === undefined) {
    await discard();
    const log = parseNsjailLog(nsjail.log());
    const why = alive() ? `not ready in ${READY_TIMEOUT_MS} ms` : (log.errors[0] ?? "no error logged");
    throw new Error(`nsjail could not make a warm sandbox: ${why}`);
  }
  let used = false;
  return {
    alive,
    discard,
    ended: nsjail.exited.then(() => undefined),
    async run(spec, sink, signal) {
      if (used) throw new Error("a prepared sandbox runs one program only");
      const own = spec.workspace.holderPid === w.workspace.holderPid && spec.profile === w.profile;
      if (!own || spec.workspace.readOnly || spec.binds?.length)
        throw new Error(
          "a prepared sandbox runs a program of its own profile, in its own writable workspace, with no binds",
        );
      used = true;
      const { limits } = spec;
      const env = { ...spec.profile.env, ...spec.env };
      const stops = freshStops(signal);
      try {
        const program = await resolveProgram(spec, env, stops);
        if ("result" in program) return program.result;
        const wanted = { memoryBytes: limits.memoryBytes, pids: limits.processes + 1 };
        if (wanted.memoryBytes !== w.cgroupLimits.memoryBytes || wanted.pids !== w.cgroupLimits.pids)
          await cgroup?.setLimits(wanted);
        nsjail.jobPipe!.end(jobMessage(program.execPath, spec.argv, env, limits));
        const counted = cgroup && before && countedFrom(cgroup, before);
        const run = await supervise(opts, spec, sink, signal, nsjail, performance.now(), counted, stops);
        return { ...run, setupMs: 0 }; // none of it on the job's path
      } finally {
        await discard();
      }
    },
  };
}

/** The job as warm-start reads it: NUL-terminated fields (see server/native/warm-start.c). */
function jobMessage(execPath: string, argv: readonly string[], env: Record<string, string>, limits: Limits): Buffer {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  // The same values as nsjail's for a sandbox built for the job (whole seconds and MiB).
  const r = rlimitsOf(limits);
  const fields = [execPath, `${argv.length}`, ...argv, `${vars.length}`, ...vars, `${r.cpuSeconds}`];
  fields.push(`${r.fileSizeMiB * MiB}`, `${r.openFiles}`, `${r.stackMiB * MiB}`);
  // The request's checks refuse NUL already; a field holding one would shift the rest.
  if (fields.some((f) => f.includes("\0"))) throw new Error("a program's argv or environment holds a NUL");
  return Buffer.from(fields.map((f) => `${f}\0`).join(""), "utf8");
}

/** The job cgroup counting from `before` on: a warm sandbox's set-up is not its job's. */
function countedFrom(cgroup: JobCgroup, before: CgroupUsage): JobCgroup {
  return {
    ...cgroup,
    cpuUsageUs: async () => (await cgroup.cpuUsageUs()) - before.cpuTotalUs,
    usage: async () => {
      const now = await cgroup.usage();
      return {
        ...now,
        cpuUserUs: now.cpuUserUs - before.cpuUserUs,
        cpuSystemUs: now.cpuSystemUs - before.cpuSystemUs,
        cpuTotalUs: now.cpuTotalUs - before.cpuTotalUs,
        oomKills: now.oomKills - before.oomKills,
        pidsMaxHits: now.pidsMaxHits - before.pidsMaxHits,
      };
    },
  };
}

/** An nsjail started: its pipes, and what its log has said so far. */
interface Launched {
  readonly child: ChildProcess;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** fd 4 of a prepared sandbox: where its job goes. */
  readonly jobPipe: Writable | undefined;
  readonly startedAt: number;
  /** nsjail's log so far (capped). */
  log(): string;
  /** When nsjail logged the program's execve (the end of sandbox set-up), if it has. */
  executedAt(): number | undefined;
  /** Resolves once nsjail has logged that execve, or has ended. */
  readonly executed: Promise<void>;
  /** Resolves when nsjail has exited, with the time it did. */
  readonly exited: Promise<number>;
  /** Resolves when nsjail has exited and its pipes are closed: its exit code, or why it never started. */
  readonly closed: Promise<{ code: number | null; spawnError?: string }>;
}

/** Starts nsjail with its config in the holder's namespaces, having joined the cgroup first. */
function launch(
  opts: NsjailRunnerOptions,
  configPath: string,
  holderPid: number,
  cgroup: JobCgroup | undefined,
  withJobPipe: boolean,
): Launched {
  // nsjail is made in the namespaces of the job's workspace holder, where the workspace is
  // mounted; there the service's uid is 0, so the credentials are kept as they are.
  const nsjail = [...enterHolder(holderPid), opts.nsjailPath, "--log_fd", "3", "-C", configPath];
  const startedAt = performance.now();
  const [command, ...args] = cgroup
    ? ["/bin/sh", "-c", JOIN_CGROUPS, "corral-join", ...cgroup.joinFiles, "--", ...nsjail]
    : nsjail;
  const stdio = withJobPipe ? ["pipe", "pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe", "pipe"];
  const child = spawn(command!, args, { stdio: stdio as ["pipe", "pipe", "pipe"], env: {}, cwd: "/" });
  const [stdin, stdout, stderr, logPipe, jobPipe] = child.stdio as unknown as [
    Writable,
    Readable,
    Readable,
    Readable,
    Writable | undefined,
  ];
  // A program that exits without reading its stdin closes the pipe under us: not an error.
  stdin.on("error", () => undefined);
  jobPipe?.on("error", () => undefined);
  let log = "";
  let executedAt: number | undefined;
  let executed!: () => void;
  const executedPromise = new Promise<void>((resolve) => (executed = resolve));
  // Listened for from the start: a prepared sandbox's nsjail may end before its job comes.
  const exited = new Promise<number>((resolve) => child.once("exit", () => resolve(performance.now())));
  const closed = new Promise<{ code: number | null; spawnError?: string }>((resolve) => {
    child.once("error", (err) => resolve({ code: null, spawnError: err.message }));
    child.once("close", (code) => resolve({ code }));
  });
  void exited.then(() => executed());
  void closed.then(() => executed());
  logPipe.setEncoding("utf8");
  logPipe.on("data", (s: string) => {
    if (log.length < LOG_CAP) log += s;
    // On the whole log: the line may arrive in two reads.
    if (executedAt === undefined && log.includes("Executing '")) {
      executedAt = performance.now();
      executed();
    }
  });
  return {
    child,
    stdin,
    stdout,
    stderr,
    jobPipe,
    startedAt,
    log: () => log,
    executedAt: () => executedAt,
    executed: executedPromise,
    exited,
    closed,
  };
}

/**
 * Feeds the program's stdin, pumps its output into `sink`, enforces the wall time (from
 * `started`), CPU time and output limits, and waits until nsjail and everything in the cgroup
 * are gone; then reads the counters and classifies how the run ended.
 */
async function supervise(
  opts: NsjailRunnerOptions,
  spec: RunSpec,
  sink: OutputSink,
  signal: AbortSignal,
  nsjail: Launched,
  started: number,
  cgroup: JobCgroup | undefined,
  stops: MutableStops,
): Promise<RunResult> {
  const { limits } = spec;
  const { child, stdin, stdout, stderr } = nsjail;
  const counts = { stdout: 0, stderr: 0 };
  if (spec.stdinStream) void feed(stdin, spec.stdin, spec.stdinStream);
  else stdin.end(spec.stdin);
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
  void nsjail.exited.then((at) => {
    endedAt = at;
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

  try {
    const [{ code, spawnError }] = await Promise.all([nsjail.closed, pump("stdout", stdout), pump("stderr", stderr)]);
    // A prepared sandbox's nsjail may have ended before its job came: no time ran.
    const wallTimeMs = Math.max(0, (endedAt ?? performance.now()) - started);
    cpuWatch?.stop();
    // The program's init is gone, so its namespace is too; anything still in the cgroup
    // (nsjail killed from outside, say) goes now, before the counters are read.
    await killing;
    await cgroup?.killAll();
    const usage = await cgroup?.usage();
    const facts: RunFacts = {
      nsjailExitCode: code,
      log: parseNsjailLog(nsjail.log()),
      limits,
      stops,
      spawnError,
      ...(usage && {
        cgroup: { cpuTimeMs: usage.cpuTotalUs / 1000, oomKills: usage.oomKills, pidsMaxHits: usage.pidsMaxHits },
      }),
    };
    return { ...result(facts, wallTimeMs, counts, usage), endedAt: endedAt ?? performance.now() };
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
