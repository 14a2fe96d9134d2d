import { Status, type JobFinished } from "../index.js";

/**
 * Exit codes for outcomes that are not the program's own exit. Documented in docs/cli.md; the
 * program's own code (or 128+N for signal N) wins wherever the program ended by itself.
 */
export const EXIT_CODES: Partial<Record<Status, number>> = {
  [Status.STATUS_WALL_TIME_LIMIT]: 124,
  [Status.STATUS_CPU_TIME_LIMIT]: 123,
  [Status.STATUS_MEMORY_LIMIT]: 122,
  [Status.STATUS_OUTPUT_LIMIT]: 121,
  [Status.STATUS_PROCESS_LIMIT]: 120,
  [Status.STATUS_FORBIDDEN_SYSCALL]: 119,
  [Status.STATUS_SETUP_FAILURE]: 125,
  [Status.STATUS_CANCELLED]: 130,
};

/** Exit code when Corral itself failed (a gRPC error). */
export const EXIT_SERVICE_ERROR = 125;

/** The CLI's exit code for a finished job. */
export function exitCodeOf(f: JobFinished): number {
  const o = f.outcome;
  if (!o) return EXIT_SERVICE_ERROR;
  if (o.status === Status.STATUS_EXITED_ZERO || o.status === Status.STATUS_EXITED_NONZERO) return o.exitCode;
  if (o.status === Status.STATUS_SIGNALED) return 128 + o.signal;
  return EXIT_CODES[o.status] ?? EXIT_SERVICE_ERROR;
}
