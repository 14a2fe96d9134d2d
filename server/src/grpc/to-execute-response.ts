import { Status, Stream, type ExecuteResponse, type StepResult as ProtoStepResult } from "@corral/proto/corral/v1";
import type { JobEvent, Status as DomainStatus, StepResult } from "../domain.js";

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
          },
        },
      };
    case "step-finished":
      return { event: { $case: "stepFinished", value: { result: toStepResult(e.result) } } };
    case "finished": {
      const { outcome, usage } = toStepResult(e.result);
      // Collected files travel once, in their step's step_finished event.
      const steps = e.steps.map((s) => toStepResult({ ...s, files: undefined }));
      return { event: { $case: "finished", value: { outcome, usage, steps } } };
    }
  }
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
    outcome: { status: STATUS[o.status], exitCode: o.exitCode, signal: o.signal, detail: o.detail, stepIndex },
    usage: {
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
    },
  };
}
