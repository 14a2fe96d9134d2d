import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Comparison,
  limits,
  Verdict,
  type ExecuteRequest,
  type TestCase,
  type TestResult,
  type TestSuite,
} from "@corral/client";
import { corral } from "../support/cli.js";
import { collect, startTestService, type TestService } from "../support/service.js";

// Judge mode: build once, then many test cases, each in a fresh sandbox with a verdict.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

// Doubles its input; -1 spins, -2 eats memory, -3 exits 3, -4 writes into the workspace.
const SOLUTION = `#include <stdio.h>
#include <stdlib.h>
int main(void) {
  long n;
  if (scanf("%ld", &n) != 1) return 2;
  if (n == -1) for (volatile long i = 0;; i++) {}
  if (n == -2) { volatile char *p = malloc(512L << 20); for (long i = 0; i < (512L << 20); i += 4096) p[i] = 1; return p[7]; }
  if (n == -3) return 3;
  if (n == -4) { FILE *f = fopen("left-behind", "w"); FILE *g = fopen("/tmp/left-behind", "r");
    printf("%s %s\\n", f ? "wrote" : "read-only", g ? "seen" : "fresh"); if (f) fclose(f);
    f = fopen("/tmp/left-behind", "w"); return f ? 0 : 1; }
  printf("%ld\\n", 2 * n);
  return 0;
}
`;

const testCase = (input: string, expected: string, c: Partial<TestCase> = {}): TestCase => ({
  name: "",
  stdin: Buffer.from(input),
  expectedOutput: Buffer.from(expected),
  limits: undefined,
  stdinFile: "",
  ...c,
});

const judge = (cases: TestCase[], suite: Partial<TestSuite> = {}, source = SOLUTION): ExecuteRequest => ({
  profile: "c",
  priority: 0,
  files: [{ path: "main.c", content: Buffer.from(source), mode: 0 }],
  steps: [
    {
      argv: ["gcc", "-O2", "-o", "main", "main.c"],
      env: {},
      stdin: Buffer.alloc(0),
      limits: limits(),
      collect: [],
    },
  ],
  tests: {
    argv: ["./main"],
    env: {},
    limits: limits({ cpuTimeMs: 500n, wallTimeMs: 3000n, memoryBytes: 64n << 20n }),
    checker: undefined,
    cases,
    runAll: true,
    parallelism: 1,
    streamOutput: false,
    ...suite,
  },
});

const verdicts = (tests: TestResult[]): Verdict[] => tests.map((x) => x.verdict);

