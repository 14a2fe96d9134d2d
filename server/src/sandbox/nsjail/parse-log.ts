/** What nsjail's own log (on its private fd) says about one run. */
export interface NsjailLog {
  /** The program's exit status, when it exited. */
  readonly exitStatus?: number;
  /** The signal that ended the program, when one did. */
  readonly termSignal?: number;
  /** nsjail could not build the sandbox or exec the program ("Launching child process failed"). */
  readonly launchFailed: boolean;
  /** The program was killed for a forbidden system call. */
  readonly seccompViolation: boolean;
  /** Error and fatal messages, without their prefixes, in order. */
  readonly errors: readonly string[];
  /** Warning messages (seccomp violations are reported as warnings). */
  readonly warnings: readonly string[];
}

// Line shapes of nsjail 3.6 (logs.cc): "[I][time] msg" and "[W][time][pid] func():line msg".
// Corral's own steps around the program (joining the cgroup, a warm sandbox's start) write
// "[E][corral] msg" on the same fd when the program could not be started.
const LINE = /^\[([DIWEF])\]\[([^\]]*)\](?:\[\d+\])?\s*(?:\S+\(\):\d+\s+)?(.*)$/;

/** Parses nsjail's log text. Pure. */
export function parseNsjailLog(text: string): NsjailLog {
  let exitStatus: number | undefined;
  let termSignal: number | undefined;
  let seccompViolation = false;
  let launchFailed = false;
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, level, when, msg = ""] = m;
    let x = /\) exited with status: (\d+)/.exec(msg);
    if (x) exitStatus = Number(x[1]);
    x = /\) terminated with signal: .*\((\d+)\)/.exec(msg);
    if (x) termSignal = Number(x[1]);
    if (msg.includes("syscall/seccomp violation")) seccompViolation = true;
    // The child reports a failed set-up or execve; nsjail then logs the child's exit 255
    // as if the program had exited, so this must win over the exit status.
    if (/^(Launching child process failed|Couldn't launch the child process)/.test(msg)) launchFailed = true;
    if (level === "E" && when === "corral") launchFailed = true;
    if (level === "E" || level === "F") errors.push(msg);
    if (level === "W") warnings.push(msg);
  }
  return { exitStatus, termSignal, launchFailed, seccompViolation, errors, warnings };
}
