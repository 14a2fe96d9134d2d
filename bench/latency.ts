// Latency and throughput of a trivial job (/bin/true) through the full gRPC path, against its
// two baselines measured in the same run: a bare spawn from Node, and the pinned nsjail started
// directly with the same config (mounts, namespaces, rlimits, seccomp) but no service around it.
// Run: npm run bench:latency
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { limits } from "@corral/client";
import { loadConfig } from "@corral/server";
import { buildNsjailConfig } from "../server/src/sandbox/nsjail/build-config.js";
import { loadProfiles } from "../server/src/sandbox/profiles.js";
import { percentile, startBenchService, writeResults } from "./support.js";

const N = Number(process.env.BENCH_JOBS ?? 1000);
const PER_CLIENT = Number(process.env.BENCH_PER_CLIENT ?? 100);

const exit = (cmd: string, args: string[]) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "ignore"] });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });

const timed = async (f: () => Promise<void>) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

/** `n` timed runs after `warmUp` untimed ones; with `gapMs`, a pause (not timed) before each. */
async function latencies(n: number, f: () => Promise<void>, gapMs = 0, warmUp = 20): Promise<number[]> {
  for (let i = 0; i < warmUp; i++) await f();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
    out.push(await timed(f));
  }
  return out;
}

async function throughput(clients: number, f: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < PER_CLIENT; i++) await f();
    }),
  );
  return (clients * PER_CLIENT) / ((performance.now() - t) / 1000);
}

// The direct-nsjail baseline: the same config the service would write for this job.
const config = loadConfig(process.env);
const profile = (await loadProfiles(config.profilesDir)).get("default")!;
const dir = await mkdtemp(path.join(tmpdir(), "corral-bench-lat-"));
await mkdir(path.join(dir, "work"));
const cfgFile = path.join(dir, "nsjail.cfg");
await writeFile(
  cfgFile,
  buildNsjailConfig({
    execPath: "/usr/bin/true",
    argv: ["true"],
    env: profile.env,
    mounts: profile.mounts,
    workspaceDir: path.join(dir, "work"),
    workdir: "/workspace",
    tmpBytes: profile.tmpBytes,
    tmpInodes: profile.tmpInodes,
    seccompPolicy: profile.seccomp,
    rlimits: { cpuSeconds: 11, fileSizeMiB: 64, openFiles: 1024, stackMiB: 8 },
  }),
);
const bare = () => exit("/bin/true", []);
const direct = () => exit(config.nsjailPath, ["-q", "-C", cfgFile]);

/** A service variant: the fast path on (the default) or off, with its log kept for the split. */
async function variant(env: Record<string, string>) {
  const lines: string[] = [];
  const log = new PassThrough();
  log.setEncoding("utf8");
  let partial = "";
  log.on("data", (s: string) => {
    const parts = (partial + s).split("\n");
    partial = parts.pop()!;
    lines.push(...parts.filter((l) => l.includes('"step-finished"') || l.includes('"ended"')));
  });
  const bench = await startBenchService(env, log);
  const job = {
    profile: "default",
    priority: 0,
    files: [],
    steps: [{ argv: ["true"], env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }],
  };
  const run = async () => {
    for await (const ev of bench.client.execute(job)) void ev;
  };
  return { bench, run, lines };
}

/** Medians of where the jobs' time went, from the service's log (job-service.ts `timings`). */
function split(lines: string[], totals: number[]) {
  const steps = lines.map(
    (l) => JSON.parse(l) as { event: string; timings?: Record<string, number>; cleanupMs?: number },
  );
  const t = (k: string) => steps.flatMap((e) => (e.timings?.[k] === undefined ? [] : [e.timings[k]]));
  const cleanup = steps.flatMap((e) => (e.event === "ended" && e.cleanupMs !== undefined ? [e.cleanupMs] : []));
  const [queue, workspace, run, setup, readout, result] = [
    "queueMs",
    "workspaceMs",
    "runMs",
    "setupMs",
    "readoutMs",
    "resultMs",
  ].map((k) => percentile(t(k), 50)) as [number, number, number, number, number, number];
  const total = percentile(totals, 50);
  return {
    "queue wait": queue,
    "workspace (holder, tmpfs and overlay mounts)": workspace,
    "cgroup, config and nsjail's start, to the program's execve": setup,
    "the program, from its execve (or hand-over) to nsjail's end": run - setup,
    "read-out (counters, cgroup removed)": readout,
    "result (workspace figures, events)": result,
    "gRPC and client (the rest of the call)": Math.max(0, total - queue - workspace - run - readout - result),
    "clean-up, after the call (holder ended, folders removed)": percentile(cleanup, 50),
  };
}

