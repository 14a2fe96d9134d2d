import type { Outcome } from "../../jobs/types.js";
import type { NsjailLog } from "./parse-log.js";

/** The facts one run leaves behind, as the classifier reads them. */
export interface RunFacts {
  /** nsjail's exit code, or null when a signal ended nsjail itself. */
  readonly nsjailExitCode: number | null;
  readonly log: NsjailLog;
  /** The service's wall timer fired and stopped the run. */
  readonly wallTimeExceeded: boolean;
  readonly wallTimeMs: number;
  /** Output past the limit was discarded and the run stopped. */
  readonly outputLimitExceeded: boolean;
  readonly outputLimitBytes: number;
  /** The job was cancelled (client, deadline or shutdown) and the run stopped. */
  readonly cancelled: boolean;
  /** The service could not start nsjail at all (spawn error). */
  readonly spawnError?: string;
}

const outcome = (status: Outcome["status"], detail: string, exitCode = 0, signal = 0): Outcome => ({
  status,
  exitCode,
  signal,
  detail,
});

/**
 * The one place that decides how a run ended. Pure; table-tested in test/unit.
 * Stops the service caused come first, since they explain the kill that follows them;
 * then nsjail's own account of the program, which tells "exited 255" from "set-up failed"
 * and "exited 137" from "killed by SIGKILL" where the exit code alone cannot.
 */
export function classifyOutcome(f: RunFacts): Outcome {
  if (f.spawnError !== undefined) return outcome("setup-failure", `could not start nsjail: ${f.spawnError}`);
  if (f.log.launchFailed) return outcome("setup-failure", f.log.errors[0] ?? "nsjail could not start the program");
  const exitedByItself = f.log.exitStatus !== undefined;
  if (f.cancelled && !exitedByItself) return outcome("cancelled", "the job was cancelled before the program ended");
  if (f.outputLimitExceeded)
    return outcome("output-limit", `output limit of ${f.outputLimitBytes} bytes reached; the rest was discarded`);
  if (f.wallTimeExceeded && !exitedByItself)
    return outcome("wall-time-limit", `wall-time limit of ${f.wallTimeMs} ms reached`);
  if (f.log.seccompViolation) {
    const why = f.log.warnings.find((p) => p.includes("seccomp")) ?? "forbidden system call";
    return outcome("forbidden-syscall", why, 0, 31);
  }
  if (f.log.exitStatus !== undefined) {
    const code = f.log.exitStatus;
    return code === 0
      ? outcome("exited-zero", "exited with code 0")
      : outcome("exited-nonzero", `exited with code ${code}`, code);
  }
  if (f.log.termSignal !== undefined)
    return outcome("signaled", `killed by signal ${f.log.termSignal}`, 0, f.log.termSignal);
  // No account of the program: nsjail failed before or while starting it (exit 255 by
  // convention, nsjail-notes.md §2.1), or died itself. Its first error names the cause;
  // the ones after it only say that launching failed.
  const why = f.log.errors[0] ?? `nsjail ended with ${f.nsjailExitCode ?? "a signal"} before the program ran`;
  return outcome("setup-failure", why);
}