describe("test-case batches", () => {
  it("gives 50 cases of a C solution each its own verdict in one call, the program built once", async () => {
    const cases: TestCase[] = [];
    const want: Verdict[] = [];
    for (let i = 0; i < 50; i++) {
      if (i === 17) cases.push(testCase("-1\n", "", { name: "too slow" }));
      else if (i === 31) cases.push(testCase("-2\n", "", { name: "too big" }));
      else if (i === 40) cases.push(testCase("-3\n", "", { name: "crashes" }));
      else if (i % 9 === 4) cases.push(testCase(`${i}\n`, `${2 * i + 1}\n`, { name: `wrong ${i}` }));
      else cases.push(testCase(`${i}\n`, `${2 * i}\n`, { name: `case ${i}` }));
      want.push(
        i === 17
          ? Verdict.VERDICT_CPU_TIME_LIMIT
          : i === 31
            ? Verdict.VERDICT_MEMORY_LIMIT
            : i === 40
              ? Verdict.VERDICT_RUNTIME_ERROR
              : i % 9 === 4
                ? Verdict.VERDICT_WRONG_ANSWER
                : Verdict.VERDICT_ACCEPTED,
      );
    }
    const r = await collect(t.client, judge(cases, { parallelism: 2 }));
    // One build step ran; every case got a test_finished event and a place in the summary.
    expect(r.finished.steps).toHaveLength(1);
    const events = r.events.flatMap((e) => (e.event?.$case === "testFinished" ? [e.event.value.result!] : []));
    expect(events).toHaveLength(50);
    expect(verdicts(r.finished.tests)).toEqual(want);
    expect(r.finished.tests.map((x) => x.name)).toEqual(cases.map((c) => c.name));
    const wrong = want.filter((v) => v === Verdict.VERDICT_WRONG_ANSWER).length;
    expect(r.finished.testSummary).toEqual({
      total: 50,
      accepted: 50 - 3 - wrong,
      failed: 3 + wrong,
      skipped: 0,
      verdict: Verdict.VERDICT_WRONG_ANSWER, // case 4 is the first that failed
    });
    // A failing case hands back its output and says where it differs; a passing one does not.
    const byIndex = new Map(events.map((x) => [x.testIndex, x]));
    expect(byIndex.get(4)).toMatchObject({
      stdout: Buffer.from("8\n"),
      checkerMessage: 'line 1: expected "9", got "8"',
    });
    expect(byIndex.get(0)?.stdout).toEqual(Buffer.alloc(0));
    expect(Number(byIndex.get(17)?.usage?.cpuTimeMs)).toBeGreaterThanOrEqual(500);
    expect(await t.leftovers()).toEqual([]);
  });

  it("stops at the first case not accepted unless asked to run them all, and skips the rest", async () => {
    const cases = [testCase("1", "2\n"), testCase("2", "5\n"), testCase("3", "6\n"), testCase("4", "8\n")];
    const r = await collect(t.client, judge(cases, { runAll: false }));
    expect(verdicts(r.finished.tests)).toEqual([
      Verdict.VERDICT_ACCEPTED,
      Verdict.VERDICT_WRONG_ANSWER,
      Verdict.VERDICT_SKIPPED,
      Verdict.VERDICT_SKIPPED,
    ]);
    expect(r.finished.testSummary).toMatchObject({ accepted: 1, failed: 1, skipped: 2 });
  });

  it("compares exactly by default, or ignoring whitespace at line ends and blank lines at the end", async () => {
    const cases = [testCase("5", "10"), testCase("5", "10  \r\n\n\n")];
    const exact = await collect(t.client, judge(cases));
    expect(verdicts(exact.finished.tests)).toEqual([Verdict.VERDICT_WRONG_ANSWER, Verdict.VERDICT_WRONG_ANSWER]);
    const loose = await collect(
      t.client,
      judge(cases, {
        checker: { comparison: Comparison.COMPARISON_IGNORE_TRAILING_WHITESPACE, argv: [], limits: undefined },
      }),
    );
    expect(verdicts(loose.finished.tests)).toEqual([Verdict.VERDICT_ACCEPTED, Verdict.VERDICT_ACCEPTED]);
  });

  it("runs a checker program of the job's own with the case's input, expected and actual output", async () => {
    // Accepts any output within 1 of the expected number; exits 1 (wrong answer) otherwise.
    const checker = `#!/bin/sh
read want < "$2"; read got < "$3"; read input < "$1"
d=$((got - want)); [ "$d" -ge -1 ] && [ "$d" -le 1 ] && { echo "ok for $input"; exit 0; }
echo "$got is not $want"; exit 1
`;
    const request = judge([testCase("3", "7"), testCase("3", "9"), testCase("-3", "0")], {
      checker: { comparison: Comparison.COMPARISON_UNSPECIFIED, argv: ["sh", "check.sh"], limits: undefined },
    });
    request.files.push({ path: "check.sh", content: Buffer.from(checker), mode: 0o755 });
    const r = await collect(t.client, request);
    expect(r.finished.tests.map((x) => [x.verdict, x.checkerMessage])).toEqual([
      [Verdict.VERDICT_ACCEPTED, ""],
      [Verdict.VERDICT_WRONG_ANSWER, "6 is not 9"],
      [Verdict.VERDICT_RUNTIME_ERROR, ""],
    ]);
    const events = r.events.flatMap((e) => (e.event?.$case === "testFinished" ? [e.event.value.result!] : []));
    expect(events[0]?.checkerMessage).toBe("");
    expect(await t.leftovers()).toEqual([]);

    const broken = judge([testCase("3", "6")], {
      checker: { comparison: Comparison.COMPARISON_UNSPECIFIED, argv: ["sh", "-c", "exit 7"], limits: undefined },
    });
    const b = await collect(t.client, broken);
    expect(b.finished.tests[0]).toMatchObject({ verdict: Verdict.VERDICT_CHECKER_ERROR });
    expect(b.finished.tests[0]?.checkerMessage).toMatch(/^the checker .*7/);
  });

  it("never lets a case see what another wrote: the workspace is read-only and /tmp fresh", async () => {
    const r = await collect(
      t.client,
      judge([testCase("-4", "read-only fresh\n"), testCase("-4", "read-only fresh\n")]),
    );
    expect(verdicts(r.finished.tests)).toEqual([Verdict.VERDICT_ACCEPTED, Verdict.VERDICT_ACCEPTED]);
  });

  it("streams the cases' output, tagged by case, only when asked", async () => {
    const cases = [testCase("1", "2\n"), testCase("2", "4\n")];
    const quiet = await collect(t.client, judge(cases));
    expect(quiet.events.filter((e) => e.event?.$case === "output" && e.event.value.testIndex !== undefined)).toEqual(
      [],
    );
    const loud = await collect(t.client, judge(cases, { streamOutput: true }));
    const tagged = loud.events.flatMap((e) =>
      e.event?.$case === "output" && e.event.value.testIndex !== undefined
        ? [`${e.event.value.testIndex}:${Buffer.from(e.event.value.data).toString()}`]
        : [],
    );
    expect(tagged).toEqual(["0:2\n", "1:4\n"]);
  });

  it("takes a case's stdin from a file of the workspace, and says why when it cannot", async () => {
    const request = judge([
      testCase("", "14\n", { stdinFile: "cases/7.in" }),
      testCase("", "", { stdinFile: "cases/missing.in" }),
      testCase("", "", { stdinFile: "main" }),
    ]);
    request.files.push({ path: "cases/7.in", content: Buffer.from("7\n"), mode: 0o600 });
    const r = await collect(t.client, request);
    expect(r.finished.tests.map((x) => [x.verdict, x.checkerMessage])).toEqual([
      [Verdict.VERDICT_ACCEPTED, ""],
      [Verdict.VERDICT_SETUP_FAILURE, "stdin_file 'cases/missing.in': no such file"],
      // The built binary as stdin: not a number, so the solution exits 2.
      [Verdict.VERDICT_RUNTIME_ERROR, ""],
    ]);
    await expect(collect(t.client, judge([testCase("1", "2", { stdinFile: "../etc/passwd" })]))).rejects.toThrow(
      /tests\.cases\[0\]\.stdin_file: '\.\.\/etc\/passwd' has a '\.\.' component/,
    );
    await expect(collect(t.client, judge([testCase("1", "2", { stdinFile: "x.in" })]))).rejects.toThrow(
      /tests\.cases\[0\]\.stdin_file: give stdin or stdin_file, not both/,
    );
  });

  it("runs no case when the build fails", async () => {
    const r = await collect(t.client, judge([testCase("1", "2\n")], {}, "int main(void) { return }"));
    expect(r.finished.tests).toEqual([]);
    expect(r.finished.testSummary).toBeUndefined();
  });

  it("judges an interpreted program with no build step", async () => {
    const r = await collect(t.client, {
      profile: "python3",
      priority: 0,
      files: [{ path: "main.py", content: Buffer.from("print(int(input()) * 3)\n"), mode: 0 }],
      steps: [],
      tests: {
        argv: ["python3", "main.py"],
        env: {},
        limits: undefined,
        checker: undefined,
        cases: [testCase("2", "6\n"), testCase("3", "10\n")],
        runAll: true,
        parallelism: 2,
        streamOutput: false,
      },
    });
    expect(verdicts(r.finished.tests)).toEqual([Verdict.VERDICT_ACCEPTED, Verdict.VERDICT_WRONG_ANSWER]);
    expect(r.finished.outcome).toBeUndefined();
  });

  it("names the field of a bad suite", async () => {
    const bad = async (suite: Partial<TestSuite>, field: RegExp) =>
      expect(collect(t.client, judge([testCase("1", "2")], suite))).rejects.toThrow(field);
    await bad({ argv: [] }, /tests\.argv: must name a program/);
    await bad({ cases: [] }, /tests\.cases: must hold at least one case/);
    await bad({ parallelism: 10_000 }, /tests\.parallelism: 10000 cases at once; this server runs at most/);
    await bad({ cases: [testCase("1", "2", { name: "a\nb" })] }, /tests\.cases\[0\]\.name: must not contain/);
    await bad(
      { cases: [testCase("1", "2", { limits: limits({ memoryBytes: 10n ** 15n }) })] },
      /tests\.cases\[0\]\.limits\.memory_bytes/,
    );
  });
});

