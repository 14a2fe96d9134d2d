// The service's resident memory: idle, with 10,000 jobs queued, and after they drain (issue:
// a service operators can trust). Runs `corral serve` as its own process and reads its VmRSS.
// Run: npm run bench:memory
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, limits } from "@corral/client";
import { writeResults } from "./support.js";

const QUEUED = Number(process.env.BENCH_QUEUED ?? 10_000);
const rssMiB = async (pid: number) =>
  Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const scratch = await mkdtemp(path.join(tmpdir(), "corral-bench-mem-"));
const serve = spawn(process.execPath, [path.resolve("clients/ts/dist/cli/main.js"), "serve"], {
  stdio: ["ignore", "ignore", "pipe"],
  env: {
    ...process.env,
    CORRAL_LISTEN: "127.0.0.1:0",
    CORRAL_CONCURRENCY: "2",
    CORRAL_BACKLOG: String(QUEUED + 10),
    CORRAL_SCRATCH_DIR: scratch,
    CORRAL_INSTANCE: path.basename(scratch),
    CORRAL_LOG_LEVEL: "warn",
  },
});
let log = "";
serve.stderr.on("data", (d: Buffer) => (log += d.toString()));
// With log level warn the address is not logged: ask the kernel for the port instead.
await sleep(1500);
const port = /127\.0\.0\.1:(\d+)/.exec(
  (await import("node:child_process"))
    .execFileSync("ss", ["-ltnpH"], { encoding: "utf8" })
    .split("\n")
    .find((l) => l.includes(`pid=${serve.pid},`)) ?? "",
)?.[1];
if (!port) throw new Error(`could not find the service's port; its log:\n${log}`);
const client = createClient(`127.0.0.1:${port}`);
const idle = await rssMiB(serve.pid!);

const job = {
  profile: "default",
  priority: 0,
  files: [],
  steps: [{ argv: ["true"], env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }],
};
const started = performance.now();
const runs = Array.from({ length: QUEUED }, async () => {
  for await (const ev of client.execute(job)) void ev;
});
let peakQueued = 0;
let queuedRss = 0;
for (;;) {
  const info = await client.serverInfo();
  if (info.queueDepth > peakQueued) {
    peakQueued = info.queueDepth;
    queuedRss = await rssMiB(serve.pid!);
  }
  if (info.queueDepth < peakQueued * 0.9 || info.queueDepth >= QUEUED - 2) break;
  await sleep(200);
}
await Promise.all(runs);
const drainSeconds = (performance.now() - started) / 1000;
await sleep(2000);
const after = await rssMiB(serve.pid!);
client.close();
serve.kill("SIGTERM");
await new Promise((r) => serve.on("close", r));
await rm(scratch, { recursive: true, force: true });

await writeResults(
  "memory",
  [
    `The service's resident set (VmRSS of \`corral serve\`), concurrency 2, backlog ${QUEUED + 10}.`,
    "",
    "| state | RSS | ratio to idle |",
    "| --- | --- | --- |",
    `| idle, after start | ${idle.toFixed(1)} MiB | 1.00 |`,
    `| ${peakQueued} jobs queued | ${queuedRss.toFixed(1)} MiB | ${(queuedRss / idle).toFixed(2)} |`,
    `| after they drained (${drainSeconds.toFixed(1)} s for ${QUEUED} jobs) | ${after.toFixed(1)} MiB | ${(after / idle).toFixed(2)} |`,
    "",
    `Per queued job: ${(((queuedRss - idle) * 1024) / Math.max(1, peakQueued)).toFixed(1)} KiB.`,
  ].join("\n"),
);
