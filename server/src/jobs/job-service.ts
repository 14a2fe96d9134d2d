import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { InvalidArgumentError, NotFoundError, ScratchFullError } from "../errors.js";
import type { Profile } from "../sandbox/profiles.js";
import type { OutputSink, Runner } from "../sandbox/runner.js";
import { createWorkspace, type HolderSource } from "../sandbox/scratch.js";
import type { JobUids } from "../sandbox/job-uids.js";
import type { WarmSource } from "../sandbox/warm-pool.js";
import type { JobQueue } from "./job-queue.js";
import { resolveLimits, type Ceilings } from "./resolve-limits.js";
import type {
  CollectedFile,
  JobEvent,
  JobRequest,
  LimitName,
  Limits,
  RequestedLimits,
  StepResult,
  TestResult,
  TestSummary,
} from "../domain.js";
import { runTests } from "./run-tests.js";
import type { Metrics } from "../metrics.js";

/** Where a job's events go; output events may ask the job to wait (backpressure). */
export interface JobEventSink {
  emit(event: JobEvent): boolean;
  drained(): Promise<void>;
}

/** What the job service needs. */
export interface JobServiceDeps {
  readonly queue: JobQueue;
  readonly runner: Runner;
  readonly profiles: ReadonlyMap<string, Profile>;
  readonly ceilings: Ceilings;
  /** Limits this host cannot enforce (no delegated cgroup): asking for one is refused. */
  readonly unenforceable: ReadonlySet<LimitName>;
  readonly scratchDir: string;
  /** Workspaces are overlays (the host can mount overlayfs in a user namespace) or copies. */
  readonly overlay: boolean;
  /** The uids jobs run as in their workspace holder's namespace. */
  readonly uids: JobUids;
  /** Workspace holders started ahead of their jobs. */
  readonly holders?: HolderSource;
  /** Sandboxes built ahead, which a job of one step and no files runs in without waiting. */
  readonly warm?: WarmSource;
  /** Most test cases one job may run at once. */
  readonly maxTestParallelism: number;
  readonly logger: Logger;
  /** Aborted when the server's shutdown grace is over: cancels every job, waiting or running. */
  readonly shutdown: AbortSignal;
  readonly metrics: Metrics;
}

/** How a job ended: the deciding step (none in a job of test cases only), every step that ran, and its test cases. */
export interface JobResult {
  readonly result?: StepResult;
  readonly steps: readonly StepResult[];
  readonly tests?: readonly TestResult[];
  readonly summary?: TestSummary;
}

/** Admits, runs and reports jobs. */
export interface JobService {
  /**
   * Checks the request, admits the job (or throws at once), runs it and resolves after the
   * `finished` event. `signal` cancels it, waiting or running. Its clean-up (its workspace)
   * may outlast this, and its run slot: see `cleanedUp`.
   */
  execute(
    request: JobRequest,
    sink: JobEventSink,
    signal: AbortSignal,
    stdin?: AsyncIterable<Uint8Array>,
  ): Promise<JobResult>;
  /** Resolves once every ended job's clean-up is done (shutdown waits for it). */
  cleanedUp(): Promise<void>;
}