describe("corral judge", () => {
  const setUp = async (outputs: string[], source = SOLUTION) => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-judge-"));
    await writeFile(path.join(dir, "main.c"), source);
    const tests = path.join(dir, "tests");
    await mkdir(tests);
    for (const [i, out] of outputs.entries()) {
      await writeFile(path.join(tests, `${i + 1}.in`), `${i + 1}\n`);
      await writeFile(path.join(tests, `${i + 1}.out`), out);
    }
    return { source: path.join(dir, "main.c"), tests, dir };
  };
  const run = (d: { source: string; tests: string }, ...more: string[]) =>
    corral(["judge", "--server", t.address, "--profile", "c", "--file", d.source, "--tests", d.tests, ...more]);

  it("prints a table of verdicts in case order and exits 0 only when every case passes", async () => {
    const outputs = Array.from({ length: 11 }, (_, i) => `${2 * (i + 1)}\n`);
    const ok = await run(await setUp(outputs), "--parallel", "2");
    expect(ok.code, ok.stderr).toBe(0);
    const rows = ok.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^case +verdict +cpu +wall +memory +note$/);
    // Natural order: 2 before 10.
    expect(rows.slice(1, 12).map((r) => r.split(/\s+/)[0])).toEqual(outputs.map((_, i) => String(i + 1)));
    expect(rows.at(-1)).toBe("11/11 accepted, 0 failed, 0 skipped: accepted");

    outputs[2] = "7 \n";
    const wrong = await run(await setUp(outputs), "--run-all");
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^3 +wrong answer .*line 1: expected "7 ", got "6"$/m);
    expect(wrong.stdout).toMatch(/10\/11 accepted, 1 failed, 0 skipped: wrong answer\n$/);
  });

  it("compares leniently with --whitespace and runs a checker program with --checker", async () => {
    const d = await setUp(["2  \n\n", "4\n"]);
    expect((await run(d)).code).toBe(1);
    expect((await run(d, "--whitespace")).code).toBe(0);
    const checker = path.join(d.dir, "check.sh");
    await writeFile(checker, '#!/bin/sh\necho "saw $(cat "$3")"; exit 1\n', { mode: 0o755 });
    const r = await run(d, "--checker", checker);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^1 +wrong answer .*saw 2$/m);
  });

  it("exits 3 with the compiler's messages when the build fails", async () => {
    const r = await run(await setUp(["2\n"], "int main(void) { return }"));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/error: expected/);
    expect(r.stderr).toMatch(/the build failed/);
  });
});
