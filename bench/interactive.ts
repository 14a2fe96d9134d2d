// Interactive round trip: a small line sent to `cat` and read back, through the service's
// Interact call, against the same with `cat` spawned straight from Node. go-judge reports about
// 30 µs through its relay (shared/docs/peers.md). Run: npm run bench:interactive
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { limits, type ExecuteResponse } from "@corral/client";
import { percentile, spread, startServeProcess, writeResults } from "./support.js";

const N = Number(process.env.BENCH_ROUND_TRIPS ?? 2000);
const LINE = Buffer.from("ping 0123456789\n");

/** Times N round trips: `send` a line, then wait until `received` has grown by its length. */
async function roundTrips(send: (b: Buffer) => Promise<void> | void, wait: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < N + 50; i++) {
    const t = performance.now();
    await send(LINE);
    await wait();
    if (i >= 50) times.push((performance.now() - t) * 1000);
  }
  return times;
}

/** Resolves each time `bytes` more have arrived from an async source of chunks. */
function arrivals(source: AsyncIterable<Uint8Array>, bytes: number): () => Promise<void> {
  const it = source[Symbol.asyncIterator]();
  let have = 0;
  return async () => {
    while (have < bytes) {
      const r = await it.next();
      if (r.done) throw new Error("the stream ended");
      have += r.value.length;
    }
    have -= bytes;
  };
}

const bare = spawn("cat", [], { stdio: ["pipe", "pipe", "ignore"] });
const bareTimes = await roundTrips(
  (b) => void bare.stdin.write(b),
  arrivals(bare.stdout as Readable & AsyncIterable<Buffer>, LINE.length),
);
bare.stdin.end();

const service = await startServeProcess();
const run = service.client.interact({
  profile: "default",
  priority: 0,
  files: [],
  steps: [
    {
      argv: ["cat"],
      env: {},
      stdin: Buffer.alloc(0),
      limits: limits({ wallTimeMs: 600_000n }),
      collect: [],
    },
  ],
});
async function* stdoutOf(events: AsyncIterable<ExecuteResponse>): AsyncIterable<Uint8Array> {
  for await (const ev of events) if (ev.event?.$case === "output") yield ev.event.value.data;
}
const serviceTimes = await roundTrips((b) => run.write(b), arrivals(stdoutOf(run), LINE.length));
run.closeStdin();
await service.stop();

const us = (x: number) => `${x.toFixed(0)} µs`;
const row = (name: string, times: number[]) => {
  const p = (q: number) => percentile(times, q);
  return `| ${name} | ${us(p(50))} | ${us(p(90))} | ${us(p(99))} | ${(p(50) / spread(bareTimes).median).toFixed(1)} |`;
};
await writeResults(
  "interactive",
  [
    `A ${LINE.length}-byte line to \`cat\` and back, ${N} round trips after 50 warm-up ones.`,
    "",
    "| path | p50 | p90 | p99 | p50 / bare |",
    "| --- | --- | --- | --- | --- |",
    row("`cat` spawned from Node, its pipes", bareTimes),
    row("Corral Interact: client, gRPC on loopback, service, nsjail's pipes, `cat` in the sandbox", serviceTimes),
    "",
    "go-judge reports about 30 µs through its relay (peers.md); its figure is not from this machine.",
  ].join("\n"),
);
