import type { Limits, Outcome, Usage } from "../domain.js";
import type { Profile } from "./profiles.js";

/** One program run in a fresh sandbox. */
export interface RunSpec {
  /** Unique among runs on this host (names the run's cgroup and config file). */
  readonly runId: string;
  readonly profile: Profile;
  readonly argv: readonly string[];
  /** Environment on top of the profile's. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: Uint8Array;
  /** More stdin, after `stdin`, as it arrives (an interactive run); its end closes stdin. */
  readonly stdinStream?: AsyncIterable<Uint8Array>;
  readonly limits: Limits;
  /**
   * The job's workspace: the directory that becomes the working directory, the process whose
   * user and mount namespaces it is mounted in (createWorkspace's holder), the uid in that
   * namespace the program runs as (0: the service's own; from 1: a subordinate uid), and whether
   * the run may only read it (test cases, so that none sees what another wrote).
   */
  readonly workspace: {
    readonly dir: string;
    readonly holderPid: number;
    readonly uid: number;
    readonly readOnly?: boolean;
  };
  /** Host files bound read-only into the sandbox (a checker's input, expected and actual output). */
  readonly binds?: readonly { readonly src: string; readonly dst: string }[];
  /** Host directory for the runner's own files of this run; not visible in the sandbox. */
  readonly privateDir: string;
}

/** Where a run's output goes while it runs. */
export interface OutputSink {
  /** Delivers a chunk; false asks the runner to wait for `drained()` before the next. */
  write(stream: "stdout" | "stderr", data: Uint8Array): boolean;
  /** Resolves when the consumer can take more. */
  drained(): Promise<void>;
}

/** The result of one run: its verdict and what it used. */
export interface RunResult {
  readonly outcome: Outcome;
  readonly usage: Usage;
  /** From starting nsjail to the program's execve, when nsjail got that far (0 in a warm sandbox). */
  readonly setupMs?: number;
  /** When nsjail ended (performance.now()), for the log's split of a job's time. */
  readonly endedAt?: number;
}

/** Runs programs in sandboxes. `signal` stops a run early (cancel, deadline, shutdown). */
export interface Runner {
  run(spec: RunSpec, sink: OutputSink, signal: AbortSignal): Promise<RunResult>;
}
