import {
  Status,
  Stream,
  Verdict,
  type ExecuteResponse,
  type Outcome as ProtoOutcome,
  type StepResult as ProtoStepResult,
  type TestResult as ProtoTestResult,
  type Usage as ProtoUsage,
} from "@corral/proto/corral/v1";
import type {
  JobEvent,
  Outcome,
  Status as DomainStatus,
  StepResult,
  TestResult,
  Usage,
  Verdict as DomainVerdict,
} from "../domain.js";

const STATUS: Record<DomainStatus, Status> = {
  "exited-zero": Status.STATUS_EXITED_ZERO,
  "exited-nonzero": Status.STATUS_EXITED_NONZERO,
  signaled: Status.STATUS_SIGNALED,
  "cpu-time-limit": Status.STATUS_CPU_TIME_LIMIT,
  "wall-time-limit": Status.STATUS_WALL_TIME_LIMIT,
  "memory-limit": Status.STATUS_MEMORY_LIMIT,
  "output-limit": Status.STATUS_OUTPUT_LIMIT,
  "process-limit": Status.STATUS_PROCESS_LIMIT,
  "forbidden-syscall": Status.STATUS_FORBIDDEN_SYSCALL,
  "setup-failure": Status.STATUS_SETUP_FAILURE,
  cancelled: Status.STATUS_CANCELLED,
};

const VERDICT: Record<DomainVerdict, Verdict> = {
  accepted: Verdict.VERDICT_ACCEPTED,
  "wrong-answer": Verdict.VERDICT_WRONG_ANSWER,
  "runtime-error": Verdict.VERDICT_RUNTIME_ERROR,
  "cpu-time-limit": Verdict.VERDICT_CPU_TIME_LIMIT,
  "wall-time-limit": Verdict.VERDICT_WALL_TIME_LIMIT,
  "memory-limit": Verdict.VERDICT_MEMORY_LIMIT,
  "output-limit": Verdict.VERDICT_OUTPUT_LIMIT,
  "process-limit": Verdict.VERDICT_PROCESS_LIMIT,
  "forbidden-syscall": Verdict.VERDICT_FORBIDDEN_SYSCALL,
  "checker-error": Verdict.VERDICT_CHECKER_ERROR,
  "setup-failure": Verdict.VERDICT_SETUP_FAILURE,
  skipped: Verdict.VERDICT_SKIPPED,
  cancelled: Verdict.VERDICT_CANCELLED,
};

const big = (n: number | undefined): bigint | undefined => (n === undefined ? undefined : BigInt(n));

/** A domain job event as the wire message. */
export function toExecuteResponse(e: JobEvent): ExecuteResponse {
  switch (e.kind) {
    case "queued":
      return { event: { $case: "queued", value: { jobId: e.jobId, position: e.position } } };
    case "started":
      return { event: { $case: "started", value: { stepIndex: e.stepIndex } } };
    case "output":
      return {
        event: {
          $case: "output",
          value: {
            stepIndex: e.stepIndex,
            stream: e.stream === "stdout" ? Stream.STREAM_STDOUT : Stream.STREAM_STDERR,
            data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength),
            testIndex: e.testIndex,
          },
        },
      };
    case "step-finished":
      return { event: { $case: "stepFinished", value: { result: toStepResult(e.result) } } };
    case "finished": {
      const { outcome, usage } = e.result ? toStepResult(e.result) : { outcome: undefined, usage: undefined };
      // Collected files travel once, in their step's step_finished event.
      const steps = e.steps.map((s) => toStepResult({ ...s, files: undefined }));
      // Case outputs travel once, in their test_finished event.
      const tests = (e.tests ?? []).map((t) => toTestResult({ ...t, stdout: undefined, stderr: undefined }));
      const testSummary = e.summary && { ...e.summary, verdict: VERDICT[e.summary.verdict] };
      return { event: { $case: "finished", value: { outcome, usage, steps, tests, testSummary } } };
    }
    case "test-finished":
      return { event: { $case: "testFinished", value: { result: toTestResult(e.result) } } };
  }
}

function toTestResult(t: TestResult): ProtoTestResult {
  return {
    testIndex: t.testIndex,
    name: t.name,
    verdict: VERDICT[t.verdict],
    outcome: t.outcome && toOutcome(t.outcome, 0),
    usage: t.usage && toUsage(t.usage),
    stdout: Buffer.from(t.stdout ?? []),
    stderr: Buffer.from(t.stderr ?? []),
    outputCut: t.outputCut ?? false,
    checkerMessage: t.checkerMessage ?? "",
  };
}

function toOutcome(o: Outcome, stepIndex: number): ProtoOutcome {
  return { status: STATUS[o.status], exitCode: o.exitCode, signal: o.signal, detail: o.detail, stepIndex };
}

function toUsage(u: Usage): ProtoUsage {
  return {
    wallTimeMs: BigInt(u.wallTimeMs),
    cpuTimeMs: big(u.cpuTimeMs),
    cpuUserMs: big(u.cpuUserMs),
    cpuSystemMs: big(u.cpuSystemMs),
    peakMemoryBytes: big(u.peakMemoryBytes),
    peakProcesses: u.peakProcesses,
    stdoutBytes: BigInt(u.stdoutBytes),
    stderrBytes: BigInt(u.stderrBytes),
    outputTruncated: u.outputTruncated,
    workspaceBytes: big(u.workspaceBytes),
    workspaceInodes: big(u.workspaceInodes),
  };
}

function toStepResult(r: StepResult): ProtoStepResult {
  const { outcome: o, usage: u, stepIndex } = r;
  return {
    stepIndex,
    files: (r.files ?? []).map((f) =>
      f.collected
        ? { path: f.path, collected: true, content: Buffer.from(f.content), mode: f.mode, reason: "" }
        : { path: f.path, collected: false, content: Buffer.alloc(0), mode: 0, reason: f.reason },
    ),
    outcome: toOutcome(o, stepIndex),
    usage: toUsage(u),
  };
}
