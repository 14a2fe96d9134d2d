import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { CollectedFile, Limits, Outcome, TestResult, TestSuiteRequest, TestSummary, Verdict } from "../domain.js";
import type { Profile } from "../sandbox/profiles.js";
import type { OutputSink, Runner, RunResult, RunSpec } from "../sandbox/runner.js";
import { compareOutput } from "./compare-output.js";
import type { JobEventSink } from "./job-service.js";

/** A case that is not accepted hands back this much of each output stream. */
const FAILED_OUTPUT_CAP = 64 * 1024;
/** Of a checker program's stdout, this much becomes the case's message. */
const CHECKER_MESSAGE_CAP = 4096;

/** What running a job's test cases needs. */
export interface TestRunContext {
  readonly runner: Runner;
  readonly profile: Profile;
  readonly jobId: string;
  readonly workspace: Omit<RunSpec["workspace"], "readOnly">;
  /** The service's own folder of the job, never mounted in a sandbox. */
  readonly privateDir: string;
  readonly suite: TestSuiteRequest;
  /** Resolved limits: one per case, and the checker's. */
  readonly limits: readonly Limits[];
  readonly checkerLimits: Limits;
  /** Reads a file of the job's workspace (for a case's stdin_file), as collection does. */
  readonly readWorkspaceFile: (path: string) => Promise<CollectedFile>;
  readonly sink: JobEventSink;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/**
 * Runs the cases, up to `suite.parallelism` at once, each in a fresh sandbox that sees the
 * job's workspace read-only. Emits a test-finished event per case as it ends (in the order
 * they end); without `runAll`, the first case not accepted stops the batch and the cases not
 * started are skipped.
 */
export async function runTests(ctx: TestRunContext): Promise<{ tests: TestResult[]; summary: TestSummary }> {
  const { suite } = ctx;
  const results: TestResult[] = new Array<TestResult>(suite.cases.length);
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (next < suite.cases.length) {
      const i = next++;
      const notRun: Verdict | undefined = ctx.signal.aborted ? "cancelled" : stopped ? "skipped" : undefined;
      const result: TestResult = notRun
        ? { testIndex: i, name: suite.cases[i]!.name, verdict: notRun }
        : await runCase(ctx, i);
      results[i] = result;
      if (result.verdict !== "accepted" && !suite.runAll) stopped = true;
      ctx.sink.emit({ kind: "test-finished", result });
    }
  };
  await Promise.all(Array.from({ length: Math.min(suite.parallelism, suite.cases.length) }, worker));
  return { tests: results, summary: summarise(results) };
}

/** Counts the verdicts. Pure. */
export function summarise(results: readonly TestResult[]): TestSummary {
  const count = (v: Verdict): number => results.filter((r) => r.verdict === v).length;
  const [accepted, skipped] = [count("accepted"), count("skipped")];
  const failed = results.find((r) => r.verdict !== "accepted" && r.verdict !== "skipped");
  return {
    total: results.length,
    accepted,
    failed: results.length - accepted - skipped,
    skipped,
    verdict: failed?.verdict ?? "accepted",
  };
}

async function runCase(ctx: TestRunContext, i: number): Promise<TestResult> {
  const testCase = ctx.suite.cases[i]!;
  let stdin = testCase.stdin;
  if (testCase.stdinFile !== undefined) {
    const file = await ctx.readWorkspaceFile(testCase.stdinFile);
    if (!file.collected) {
      const detail = `stdin_file '${file.path}': ${file.reason}`;
      const outcome = { status: "setup-failure" as const, exitCode: 0, signal: 0, detail };
      return { testIndex: i, name: testCase.name, verdict: "setup-failure", outcome, checkerMessage: detail };
    }
    stdin = file.content;
  }
  const out = capture(ctx, i);
  const run = await ctx.runner.run(
    {
      runId: `${ctx.jobId}-t${i}`,
      profile: ctx.profile,
      argv: ctx.suite.argv,
      env: ctx.suite.env,
      stdin,
      limits: ctx.limits[i]!,
      workspace: { ...ctx.workspace, readOnly: true },
      privateDir: ctx.privateDir,
    },
    out.sink,
    ctx.signal,
  );
  const base = { testIndex: i, name: testCase.name, outcome: run.outcome, usage: run.usage };
  const stdout = out.stdout();
  let verdict = PROGRAM_VERDICT[run.outcome.status];
  let checkerMessage = "";
  if (verdict === undefined) {
    const checked = ctx.suite.checker
      ? await runChecker(ctx, i, stdin, stdout)
      : compareOutput(stdout, testCase.expected, ctx.suite.comparison);
    verdict = "verdict" in checked ? checked.verdict : checked.same ? "accepted" : "wrong-answer";
    checkerMessage = checked.message;
  }
  ctx.log.info({ event: "test-finished", testIndex: i, verdict, usage: run.usage }, "test case finished");
  if (verdict === "accepted") return { ...base, verdict };
  return {
    ...base,
    verdict,
    stdout: stdout.subarray(0, FAILED_OUTPUT_CAP),
    stderr: out.stderr(),
    outputCut: stdout.length > FAILED_OUTPUT_CAP || out.stderrCut() || run.usage.outputTruncated,
    checkerMessage,
  };
}