/** Creates the job service. */
export function createJobService(deps: JobServiceDeps): JobService {
  const cleanups = new Set<Promise<void>>();
  return {
    async cleanedUp() {
      while (cleanups.size) await Promise.all(cleanups);
    },
    async execute(request, sink, signal, stdin) {
      const profile = deps.profiles.get(request.profile);
      if (!profile)
        throw new NotFoundError(
          `profile '${request.profile}' does not exist; this server has: ${[...deps.profiles.keys()].join(", ")}`,
        );
      const resolve: Resolve = (requested, field) =>
        resolveLimits(requested, profile.limits, deps.ceilings, deps.unenforceable, field);
      const limits = request.steps.map((s, i) => resolve(s.limits, `steps[${i}].limits`));
      const testLimits = request.tests && resolveTestLimits(request.tests, resolve, deps.maxTestParallelism);

      const admittedAt = performance.now();
      const jobId = randomUUID();
      const log = deps.logger.child({ jobId, profile: profile.name, caller: request.caller });
      // One signal per job: the client's cancel, disconnect or deadline, and server shutdown.
      const jobSignal = AbortSignal.any([signal, deps.shutdown]);
      // The job's workspace goes after its last event, off its call and its run slot (the
      // next job need not wait for it); shutdown waits for it (cleanedUp).
      let cleanup: Promise<void> = Promise.resolve();
      let cleanupMs: number | undefined;
      const cleanUp = (remove: () => Promise<void>): void => {
        const start = performance.now();
        const done = remove().then(
          () => void (cleanupMs = performance.now() - start),
          (err: unknown) => log.error({ event: "cleanup-failed", err }, "a job's clean-up failed"),
        );
        cleanups.add(done);
        void done.finally(() => cleanups.delete(done));
        cleanup = done;
      };
      const admitted = { request, profile, limits, testLimits, stdin, admittedAt };
      const admission = deps.queue.admit(
        // The queue starts it after admit returns: "queued", below, always comes first.
        (s) => runJob(deps, jobId, admitted, sink, s, log, cleanUp),
        jobSignal,
        {
          priority: request.priority,
          onPosition: (position) => sink.emit({ kind: "queued", jobId, position }),
        },
      );
      // Removed in `finally`: a listener left on the joined signal keeps it, and the job, alive
      // as long as the server's shutdown signal lives.
      let cancelledAt: number | undefined;
      const onCancel = (): void => void (cancelledAt = performance.now());
      jobSignal.addEventListener("abort", onCancel, { once: true });
      log.info({ event: "queued", position: admission.position }, "job queued");
      sink.emit({ kind: "queued", jobId, position: admission.position });
      const seconds = (): number => (performance.now() - admittedAt) / 1000;
      try {
        const job = await admission.done;
        deps.metrics.jobFinished(
          // A job of test cases only has no step that could fail.
          job.result?.outcome.status ?? "exited-zero",
          seconds(),
          job.steps.map((s) => ({
            runSeconds: s.usage.wallTimeMs / 1000,
            setupSeconds: s.setupMs && s.setupMs / 1000,
          })),
        );
        return job;
      } catch (err) {
        // Only the shutdown's own abort of a job still waiting ends here; anything else is a failure.
        if (!deps.shutdown.aborted || err !== deps.shutdown.reason) throw err;
        // Shut down while it waited: it ends like any job, with an outcome that says why.
        const result = notStarted("the server shut down before the job started");
        sink.emit({ kind: "finished", result, steps: [] });
        deps.metrics.jobFinished(result.outcome.status, seconds(), []);
        return { result, steps: [] };
      } finally {
        // Once everything the job held is released, which may be after its call has ended.
        void cleanup.finally(() => {
          jobSignal.removeEventListener("abort", onCancel);
          const releasedMs = cancelledAt === undefined ? undefined : Math.round(performance.now() - cancelledAt);
          log.info(
            { event: "ended", cleanupMs, ...(releasedMs !== undefined && { cancelled: true, releasedMs }) },
            releasedMs === undefined ? "job ended" : `job cancelled; everything it held released in ${releasedMs} ms`,
          );
        });
      }
    },
  };
}

/** Limits of each test case (its own over the suite's over the profile's) and of the checker. */
function resolveTestLimits(
  suite: NonNullable<JobRequest["tests"]>,
  resolve: Resolve,
  maxParallelism: number,
): { cases: Limits[]; checker: Limits } {
  if (suite.parallelism > maxParallelism)
    throw new InvalidArgumentError(
      "tests.parallelism",
      `${suite.parallelism} cases at once; this server runs at most ${maxParallelism}`,
    );
  resolve(suite.limits, "tests.limits");
  return {
    cases: suite.cases.map((c, i) => resolve({ ...suite.limits, ...c.limits }, `tests.cases[${i}].limits`)),
    checker: resolve(suite.checker?.limits ?? {}, "tests.checker.limits"),
  };
}

/** Resolves requested limits against the job's profile and the server's ceilings; `field` names them in errors. */
type Resolve = (requested: RequestedLimits, field: string) => Limits;

/** A job admitted: its request, profile, resolved limits and, for Interact, its stdin stream. */
interface AdmittedJob {
  readonly request: JobRequest;
  readonly profile: Profile;
  readonly limits: readonly Limits[];
  readonly testLimits: { cases: Limits[]; checker: Limits } | undefined;
  /** More stdin for the last step, as the client sends it. */
  readonly stdin: AsyncIterable<Uint8Array> | undefined;
  /** When it was admitted (performance.now()). */
  readonly admittedAt: number;
}

