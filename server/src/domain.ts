/**
 * Domain types of a job, shared by every layer. Protobuf types stop at `grpc/`; `jobs/` and
 * `sandbox/` speak these.
 */

/** Limits of one step, all resolved (no zero-means-default left). */
export interface Limits {
  /** Wall-clock time from the sandbox's start, milliseconds. */
  readonly wallTimeMs: number;
  /** CPU time (user + system) of the whole sandbox, milliseconds. */
  readonly cpuTimeMs: number;
  /** Memory of the whole sandbox (no swap), bytes. */
  readonly memoryBytes: number;
  /** Processes and threads alive at once, the program's own. */
  readonly processes: number;
  /** Bytes of stdout plus stderr delivered before the program is stopped. */
  readonly outputBytes: number;
  /** Largest file the program may write, bytes (RLIMIT_FSIZE). */
  readonly fileSizeBytes: number;
  /** Open file descriptors per process (RLIMIT_NOFILE). */
  readonly openFiles: number;
  /** Stack size per process, bytes (RLIMIT_STACK). */
  readonly stackBytes: number;
}

/** The name of one limit. */
export type LimitName = keyof Limits;

/** Every limit, with its field name in the wire request (`steps[i].limits.<wire>`). */
export const LIMIT_FIELDS: Readonly<Record<LimitName, string>> = {
  wallTimeMs: "wall_time_ms",
  cpuTimeMs: "cpu_time_ms",
  memoryBytes: "memory_bytes",
  processes: "processes",
  outputBytes: "output_bytes",
  fileSizeBytes: "file_size_bytes",
  openFiles: "open_files",
  stackBytes: "stack_bytes",
};

/** Limits as a request asks for them: an absent field takes the profile's default. */
export type RequestedLimits = Partial<Limits>;

/** One file of the job's working directory. */
export interface InputFile {
  /** Relative path, already checked to stay inside the working directory. */
  readonly path: string;
  readonly content: Uint8Array;
  /** Permission bits. */
  readonly mode: number;
}

/** One program run of a job, as requested. */
export interface StepRequest {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: Uint8Array;
  readonly limits: RequestedLimits;
  /** Paths to hand back after the step, checked like input file paths. */
  readonly collect: readonly string[];
}

/** A job as a client asked for it, after field validation. */
export interface JobRequest {
  readonly profile: string;
  /** Higher runs first, -10 to 10. */
  readonly priority: number;
  /** Who asked, for the log (a token's name, "mtls" or "local"); never a secret. */
  readonly caller?: string;
  readonly files: readonly InputFile[];
  readonly steps: readonly StepRequest[];
  /** Test cases run once every step exited 0 (judge mode). */
  readonly tests?: TestSuiteRequest;
}

/** How the default checker compares a case's stdout with the expected output. */
export type Comparison = "exact" | "ignore-trailing-whitespace";

/** One test case, as requested. */
export interface TestCaseRequest {
  readonly name: string;
  readonly stdin: Uint8Array;
  /** A file of the workspace whose content is the stdin instead. */
  readonly stdinFile?: string;
  readonly expected: Uint8Array;
  readonly limits: RequestedLimits;
}

/** A batch of test cases, as requested. */
export interface TestSuiteRequest {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly limits: RequestedLimits;
  readonly comparison: Comparison;
  /** A checker program of the job's own, run instead of the comparison. */
  readonly checker?: { readonly argv: readonly string[]; readonly limits: RequestedLimits };
  readonly cases: readonly TestCaseRequest[];
  readonly runAll: boolean;
  /** Cases at once, at least 1. */
  readonly parallelism: number;
  readonly streamOutput: boolean;
}

/** How a test case went. */
export type Verdict =
  | "accepted"
  | "wrong-answer"
  | "runtime-error"
  | "cpu-time-limit"
  | "wall-time-limit"
  | "memory-limit"
  | "output-limit"
  | "process-limit"
  | "forbidden-syscall"
  | "checker-error"
  | "setup-failure"
  | "skipped"
  | "cancelled";

