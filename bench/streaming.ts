// Streaming: 1 GiB of stdout through the service to a client that discards it, against the
// same bytes from `cat` into a pipe that Node reads and discards. Issue 7's target: at least
// 50% of the pipe's rate. Run: npm run bench:streaming
import { spawn } from "node:child_process";
import { limits } from "@corral/client";
import { spread, startServeProcess, writeResults } from "./support.js";

const BYTES = Number(process.env.BENCH_STREAM_BYTES ?? 2 ** 30);
const ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 3);
const MB = 1e6;

/** `head` makes the bytes, `cat` writes them into the pipe Node reads: the physical floor. */
async function pipeRate(): Promise<number> {
  const t = performance.now();
  const child = spawn("sh", ["-c", `head -c ${BYTES} /dev/zero | cat`], { stdio: ["ignore", "pipe", "inherit"] });
  let got = 0;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) got += chunk.length;
  if (got !== BYTES) throw new Error(`pipe: ${got} bytes, expected ${BYTES}`);
  return BYTES / MB / ((performance.now() - t) / 1000);
}

// The service in its own process, as deployed: the client here does not share its event loop.
const bench = await startServeProcess();
async function serviceRate(): Promise<number> {
  const t = performance.now();
  let got = 0;
  const job = {
    profile: "default",
    priority: 0,
    files: [],
    steps: [
      {
        argv: ["sh", "-c", `head -c ${BYTES} /dev/zero | cat`],
        env: {},
        stdin: Buffer.alloc(0),
        limits: limits({ outputBytes: BigInt(BYTES), wallTimeMs: 600_000n, cpuTimeMs: 600_000n }),
        collect: [],
      },
    ],
  };
  for await (const ev of bench.client.execute(job)) if (ev.event?.$case === "output") got += ev.event.value.data.length;
  if (got !== BYTES) throw new Error(`service: ${got} bytes, expected ${BYTES}`);
  return BYTES / MB / ((performance.now() - t) / 1000);
}

try {
  const pipe: number[] = [];
  const service: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    pipe.push(await pipeRate());
    service.push(await serviceRate());
  }
  const p = spread(pipe);
  const s = spread(service);
  const row = (name: string, r: { min: number; median: number; max: number }) =>
    `| ${name} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} | ${((r.median / p.median) * 100).toFixed(0)}% |`;
  await writeResults(
    "streaming",
    [
      `${(BYTES / 2 ** 30).toFixed(2)} GiB of stdout, ${ROUNDS} rounds, alternating. MB/s (10^6 bytes per second).`,
      "",
      "| path | median MB/s | min | max | of the pipe |",
      "| --- | --- | --- | --- | --- |",
      row("`head`, piped to `cat`, into a pipe Node reads", p),
      row("Corral: the same commands sandboxed, gRPC stream to a client on loopback", s),
      "",
      `Target (issue 7): at least 50% of the pipe's rate. Measured: ${((s.median / p.median) * 100).toFixed(0)}%.`,
    ].join("\n"),
  );
} finally {
  await bench.stop();
}