async function runJob(
  deps: JobServiceDeps,
  jobId: string,
  { request, profile, limits, testLimits, stdin, admittedAt }: AdmittedJob,
  sink: JobEventSink,
  signal: AbortSignal,
  log: Logger,
  cleanUp: (remove: () => Promise<void>) => void,
): Promise<JobResult> {
  const startedAt = performance.now();
  // A job of one step and no files needs nothing a warm sandbox lacks: it runs in one if the
  // pool has one ready (never waiting for it), else in a sandbox built now.
  const oneRun = request.steps.length === 1 && request.files.length === 0 && !request.tests;
  const warm = oneRun ? deps.warm?.take(profile.name) : undefined;
  const workspace = warm?.workspace ?? (await newWorkspace(deps, jobId, request, profile, log));
  const runIn = { dir: workspace.dir, holderPid: workspace.holderPid, uid: workspace.uid };
  // Where the job's time went, in the log (bench/latency.ts reads it): the first step's
  // also holds the queue wait and the workspace's set-up.
  const first = { queueMs: startedAt - admittedAt, workspaceMs: performance.now() - startedAt };
  try {
    const steps: StepResult[] = [];
    for (const [stepIndex, step] of request.steps.entries()) {
      log.info({ event: "started", stepIndex, warm: warm !== undefined }, "step started");
      sink.emit({ kind: "started", stepIndex });
      const output: OutputSink = {
        write: (stream, data) => sink.emit({ kind: "output", stepIndex, stream, data }),
        drained: () => sink.drained(),
      };
      const runAt = performance.now();
      const run = await (warm?.sandbox ?? deps.runner).run(
        {
          runId: `${jobId}-${stepIndex}`,
          profile,
          argv: step.argv,
          env: step.env,
          stdin: step.stdin,
          ...(stdin && stepIndex === request.steps.length - 1 && { stdinStream: stdin }),
          limits: limits[stepIndex]!,
          workspace: runIn,
          privateDir: workspace.privateDir,
        },
        output,
        signal,
      );
      const ranAt = performance.now();
      // Every process of the step is gone (its cgroup was emptied): the files hold still.
      const files = step.collect.length ? await workspace.collect(step.collect) : undefined;
      const held = await workspace.usage();
      const { endedAt, ...ran } = run;
      const usage = { ...ran.usage, workspaceBytes: held.bytes, workspaceInodes: held.inodes };
      const result = { stepIndex, ...ran, usage, ...(files && { files }) };
      steps.push(result);
      const timings = {
        ...(stepIndex === 0 && first),
        // From asking the runner until nsjail ended: its preparation, nsjail's set-up
        // (setupMs, on the job's path in a sandbox built now) and the program.
        runMs: (endedAt ?? ranAt) - runAt,
        setupMs: run.setupMs,
        readoutMs: endedAt === undefined ? undefined : ranAt - endedAt,
        resultMs: performance.now() - ranAt,
      };
      log.info({ event: "step-finished", stepIndex, outcome: run.outcome, usage: run.usage, timings }, "step finished");
      sink.emit({ kind: "step-finished", result });
      // A step that did not exit 0 (a compile error, a limit, a crash) stops the job.
      if (run.outcome.status !== "exited-zero") break;
    }
    const result = steps.at(-1);
    const built = result === undefined || result.outcome.status === "exited-zero";
    // Cases may share a stdin_file, and the workspace is read-only while they run: read each once.
    const read = new Map<string, Promise<CollectedFile>>();
    const readOnce = (file: string, get: () => Promise<CollectedFile>): Promise<CollectedFile> => {
      if (!read.has(file)) read.set(file, get());
      return read.get(file)!;
    };
    const judged =
      request.tests && testLimits && built
        ? await runTests({
            runner: deps.runner,
            profile,
            jobId,
            workspace: runIn,
            privateDir: workspace.privateDir,
            suite: request.tests,
            limits: testLimits.cases,
            checkerLimits: testLimits.checker,
            readWorkspaceFile: (file) => readOnce(file, async () => (await workspace.collect([file]))[0]!),
            sink,
            signal,
            log,
          })
        : undefined;
    log.info(
      {
        event: "finished",
        stepIndex: result?.stepIndex,
        status: result?.outcome.status,
        ...(judged && { tests: judged.summary }),
      },
      "job finished",
    );
    sink.emit({ kind: "finished", result, steps, ...judged });
    return { result, steps, ...judged };
  } finally {
    cleanUp(() => workspace.remove());
  }
}

/** The job's own workspace, made now, with its files. */
async function newWorkspace(
  deps: JobServiceDeps,
  jobId: string,
  request: JobRequest,
  profile: Profile,
  log: Logger,
): ReturnType<typeof createWorkspace> {
  const opts = { bytes: profile.scratchBytes, inodes: profile.scratchInodes, overlay: deps.overlay };
  const make = (uid: number) => createWorkspace(deps.scratchDir, jobId, request.files, { ...opts, uid }, deps.holders);
  return deps.uids.workspace(make).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOSPC" && err.code !== "EDQUOT") throw err;
    log.error({ event: "scratch-full", scratchDir: deps.scratchDir, err: err.message }, "scratch space is full");
    throw new ScratchFullError("the server's scratch space is full; try again later or on another server");
  });
}

/** The result of a job that never ran a step. */
function notStarted(detail: string): StepResult {
  return {
    stepIndex: 0,
    outcome: { status: "cancelled", exitCode: 0, signal: 0, detail },
    usage: { wallTimeMs: 0, stdoutBytes: 0, stderrBytes: 0, outputTruncated: false },
  };
}