/** The verdict a program's own end decides; undefined for exit 0, which the checker decides. */
const PROGRAM_VERDICT: Record<Outcome["status"], Verdict | undefined> = {
  "exited-zero": undefined,
  "exited-nonzero": "runtime-error",
  signaled: "runtime-error",
  "cpu-time-limit": "cpu-time-limit",
  "wall-time-limit": "wall-time-limit",
  "memory-limit": "memory-limit",
  "output-limit": "output-limit",
  "process-limit": "process-limit",
  "forbidden-syscall": "forbidden-syscall",
  "setup-failure": "setup-failure",
  cancelled: "cancelled",
};

/**
 * Keeps a case's whole stdout (the output limit bounds it) for the checker and the first
 * FAILED_OUTPUT_CAP bytes of its stderr; streams both as the job's output when asked.
 */
function capture(
  ctx: TestRunContext,
  testIndex: number,
): { sink: OutputSink; stdout(): Buffer; stderr(): Buffer; stderrCut(): boolean } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let stderrBytes = 0;
  return {
    sink: {
      write: (stream, data) => {
        // A view, not a copy: the runner hands over each chunk and keeps none.
        const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        if (stream === "stdout") stdout.push(chunk);
        else {
          if (stderrBytes < FAILED_OUTPUT_CAP) stderr.push(chunk.subarray(0, FAILED_OUTPUT_CAP - stderrBytes));
          stderrBytes += chunk.length;
        }
        return ctx.suite.streamOutput
          ? ctx.sink.emit({ kind: "output", stepIndex: 0, testIndex, stream, data: chunk })
          : true;
      },
      drained: () => ctx.sink.drained(),
    },
    stdout: () => Buffer.concat(stdout),
    stderr: () => Buffer.concat(stderr),
    stderrCut: () => stderrBytes > FAILED_OUTPUT_CAP,
  };
}

/**
 * Runs the job's checker program on one case in a sandbox of its own. The case's input,
 * expected and actual output are files in the job's private folder, bound read-only at
 * /checker/{input,expected,actual}.
 */
async function runChecker(
  ctx: TestRunContext,
  i: number,
  input: Uint8Array,
  actual: Buffer,
): Promise<{ verdict: Verdict; message: string }> {
  const testCase = ctx.suite.cases[i]!;
  const dir = path.join(ctx.privateDir, `checker-${i}`);
  // Searchable by others: a job running as a subordinate uid has its binds made with its ids.
  await mkdir(dir, { mode: 0o711 });
  try {
    const files = { input, expected: testCase.expected, actual };
    for (const [name, content] of Object.entries(files))
      await writeFile(path.join(dir, name), content, { mode: 0o644 });
    const message: Buffer[] = [];
    let messageBytes = 0;
    const spec: RunSpec = {
      runId: `${ctx.jobId}-c${i}`,
      profile: ctx.profile,
      argv: [...ctx.suite.checker!.argv, "/checker/input", "/checker/expected", "/checker/actual"],
      env: ctx.suite.env,
      stdin: new Uint8Array(),
      limits: ctx.checkerLimits,
      workspace: { ...ctx.workspace, readOnly: true },
      privateDir: ctx.privateDir,
      binds: Object.keys(files).map((name) => ({ src: path.join(dir, name), dst: `/checker/${name}` })),
    };
    const sink: OutputSink = {
      write: (stream, data) => {
        if (stream === "stdout" && messageBytes < CHECKER_MESSAGE_CAP) {
          message.push(Buffer.from(data).subarray(0, CHECKER_MESSAGE_CAP - messageBytes));
          messageBytes += data.length;
        }
        return true;
      },
      drained: () => Promise.resolve(),
    };
    const run: RunResult = await ctx.runner.run(spec, sink, ctx.signal);
    const said = Buffer.concat(message).toString("utf8").trim();
    const { status, exitCode, detail } = run.outcome;
    if (status === "exited-zero") return { verdict: "accepted", message: said };
    if (status === "exited-nonzero" && exitCode === 1) return { verdict: "wrong-answer", message: said };
    if (status === "cancelled") return { verdict: "cancelled", message: said };
    return { verdict: "checker-error", message: `the checker ${detail}${said && `: ${said}`}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
