import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  Comparison,
  createClient,
  limits,
  Status,
  Verdict,
  verdictToJSON,
  type CorralClient,
  type ExecuteRequest,
  type JobFinished,
  type TestCase,
  type TestResult,
} from "../index.js";
import { clientOptions } from "./client-options.js";
import { EXIT_CODES } from "./exit-codes.js";
import { readFileWithMode } from "./read-dir-files.js";
import { limitsFromFlags, parseCount } from "./parse-units.js";
import { findProfile } from "./run.js";
import { UsageError } from "./usage-error.js";

/** Exit codes of `corral judge` (docs/cli.md). */
const JUDGE_EXIT = { accepted: 0, failed: 1, buildFailed: 3 } as const;

/** `N.in` / `N.out` pairs of `dir`, in natural order of their names. */
async function readTestDir(dir: string): Promise<TestCase[]> {
  const names = await readdir(dir).catch((err: Error) => {
    throw new UsageError(`--tests ${dir}: ${err.message}`);
  });
  const inputs = names
    .filter((n) => n.endsWith(".in"))
    .map((n) => n.slice(0, -".in".length))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (inputs.length === 0) throw new UsageError(`--tests ${dir}: no N.in files (each with an N.out beside it)`);
  const cases: TestCase[] = [];
  for (const name of inputs) {
    if (!names.includes(`${name}.out`)) throw new UsageError(`--tests ${dir}: ${name}.in has no ${name}.out`);
    cases.push({
      name,
      stdin: await readFile(path.join(dir, `${name}.in`)),
      stdinFile: "",
      expectedOutput: await readFile(path.join(dir, `${name}.out`)),
    });
  }
  return cases;
}

/** The judge job from the command line, and a client of the server it names (also asked for the profile). */
async function buildRequest(args: string[]): Promise<{ request: ExecuteRequest; client: CorralClient }> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      server: { type: "string" },
      profile: { type: "string" },
      file: { type: "string" },
      tests: { type: "string" },
      checker: { type: "string" },
      whitespace: { type: "boolean", default: false },
      "run-all": { type: "boolean", default: false },
      parallel: { type: "string" },
      "wall-time": { type: "string" },
      "cpu-time": { type: "string" },
      memory: { type: "string" },
    },
  });
  if (!v.profile || !v.file || !v.tests)
    throw new UsageError("judge: give --profile NAME --file SOURCE --tests DIR (DIR holding N.in and N.out pairs)");
  const server = v.server ?? process.env.CORRAL_SERVER ?? "127.0.0.1:50051";
  const client = createClient(server.split(","), clientOptions(process.env));
  try {
    const profile = await findProfile(client, v.profile);
    if (profile.run.length === 0) throw new UsageError(`--profile ${v.profile}: it has no build and run commands`);
    const files = [{ path: profile.sourceFile, ...(await readFileWithMode(v.file)) }];
    if (v.checker) files.push({ path: "corral-checker", ...(await readFileWithMode(v.checker)) });
    return {
      client,
      request: {
        profile: v.profile,
        priority: 0,
        files,
        steps: profile.build.length
          ? [{ argv: profile.build, env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }]
          : [],
        tests: {
          argv: profile.run,
          env: {},
          limits: limitsFromFlags(v),
          checker: {
            comparison: v.whitespace ? Comparison.COMPARISON_IGNORE_TRAILING_WHITESPACE : Comparison.COMPARISON_EXACT,
            argv: v.checker ? ["./corral-checker"] : [],
          },
          cases: await readTestDir(v.tests),
          runAll: v["run-all"],
          parallelism: v.parallel === undefined ? 1 : parseCount(v.parallel, "--parallel"),
          streamOutput: false,
        },
      },
    };
  } catch (err) {
    client.close();
    throw err;
  }
}

/** A progress bar on stderr, drawn only where stderr is a terminal. */
function progress(total: number): { tick(r: TestResult): void; done(): void } {
  const tty = process.stderr.isTTY;
  let ended = 0;
  let failed = 0;
  const draw = (): void => {
    const width = 30;
    const full = Math.round((ended / total) * width);
    process.stderr.write(`\r[${"#".repeat(full)}${".".repeat(width - full)}] ${ended}/${total}, ${failed} failed`);
  };
  if (tty) draw();
  return {
    tick: (r) => {
      ended++;
      if (r.verdict !== Verdict.VERDICT_ACCEPTED && r.verdict !== Verdict.VERDICT_SKIPPED) failed++;
      if (tty) draw();
    },
    done: () => void (tty && process.stderr.write("\n")),
  };
}

const VERDICT_NAME = (v: Verdict): string =>
  verdictToJSON(v)
    .replace(/^VERDICT_/, "")
    .toLowerCase()
    .replaceAll("_", " ");

/** The verdict table: one row per case, then the summary. */
function verdictTable(finished: JobFinished): string {
  const rows = finished.tests.map((t) => {
    const u = t.usage;
    return [
      t.name || String(t.testIndex),
      VERDICT_NAME(t.verdict),
      u?.cpuTimeMs === undefined ? "-" : `${u.cpuTimeMs} ms`,
      u ? `${u.wallTimeMs} ms` : "-",
      u?.peakMemoryBytes === undefined ? "-" : `${(Number(u.peakMemoryBytes) / 2 ** 20).toFixed(1)} MiB`,
      t.checkerMessage || (t.outcome && t.verdict !== Verdict.VERDICT_ACCEPTED ? t.outcome.detail : ""),
    ];
  });
  const head = ["case", "verdict", "cpu", "wall", "memory", "note"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const s = finished.testSummary;
  const summary = s
    ? `${s.accepted}/${s.total} accepted, ${s.failed} failed, ${s.skipped} skipped: ${VERDICT_NAME(s.verdict)}`
    : "";
  return [line(head), ...rows.map(line), "", summary].join("\n") + "\n";
}

/** `corral judge`: builds once, runs every case, prints the verdicts; exits 0 only if all pass. */
export async function judge(args: string[]): Promise<number> {
  const { request, client } = await buildRequest(args);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const bar = progress(request.tests!.cases.length);
  try {
    let finished: JobFinished | undefined;
    for await (const ev of client.execute(request, { signal: abort.signal })) {
      const e = ev.event;
      // The build's output is the compiler's: it goes to stderr, as it came.
      if (e?.$case === "output" && e.value.testIndex === undefined) process.stderr.write(e.value.data);
      else if (e?.$case === "testFinished" && e.value.result) bar.tick(e.value.result);
      else if (e?.$case === "finished") finished = e.value;
    }
    bar.done();
    if (!finished) throw new Error("the stream ended without a finished event");
    if (!finished.testSummary) {
      const o = finished.outcome;
      process.stderr.write(`corral: the build failed: ${o?.detail ?? "no outcome"}\n`);
      return o?.status === Status.STATUS_CANCELLED ? EXIT_CODES[Status.STATUS_CANCELLED]! : JUDGE_EXIT.buildFailed;
    }
    process.stdout.write(verdictTable(finished));
    return finished.testSummary.verdict === Verdict.VERDICT_ACCEPTED ? JUDGE_EXIT.accepted : JUDGE_EXIT.failed;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    client.close();
  }
}
