import { describe, expect, it } from "vitest";
import { classifyOutcome, type RunFacts } from "../../server/src/sandbox/nsjail/classify-outcome.js";
import { parseNsjailLog } from "../../server/src/sandbox/nsjail/parse-log.js";

// Log lines as nsjail 3.6 writes them on its log fd (taken from real runs on this machine).
const EXEC = "[I][2026-11-27T23:31:20+0000] Executing '/bin/sh' for '[STANDALONE MODE]'";
const exited = (n: number) =>
  `${EXEC}\n[I][2026-11-27T23:31:20+0000] pid=3490 ([STANDALONE MODE]) exited with status: ${n}, (PIDs left: 0)\n`;
const killed = (name: string, n: number) =>
  `${EXEC}\n[I][2026-11-27T23:31:20+0000] pid=3490 ([STANDALONE MODE]) terminated with signal: ${name} (${n}), (PIDs left: 0)\n`;
const EXEC_FAILED = [
  "[E][2026-11-27T23:34:49+0000][1] newProc():232 execve('/nonexist') failed: No such file or directory",
  "[F][2026-11-27T23:34:49+0000][1] runChild():506 Launching child process failed",
  "[W][2026-11-27T23:34:49+0000][4741] runChild():526 Received error message from the child process before it has been executed",
  "[E][2026-11-27T23:34:49+0000][4741] standaloneMode():274 Couldn't launch the child process",
  "[I][2026-11-27T23:34:49+0000] pid=4744 ([STANDALONE MODE]) exited with status: 255, (PIDs left: 0)",
].join("\n");
const SECCOMP =
  `${EXEC}\n[W][2026-11-27T23:31:20+0000][3490] subprocSeccompViolation():291 pid=3491 committed a syscall/seccomp violation and exited with SIGSYS\n` +
  "[I][2026-11-27T23:31:20+0000] pid=3491 ([STANDALONE MODE]) terminated with signal: SIGSYS (31), (PIDs left: 0)\n";

const base: RunFacts = {
  nsjailExitCode: 0,
  log: parseNsjailLog(exited(0)),
  wallTimeExceeded: false,
  wallTimeMs: 1000,
  outputLimitExceeded: false,
  outputLimitBytes: 4096,
  cancelled: false,
};

describe("classifyOutcome", () => {
  it.each<[string, Partial<RunFacts>, { status: string; exitCode?: number; signal?: number; detail?: RegExp }]>([
    ["exit 0", {}, { status: "exited-zero", exitCode: 0, signal: 0 }],
    ["exit 3", { nsjailExitCode: 3, log: parseNsjailLog(exited(3)) }, { status: "exited-nonzero", exitCode: 3 }],
    [
      "the program's own exit 255",
      { nsjailExitCode: 255, log: parseNsjailLog(exited(255)) },
      { status: "exited-nonzero", exitCode: 255 },
    ],
    [
      "the program's own exit 137 is not a kill",
      { nsjailExitCode: 137, log: parseNsjailLog(exited(137)) },
      { status: "exited-nonzero", exitCode: 137, signal: 0 },
    ],
    [
      "SIGSEGV",
      { nsjailExitCode: 139, log: parseNsjailLog(killed("SIGSEGV", 11)) },
      { status: "signaled", signal: 11, exitCode: 0 },
    ],
    [
      "execve failed: set-up failure, not exit 255",
      { nsjailExitCode: 255, log: parseNsjailLog(EXEC_FAILED) },
      { status: "setup-failure", detail: /execve\('\/nonexist'\) failed/ },
    ],
    [
      "nsjail said nothing and exited 255",
      { nsjailExitCode: 255, log: parseNsjailLog("") },
      { status: "setup-failure", detail: /nsjail ended with 255/ },
    ],
    [
      "nsjail could not be spawned",
      { nsjailExitCode: null, log: parseNsjailLog(""), spawnError: "spawn x ENOENT" },
      { status: "setup-failure", detail: /spawn x ENOENT/ },
    ],
    [
      "wall timer fired, program killed",
      { nsjailExitCode: 143, log: parseNsjailLog(killed("SIGKILL", 9)), wallTimeExceeded: true },
      { status: "wall-time-limit", detail: /1000 ms/ },
    ],
    [
      "wall timer fired as the program exited by itself",
      { wallTimeExceeded: true, log: parseNsjailLog(exited(0)) },
      { status: "exited-zero" },
    ],
    [
      "output limit wins over the kill it caused",
      { nsjailExitCode: 143, log: parseNsjailLog(killed("SIGKILL", 9)), outputLimitExceeded: true },
      { status: "output-limit", detail: /4096 bytes/ },
    ],
    [
      "output limit even if the program exited at once",
      { outputLimitExceeded: true, log: parseNsjailLog(exited(0)) },
      { status: "output-limit" },
    ],
    [
      "cancelled while running",
      { nsjailExitCode: 143, log: parseNsjailLog(killed("SIGKILL", 9)), cancelled: true },
      { status: "cancelled" },
    ],
    [
      "cancelled before nsjail started",
      { nsjailExitCode: null, log: parseNsjailLog(""), cancelled: true },
      { status: "cancelled" },
    ],
    [
      "seccomp kill",
      { nsjailExitCode: 159, log: parseNsjailLog(SECCOMP) },
      { status: "forbidden-syscall", signal: 31, detail: /seccomp violation/ },
    ],
  ])("%s", (_name, facts, want) => {
    const got = classifyOutcome({ ...base, ...facts });
    const { detail, ...rest } = want;
    expect(got).toMatchObject(rest);
    if (detail) expect(got.detail).toMatch(detail);
  });
});

describe("parseNsjailLog", () => {
  it("reads exit status, signal, launch failure and error lines", () => {
    expect(parseNsjailLog(exited(7))).toMatchObject({
      exitStatus: 7,
      termSignal: undefined,
      launchFailed: false,
      errors: [],
    });
    expect(parseNsjailLog(killed("SIGKILL", 9))).toMatchObject({ exitStatus: undefined, termSignal: 9 });
    const failed = parseNsjailLog(EXEC_FAILED);
    expect(failed.launchFailed).toBe(true);
    expect(failed.errors[0]).toBe("execve('/nonexist') failed: No such file or directory");
  });

  it("ignores lines that are not nsjail's", () => {
    expect(parseNsjailLog("exited with status: 3\ngarbage [E]\n")).toMatchObject({ exitStatus: undefined, errors: [] });
  });
});
