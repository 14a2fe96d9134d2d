// Accuracy of Corral's figures and verdicts (issue: limits, exact usage and distinct verdicts).
// Each case runs RUNS times through a real service, real nsjail and real cgroups; the table
// gives min, median and max of each error. Run: npm run bench:accuracy
import { spawnSync } from "node:child_process";
import { limits, Status, statusToJSON, type Limits } from "@corral/client";
import { runJob, spread, startBenchService, writeResults } from "./support.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const MiB = 1 << 20;

const job = (argv: string[], l: Partial<Limits> = {}) => ({
  profile: "default",
  priority: 0,
  files: [],
  steps: [{ argv, env: {}, stdin: Buffer.alloc(0), limits: limits(l), collect: [] }],
});

// Spins until its own CPU clock (CLOCK_PROCESS_CPUTIME_ID) says 1 s, then prints that clock.
const BUSY = [
  "import time",
  "while time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) < 1.0: pass",
  "print(time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID))",
].join("\n");
// Touches N MiB (every page), then exits.
const touch = (mib: number) => `x = bytearray(${mib} << 20)\nfor i in range(0, len(x), 4096): x[i] = 1`;

const rows: string[] = [];
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const row = (what: string, unit: (x: number) => string, xs: number[], target: string) => {
  const s = spread(xs);
  rows.push(`| ${what} | ${unit(s.min)} | ${unit(s.median)} | ${unit(s.max)} | ${target} |`);
};
const verdicts = (what: string, got: Status[], want: Status) => {
  const hits = got.filter((s) => s === want).length;
  rows.push(`| ${what} | | ${hits}/${got.length} ${statusToJSON(want)} | | every run |`);
};

