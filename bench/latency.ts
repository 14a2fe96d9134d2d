// Latency and throughput of a trivial job (/bin/true) through the full gRPC path, against its
// two baselines measured in the same run: a bare spawn from Node, and the pinned nsjail started
// directly with the same config (mounts, namespaces, rlimits, seccomp) but no service around it.
// Run: npm run bench:latency
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { limits } from "@corral/client";
import { loadConfig } from "@corral/server";
import { buildNsjailConfig } from "../server/src/sandbox/nsjail/build-config.js";
import { loadProfiles } from "../server/src/sandbox/profiles.js";
import { percentile, spread, startBenchService, writeResults } from "./support.js";

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

async function latencies(n: number, f: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await f(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timed(f));
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

const bench = await startBenchService();
const client = bench.client;
const job = {
  profile: "default",
  priority: 0,
  files: [],
  steps: [{ argv: ["true"], env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }],
};
const service = async () => {
  for await (const ev of client.execute(job)) void ev;
};

try {
  process.stdout.write(`latency: ${N} runs each...\n`);
  const lat = {
    bare: await latencies(N, bare),
    direct: await latencies(N, direct),
    service: await latencies(N, service),
  };
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const rows = (["bare", "direct", "service"] as const).map((k) => {
    const l = lat[k];
    const p50 = percentile(l, 50);
    return `| ${{ bare: "bare spawn of /bin/true from Node", direct: "nsjail run directly, same config", service: "Corral, full gRPC path" }[k]} | ${ms(p50)} | ${ms(percentile(l, 90))} | ${ms(percentile(l, 99))} | ${(p50 / percentile(lat.bare, 50)).toFixed(1)} | ${(p50 / percentile(lat.direct, 50)).toFixed(2)} |`;
  });
  process.stdout.write("throughput...\n");
  const tp: string[] = [];
  for (const c of [1, 2, 4, 16]) {
    const d = await throughput(c, direct);
    const s = await throughput(c, service);
    tp.push(`| ${c} | ${d.toFixed(1)} | ${s.toFixed(1)} | ${((s / d) * 100).toFixed(0)}% |`);
  }
  const med = spread(lat.service).median;
  await writeResults(
    "latency",
    [
      `Job cgroups: ${bench.service.cgroups}. A trivial job, one at a time, ${N} runs after 20 warm-up runs.`,
      "",
      "| path | p50 | p90 | p99 | p50 / bare | p50 / direct nsjail |",
      "| --- | --- | --- | --- | --- | --- |",
      ...rows,
      "",
      `Targets (issue 7): service p50 at most 1.25 x direct nsjail; at most 3 x bare spawn after the fast path. Service median ${med.toFixed(2)} ms.`,
      "",
      `Throughput, jobs per second, ${PER_CLIENT} jobs per client:`,
      "",
      "| clients | nsjail directly | Corral | Corral / direct |",
      "| --- | --- | --- | --- |",
      ...tp,
    ].join("\n"),
  );
} finally {
  await bench.stop();
  await rm(dir, { recursive: true, force: true });
}
