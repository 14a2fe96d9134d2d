// The service's resident memory: idle, with 10,000 jobs queued, and after they drain (issue:
// a service operators can trust). Runs `corral serve` as its own process and reads its VmRSS.
// Run: npm run bench:memory
import { readFile } from "node:fs/promises";
import { limits } from "@corral/client";
import { startServeProcess, writeResults } from "./support.js";

const QUEUED = Number(process.env.BENCH_QUEUED ?? 10_000);
const rssMiB = async (pid: number) =>
  Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const service = await startServeProcess({
  CORRAL_CONCURRENCY: "2",
  CORRAL_BACKLOG: String(QUEUED + 10),
});
const idle = await rssMiB(service.process.pid!);

const job = {
  profile: "default",
  priority: 0,
  files: [],
  steps: [{ argv: ["true"], env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }],
};
const started = performance.now();
const runs = Array.from({ length: QUEUED }, async () => {
  for await (const ev of service.client.execute(job)) void ev;
});
let peakQueued = 0;
let queuedRss = 0;
for (;;) {
  const info = await service.client.serverInfo();
  if (info.queueDepth > peakQueued) {
    peakQueued = info.queueDepth;
    queuedRss = await rssMiB(service.process.pid!);
  }
  if (info.queueDepth < peakQueued * 0.9 || info.queueDepth >= QUEUED - 2) break;
  await sleep(200);
}
await Promise.all(runs);
const drainSeconds = (performance.now() - started) / 1000;
await sleep(2000);
const after = await rssMiB(service.process.pid!);
await service.stop();

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