const bench = await startBenchService();
const { client, service } = bench;
try {
  process.stdout.write(`cgroups: ${service.cgroups}; ${RUNS} runs per case\n`);

  // CPU time against the program's own clock, and the sandbox's wall-time overhead against a
  // bare run of the same program from this process.
  const cpuErr: number[] = [];
  const overhead: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { finished, stdout } = await runJob(client, job(["python3", "-c", BUSY]));
    const self = Number(stdout.trim()) * 1000;
    cpuErr.push((Number(finished.usage?.cpuTimeMs) - self) / self);
    const t0 = performance.now();
    spawnSync("python3", ["-c", BUSY]);
    const bare = performance.now() - t0;
    overhead.push((Number(finished.usage?.wallTimeMs) - bare) / Number(finished.usage?.wallTimeMs));
  }
  row("CPU time of a 1 s busy loop vs its own CLOCK_PROCESS_CPUTIME_ID", pct, cpuErr, "within ±3%");
  row("sandbox wall-time overhead on that loop (vs a bare spawn)", pct, overhead, "under 2%");

  // Peak memory: 256 MiB touched, against 256 MiB plus the same program's baseline (0 MiB).
  const base: number[] = [];
  for (let i = 0; i < RUNS; i++)
    base.push(Number((await runJob(client, job(["python3", "-c", touch(0)]))).finished.usage?.peakMemoryBytes));
  const baseline = spread(base).median;
  const memErr: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const peak = Number((await runJob(client, job(["python3", "-c", touch(256)]))).finished.usage?.peakMemoryBytes);
    memErr.push((peak - (256 * MiB + baseline)) / (256 * MiB + baseline));
  }
  row(
    `peak memory touching 256 MiB vs 256 MiB + baseline (${(baseline / MiB).toFixed(1)} MiB)`,
    pct,
    memErr,
    "within ±5%",
  );

  const status = async (argv: string[], l: Partial<Limits>) => {
    const got: { status: Status; cpu: number; wall: number; stdout: number; truncated: boolean }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { finished } = await runJob(client, job(argv, l));
      const u = finished.usage!;
      got.push({
        status: finished.outcome!.status,
        cpu: Number(u.cpuTimeMs),
        wall: Number(u.wallTimeMs),
        stdout: Number(u.stdoutBytes),
        truncated: u.outputTruncated,
      });
    }
    return got;
  };
  const s = (x: number) => `${(x / 1000).toFixed(3)} s`;

  const mem = await status(["python3", "-c", "x = bytearray(128 << 20)"], { memoryBytes: 64n * BigInt(MiB) });
  verdicts(
    "memory limit 64 MiB, 128 MiB allocated",
    mem.map((r) => r.status),
    Status.STATUS_MEMORY_LIMIT,
  );

  const cpu = await status(["python3", "-c", "while True: pass"], { cpuTimeMs: 1000n });
  verdicts(
    "CPU limit 1 s, infinite loop",
    cpu.map((r) => r.status),
    Status.STATUS_CPU_TIME_LIMIT,
  );
  row(
    "CPU time at the stop",
    s,
    cpu.map((r) => r.cpu),
    "1.0 to 1.15 s",
  );

  const wall = await status(["sleep", "10"], { wallTimeMs: 1000n });
  verdicts(
    "wall limit 1 s, sleep 10",
    wall.map((r) => r.status),
    Status.STATUS_WALL_TIME_LIMIT,
  );
  row(
    "wall time at the stop",
    s,
    wall.map((r) => r.wall),
    "1.0 to 1.15 s",
  );

  const spin =
    "import hashlib, threading\ndata = b'x' * (1 << 22)\ndef spin():\n    while True: hashlib.sha256(data).digest()\nfor _ in range(4): threading.Thread(target=spin).start()";
  const threads = await status(["python3", "-c", spin], { cpuTimeMs: 1000n });
  verdicts(
    "four threads spinning, CPU limit 1 s",
    threads.map((r) => r.status),
    Status.STATUS_CPU_TIME_LIMIT,
  );
  row(
    "CPU time at the stop (all threads)",
    s,
    threads.map((r) => r.cpu),
    "1.0 to 1.15 s",
  );
  row(
    "wall time at that stop",
    s,
    threads.map((r) => r.wall),
    "below the CPU time",
  );

  const bomb = await status(["sh", "-c", "b() { b | b & }; b; sleep 1"], { processes: 16, wallTimeMs: 5000n });
  verdicts(
    "process limit 16, fork bomb",
    bomb.map((r) => r.status),
    Status.STATUS_PROCESS_LIMIT,
  );

  const yes = await status(["yes"], { outputBytes: BigInt(MiB) });
  verdicts(
    "output limit 1 MiB, yes",
    yes.map((r) => r.status),
    Status.STATUS_OUTPUT_LIMIT,
  );
  rows.push(
    `| bytes delivered, truncated | | max ${Math.max(...yes.map((r) => r.stdout))}, truncated ${yes.filter((r) => r.truncated).length}/${RUNS} | | at most 1048576, always |`,
  );

  const segv = await status(["python3", "-c", "import ctypes; ctypes.string_at(0)"], {});
  verdicts(
    "SIGSEGV",
    segv.map((r) => r.status),
    Status.STATUS_SIGNALED,
  );
  const seven = await status(["sh", "-c", "exit 7"], {});
  verdicts(
    "exit 7",
    seven.map((r) => r.status),
    Status.STATUS_EXITED_NONZERO,
  );

  await writeResults(
    "accuracy",
    [
      `Job cgroups: ${service.cgroups}. ${RUNS} runs per case, one at a time, through the gRPC service.`,
      "Errors are signed: positive means Corral reported more than the reference. These jobs take",
      "the fast path: CPU and wall time count from the hand-over to a warm sandbox; peak memory",
      "includes nsjail's few MB by design (the cgroup holds the whole sandbox).",
      "",
      "| case | min | median | max | target |",
      "| --- | --- | --- | --- | --- |",
      ...rows,
    ].join("\n"),
  );
} finally {
  await bench.stop();
}