/** One test case's verdict and usage. */
export interface TestResult {
  readonly testIndex: number;
  readonly name: string;
  readonly verdict: Verdict;
  /** Absent for a skipped case. */
  readonly outcome?: Outcome;
  readonly usage?: Usage;
  /** A case not accepted: the start of its output. */
  readonly stdout?: Uint8Array;
  readonly stderr?: Uint8Array;
  readonly outputCut?: boolean;
  readonly checkerMessage?: string;
}

/** The verdicts of a job's test cases, counted. */
export interface TestSummary {
  readonly total: number;
  readonly accepted: number;
  readonly failed: number;
  readonly skipped: number;
  /** "accepted" when all were, else the first (by index) that was not. */
  readonly verdict: Verdict;
}

/** How a program run ended. */
export type Status =
  | "exited-zero"
  | "exited-nonzero"
  | "signaled"
  | "cpu-time-limit"
  | "wall-time-limit"
  | "memory-limit"
  | "output-limit"
  | "process-limit"
  | "forbidden-syscall"
  | "setup-failure"
  | "cancelled";

/** The verdict of one step. */
export interface Outcome {
  readonly status: Status;
  /** Exit code when the program exited, else 0. */
  readonly exitCode: number;
  /** Signal number that ended the program, else 0. */
  readonly signal: number;
  /** One line for people. */
  readonly detail: string;
}

/** What one step consumed; undefined where not measured. */
export interface Usage {
  readonly wallTimeMs: number;
  readonly cpuTimeMs?: number;
  readonly cpuUserMs?: number;
  readonly cpuSystemMs?: number;
  readonly peakMemoryBytes?: number;
  readonly peakProcesses?: number;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  readonly outputTruncated: boolean;
  /** What the job's workspace held when the step ended (it is shared by the job's steps). */
  readonly workspaceBytes?: number;
  readonly workspaceInodes?: number;
}

/** A file a step asked for: its content, or why it was not collected. */
export type CollectedFile =
  | { readonly path: string; readonly collected: true; readonly content: Uint8Array; readonly mode: number }
  | { readonly path: string; readonly collected: false; readonly reason: string };

/** Result of one step. */
export interface StepResult {
  /** One per path the step asked to collect. */
  readonly files?: readonly CollectedFile[];
  /** Sandbox set-up the step waited for (0 in a warm sandbox), for metrics (not sent to clients). */
  readonly setupMs?: number;
  readonly stepIndex: number;
  readonly outcome: Outcome;
  readonly usage: Usage;
}

/** One event of a job's stream, in the order a client sees them. */
export type JobEvent =
  | { readonly kind: "queued"; readonly jobId: string; readonly position: number }
  | { readonly kind: "started"; readonly stepIndex: number }
  | {
      readonly kind: "output";
      readonly stepIndex: number;
      /** Set for a test case's output. */
      readonly testIndex?: number;
      readonly stream: "stdout" | "stderr";
      readonly data: Uint8Array;
    }
  | { readonly kind: "step-finished"; readonly result: StepResult }
  | { readonly kind: "test-finished"; readonly result: TestResult }
  /**
   * `result` decides the job (the first step that did not exit 0, else the last); `steps`
   * lists all that ran; `tests` and `summary` come when the job had cases and its steps passed.
   */
  | {
      readonly kind: "finished";
      /** Absent in a job of test cases only. */
      readonly result?: StepResult;
      readonly steps: readonly StepResult[];
      readonly tests?: readonly TestResult[];
      readonly summary?: TestSummary;
    };

/** What a server is, how busy, and what its host lets it enforce (GetServerInfo, doctor). */
export interface ServerInfo {
  readonly version: string;
  readonly nsjailVersion: string;
  readonly concurrency: number;
  readonly queueDepth: number;
  readonly running: number;
  readonly profiles: readonly string[];
  /** 0 when the server has no job cgroups. */
  readonly cgroupVersion: 0 | 1 | 2;
  readonly unavailableLimits: readonly LimitName[];
  /** What is missing, each with the command that fixes it. */
  readonly problems: readonly string[];
  readonly appArmor: { readonly active: boolean; readonly profilesLoaded: boolean };
  /** This host can mount overlayfs in a user namespace. */
  readonly overlay: boolean;
  /** Whose uid jobs run as: a subordinate uid of the service user's, or the service's own. */
  readonly jobUid: "subordinate" | "service";
}