const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 50);
const cold = await variant({ CORRAL_WARM_SANDBOXES: "0" });
const warm = await variant({});
try {
  process.stdout.write(`latency: ${N} runs each...\n`);
  await new Promise((r) => setTimeout(r, 1000)); // the warm pool fills
  /** Runs, and the log lines of the timed ones' jobs. */
  const logged = async (v: typeof cold, gapMs = 0) => {
    for (let i = 0; i < 20; i++) await v.run(); // warm-up, not logged
    const from = v.lines.length;
    const l = await latencies(N, v.run, gapMs, 0);
    await new Promise((r) => setTimeout(r, 500)); // the last clean-ups log their end
    return { l, split: split(v.lines.slice(from), l) };
  };
  const coldRun = await logged(cold);
  const warmRun = await logged(warm, GAP_MS);
  const lat = {
    bare: await latencies(N, bare),
    direct: await latencies(N, direct),
    cold: coldRun.l,
    warmPaced: warmRun.l,
    warmBackToBack: await latencies(N, warm.run),
  };
  const [coldSplit, warmSplit] = [coldRun.split, warmRun.split];
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const names = {
    bare: "bare spawn of /bin/true from Node",
    direct: "nsjail run directly, same config",
    cold: "Corral, sandbox built for each job (CORRAL_WARM_SANDBOXES=0)",
    warmPaced: `Corral, fast path: a warm sandbox ready (a job every ${GAP_MS} ms)`,
    warmBackToBack: "Corral, fast path, jobs back to back (the pool cannot keep up)",
  };
  const rows = (Object.keys(names) as (keyof typeof names)[]).map((k) => {
    const l = lat[k];
    const p50 = percentile(l, 50);
    return `| ${names[k]} | ${ms(p50)} | ${ms(percentile(l, 90))} | ${ms(percentile(l, 99))} | ${(p50 / percentile(lat.bare, 50)).toFixed(1)} | ${(p50 / percentile(lat.direct, 50)).toFixed(2)} |`;
  });
  const splitRows = Object.keys(coldSplit).map(
    (k) => `| ${k} | ${ms(coldSplit[k as keyof typeof coldSplit])} | ${ms(warmSplit[k as keyof typeof warmSplit])} |`,
  );
  process.stdout.write("throughput...\n");
  const tp: string[] = [];
  for (const c of [1, 2, 4, 16]) {
    const d = await throughput(c, direct);
    const w = await throughput(c, warm.run);
    const s = await throughput(c, cold.run);
    const pct = (x: number) => `${((x / d) * 100).toFixed(0)}%`;
    tp.push(`| ${c} | ${d.toFixed(1)} | ${w.toFixed(1)} | ${pct(w)} | ${s.toFixed(1)} | ${pct(s)} |`);
  }
  const bare50 = percentile(lat.bare, 50);
  await writeResults(
    "latency",
    [
      `Job cgroups: ${cold.bench.service.cgroups}. A trivial job (\`true\`), one at a time, ${N} runs of each after 20 warm-up runs; services log at info, as by default.`,
      "",
      "| path | p50 | p90 | p99 | p50 / bare | p50 / direct nsjail |",
      "| --- | --- | --- | --- | --- | --- |",
      ...rows,
      "",
      `Targets (issue 7): service p50 at most 1.25 x direct nsjail; fast path at most 3 x bare spawn (${ms(3 * bare50)} here).`,
      "",
      "Where a job's time goes (medians of the service's own log, `timings` of each job; the gRPC share is the rest of the client's median):",
      "",
      "| part | sandbox built for the job | fast path (warm, paced) |",
      "| --- | --- | --- |",
      ...splitRows,
      "",
      `Throughput, jobs per second, ${PER_CLIENT} jobs per client, each client's jobs back to back:`,
      "",
      "| clients | nsjail directly | Corral, fast path | / direct | Corral, built per job | / direct |",
      "| --- | --- | --- | --- | --- | --- |",
      ...tp,
    ].join("\n"),
  );
} finally {
  await cold.bench.stop();
  await warm.bench.stop();
  await rm(dir, { recursive: true, force: true });
}
