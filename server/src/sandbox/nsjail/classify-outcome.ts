import type { Limits, Outcome } from "../../domain.js";
import type { NsjailLog } from "./parse-log.js";

/** Why the service itself stopped a run, if it did. */
export interface Stops {
  /** The wall timer fired. */
  readonly wallTime: boolean;
  /** The CPU watch saw the cgroup pass the CPU-time limit. */
  readonly cpuTime: boolean;
  /** Output past the limit was discarded. */
  readonly output: boolean;
  /** The job was cancelled (client, deadline or shutdown). */
  readonly cancelled: boolean;
}

/** The facts one run leaves behind, as the classifier reads them. */
export interface RunFacts {
  /** nsjail's exit code, or null when a signal ended nsjail itself. */
  readonly nsjailExitCode: number | null;
  readonly log: NsjailLog;
  readonly limits: Limits;
  readonly stops: Stops;
  /** The job cgroup's counters; absent on a host without a delegated cgroup. */
  readonly cgroup?: { readonly cpuTimeMs: number; readonly oomKills: number; readonly pidsMaxHits: number };
  /** The service could not start nsjail at all (spawn error). */
  readonly spawnError?: string;
}

const SIGKILL = 9;
const SIGXCPU = 24;
const SIGSYS = 31;

const outcome = (status: Outcome["status"], detail: string, exitCode = 0, signal = 0): Outcome => ({
  status,
  exitCode,
  signal,
  detail,
});

/**
 * The one place that decides how a run ended. Pure; table-tested in test/unit.
 *
 * Order matters. Set-up failures first (the program never ran). Then the stops and counters
 * that explain a kill, most specific first: a limit is the verdict even though the program
 * died of the SIGKILL that enforced it, so a memory kill is never a plain signal and a CPU
 * limit never a wall limit. A program that exited by itself before a stop landed keeps its own
 * exit. Last, nsjail's account of the program tells "exited 255" from "set-up failed" and
 * "exited 137" from "killed by SIGKILL", which the exit code alone cannot.
 */
export function classifyOutcome(f: RunFacts): Outcome {
  const { log, limits, stops, cgroup } = f;
  if (f.spawnError !== undefined) return outcome("setup-failure", `could not start nsjail: ${f.spawnError}`);
  if (log.launchFailed) return outcome("setup-failure", log.errors[0] ?? "nsjail could not start the program");
  const exitedByItself = log.exitStatus !== undefined;
  if (stops.cancelled && !exitedByItself) return outcome("cancelled", "the job was cancelled before the program ended");
  if (log.seccompViolation || log.termSignal === SIGSYS) {
    // nsjail 3.6 cannot name the call once KILL_PROCESS has taken the process; the kernel's
    // audit log has it (type=1326, syscall=N).
    const said = log.warnings.find((p) => p.includes("seccomp violation"));
    return outcome("forbidden-syscall", `forbidden system call${said ? `: ${said}` : ""}`, 0, SIGSYS);
  }
  if (stops.output)
    return outcome("output-limit", `output limit of ${limits.outputBytes} bytes reached; the rest was discarded`);
  // Any OOM kill or refused fork in the job is the verdict, even if the program coped and
  // exited 0: a judge's memory or process limit was exceeded either way.
  if (cgroup && cgroup.oomKills > 0)
    return outcome(
      "memory-limit",
      `memory limit of ${limits.memoryBytes} bytes reached (${cgroup.oomKills} OOM kill(s))`,
    );
  const cpuBackstop =
    (log.termSignal === SIGKILL || log.termSignal === SIGXCPU) && (cgroup?.cpuTimeMs ?? 0) >= limits.cpuTimeMs;
  if ((stops.cpuTime && !exitedByItself) || cpuBackstop)
    return outcome("cpu-time-limit", `CPU-time limit of ${limits.cpuTimeMs} ms reached`);
  if (cgroup && cgroup.pidsMaxHits > 0)
    return outcome(
      "process-limit",
      `process limit of ${limits.processes} reached (${cgroup.pidsMaxHits} fork(s) refused)`,
    );
  if (stops.wallTime && !exitedByItself)
    return outcome("wall-time-limit", `wall-time limit of ${limits.wallTimeMs} ms reached`);
  if (log.exitStatus !== undefined) {
    const code = log.exitStatus;
    return code === 0
      ? outcome("exited-zero", "exited with code 0")
      : outcome("exited-nonzero", `exited with code ${code}`, code);
  }
  if (log.termSignal !== undefined) return outcome("signaled", `killed by signal ${log.termSignal}`, 0, log.termSignal);
  // No account of the program: nsjail failed before or while starting it (exit 255 by
  // convention, nsjail-notes.md §2.1), or died itself. Its first error names the cause.
  const why = log.errors[0] ?? `nsjail ended with ${f.nsjailExitCode ?? "a signal"} before the program ran`;
  return outcome("setup-failure", why);
}
