// Batch: a compiled C program against 200 small test inputs, in one judge-mode job (cases one
// after another, and two at once), against 200 separate jobs and a bare spawn of the same binary
// from Node. Runs per second. Run: npm run bench:batch
import { spawn, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { limits, Verdict, type ExecuteRequest } from "@corral/client";
import { runJob, startServeProcess, writeResults } from "./support.js";

const CASES = Number(process.env.BENCH_CASES ?? 200);
const SOURCE =
  '#include <stdio.h>\nint main(void) { long n; if (scanf("%ld", &n) != 1) return 2; printf("%ld\\n", 2 * n); return 0; }\n';

const dir = await mkdtemp(path.join(tmpdir(), "corral-bench-batch-"));
await writeFile(path.join(dir, "main.c"), SOURCE);
execFileSync("gcc", ["-O2", "-o", path.join(dir, "main"), path.join(dir, "main.c")]);
const binary = await readFile(path.join(dir, "main"));
const inputs = Array.from({ length: CASES }, (_, i) => `${i}\n`);

async function bare(): Promise<number> {
  const t = performance.now();
  for (const input of inputs) {
    const child = spawn(path.join(dir, "main"), [], { stdio: ["pipe", "pipe", "ignore"] });
    child.stdin.end(input);
    let out = "";
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) out += chunk.toString();
    if (out !== `${2 * Number(input)}\n`) throw new Error(`bare: got ${out}`);
  }
  return CASES / ((performance.now() - t) / 1000);
}

const service = await startServeProcess();
const step = { env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] };

async function batch(parallelism: number): Promise<{ rate: number; buildMs: number }> {
  const request: ExecuteRequest = {
    profile: "c",
    priority: 0,
    files: [{ path: "main.c", content: Buffer.from(SOURCE), mode: 0 }],
    steps: [{ ...step, argv: ["gcc", "-O2", "-o", "main", "main.c"] }],
    tests: {
      argv: ["./main"],
      env: {},
      cases: inputs.map((input) => ({
        name: "",
        stdin: Buffer.from(input),
        expectedOutput: Buffer.from(`${2 * Number(input)}\n`),
        stdinFile: "",
      })),
      runAll: true,
      parallelism,
      streamOutput: false,
    },
  };
  const t = performance.now();
  const { finished } = await runJob(service.client, request);
  const ms = performance.now() - t;
  if (finished.testSummary?.verdict !== Verdict.VERDICT_ACCEPTED) throw new Error("batch: not every case passed");
  const buildMs = Number(finished.steps[0]!.usage!.wallTimeMs);
  return { rate: CASES / ((ms - buildMs) / 1000), buildMs };
}

async function separate(): Promise<number> {
  const t = performance.now();
  for (const input of inputs) {
    const { stdout } = await runJob(service.client, {
      profile: "c",
      priority: 0,
      files: [{ path: "main", content: binary, mode: 0o755 }],
      steps: [{ ...step, argv: ["./main"], stdin: Buffer.from(input) }],
    });
    if (stdout !== `${2 * Number(input)}\n`) throw new Error(`separate: got ${stdout}`);
  }
  return CASES / ((performance.now() - t) / 1000);
}

try {
  await batch(1); // warm-up
  const rates = {
    bare: await bare(),
    one: await batch(1),
    two: await batch(2),
    separate: await separate(),
  };
  const row = (name: string, rate: number) =>
    `| ${name} | ${rate.toFixed(1)} | ${(rate / rates.bare).toFixed(3)} | ${(rate / rates.separate).toFixed(2)} |`;
  await writeResults(
    "batch",
    [
      `A C program (reads n, prints 2n) against ${CASES} inputs. Runs per second; the judge rows leave out the one build (${rates.one.buildMs.toFixed(0)} ms).`,
      "",
      "| path | runs/s | of bare spawn | of separate jobs |",
      "| --- | --- | --- | --- |",
      row("bare spawn of the binary from Node, one after another", rates.bare),
      row("one judge-mode job, cases one after another", rates.one.rate),
      row("one judge-mode job, two cases at once", rates.two.rate),
      row(`${CASES} separate jobs, the binary sent with each`, rates.separate),
    ].join("\n"),
  );
} finally {
  await service.stop();
  await rm(dir, { recursive: true, force: true });
}
