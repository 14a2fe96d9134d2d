import { describe, expect, it } from "vitest";
import { classifyOutcome, type RunFacts, type Stops } from "../../server/src/sandbox/nsjail/classify-outcome.js";
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

const limits = {
  wallTimeMs: 1000,
  cpuTimeMs: 1000,
  memoryBytes: 64 << 20,
  processes: 16,
  outputBytes: 4096,
  fileSizeBytes: 1 << 20,
  openFiles: 64,
  stackBytes: 8 << 20,
};
const noStops: Stops = { wallTime: false, cpuTime: false, output: false, cancelled: false };
const quiet = { cpuTimeMs: 5, oomKills: 0, pidsMaxHits: 0 };
const base: RunFacts = { nsjailExitCode: 0, log: parseNsjailLog(exited(0)), limits, stops: noStops, cgroup: quiet };
const killedBy9 = parseNsjailLog(killed("SIGKILL", 9));
// A stop by the service empties the cgroup at once: nsjail dies too and logs nothing more.
const cut = parseNsjailLog(EXEC);

type Row = [string, Partial<RunFacts>, { status: string; exitCode?: number; signal?: number; detail?: RegExp }];

describe("classifyOutcome", () => {
  it.each<Row>([
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
      "SIGKILL from outside, no limit involved",
      { nsjailExitCode: 137, log: killedBy9 },
      { status: "signaled", signal: 9 },
    ],
    [
      "execve failed: set-up failure, not exit 255",
      { nsjailExitCode: 255, log: parseNsjailLog(EXEC_FAILED) },
      { status: "setup-failure", detail: /execve\('\/nonexist'\) failed/ },
    ],
    [
      "could not enter the job cgroup",
      { nsjailExitCode: 255, log: parseNsjailLog("[E][corral] cannot enter cgroup /x/cgroup.procs\n") },
      { status: "setup-failure", detail: /cannot enter cgroup/ },
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
      "wall timer fired",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, wallTime: true } },
      { status: "wall-time-limit", detail: /1000 ms/ },
    ],
    [
      "wall timer fired as the program exited by itself",
      { stops: { ...noStops, wallTime: true } },
      { status: "exited-zero" },
    ],
    [
      "CPU watch fired",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, cpuTime: true }, cgroup: { ...quiet, cpuTimeMs: 1004 } },
      { status: "cpu-time-limit", detail: /1000 ms/ },
    ],
    [
      "CPU watch and wall timer both fired: CPU, never wall",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, cpuTime: true, wallTime: true } },
      { status: "cpu-time-limit" },
    ],
    [
      "RLIMIT_CPU backstop: SIGKILL with the CPU spent",
      { nsjailExitCode: 137, log: killedBy9, cgroup: { ...quiet, cpuTimeMs: 2001 } },
      { status: "cpu-time-limit" },
    ],
    [
      "OOM kill of the program: memory, never a plain signal",
      { nsjailExitCode: 137, log: killedBy9, cgroup: { ...quiet, oomKills: 1 } },
      { status: "memory-limit", detail: /67108864 bytes/ },
    ],
    [
      "OOM kill of a child the program survived",
      { nsjailExitCode: 1, log: parseNsjailLog(exited(1)), cgroup: { ...quiet, oomKills: 1 } },
      { status: "memory-limit" },
    ],
    [
      "OOM kill while the wall timer also fired",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, wallTime: true }, cgroup: { ...quiet, oomKills: 2 } },
      { status: "memory-limit" },
    ],
    [
      "fork refused, program exited 0 anyway",
      { cgroup: { ...quiet, pidsMaxHits: 3 } },
      { status: "process-limit", detail: /16 reached/ },
    ],
    [
      "fork bomb stopped by the wall timer",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, wallTime: true }, cgroup: { ...quiet, pidsMaxHits: 40 } },
      { status: "process-limit" },
    ],
    [
      "output limit wins over the kill it caused",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, output: true } },
      { status: "output-limit", detail: /4096 bytes/ },
    ],
    [
      "output limit even if the program exited at once",
      { stops: { ...noStops, output: true } },
      { status: "output-limit" },
    ],
    [
      "cancelled while running",
      { nsjailExitCode: null, log: cut, stops: { ...noStops, cancelled: true } },
      { status: "cancelled" },
    ],
    [
      "cancelled before nsjail started",
      { nsjailExitCode: null, log: parseNsjailLog(""), stops: { ...noStops, cancelled: true } },
      { status: "cancelled" },
    ],
    [
      "seccomp kill",
      { nsjailExitCode: 159, log: parseNsjailLog(SECCOMP) },
      { status: "forbidden-syscall", signal: 31, detail: /seccomp violation/ },
    ],
    [
      "no cgroup on this host: a SIGKILL stays a signal",
      { nsjailExitCode: 137, log: killedBy9, cgroup: undefined },
      { status: "signaled", signal: 9 },
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
