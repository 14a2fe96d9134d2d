import { describe, expect, it } from "vitest";
import type { JobEvent } from "../../server/src/domain.js";
import { JobStore, type WatchItem } from "../../server/src/jobs/job-store.js";

const out = (text: string): JobEvent => ({ kind: "output", stepIndex: 0, stream: "stdout", data: Buffer.from(text) });
const finished: JobEvent = { kind: "finished", steps: [] };
const all = async (items: AsyncIterable<WatchItem>): Promise<string[]> => {
  const seen: string[] = [];
  for await (const i of items)
    seen.push(
      i.kind === "dropped"
        ? `dropped ${i.fromOffset}-${i.toOffset} ${i.bytes}`
        : `${i.offset} ${i.event.kind === "output" ? Buffer.from(i.event.data).toString() : i.event.kind}`,
    );
  return seen;
};

describe("JobStore", () => {
  it("keeps at most the output cap, dropping the oldest output and never other events", async () => {
    const store = new JobStore({ retentionMs: 1000, outputKeptBytes: 4, endedKeptBytes: 1000 });
    const job = store.add("j", "alice", () => undefined);
    job.emit({ kind: "queued", jobId: "j", position: 0 });
    for (const t of ["ab", "cd", "ef"]) job.emit(out(t));
    job.emit(finished);
    expect(await all(job.watch(0, new AbortController().signal))).toEqual([
      "0 queued",
      "dropped 1-2 2",
      "2 cd",
      "3 ef",
      "4 finished",
    ]);
    expect(await all(job.watch(3, new AbortController().signal))).toEqual(["3 ef", "4 finished"]);
  });

  it("gives a watcher live events until the job ends", async () => {
    const job = new JobStore({ retentionMs: 1000, outputKeptBytes: 100, endedKeptBytes: 1000 }).add(
      "j",
      "alice",
      () => undefined,
    );
    const watching = all(job.watch(0, new AbortController().signal));
    job.emit(out("x"));
    await new Promise((r) => setTimeout(r, 10));
    job.emit(out("y"));
    job.emit(finished);
    expect(await watching).toEqual(["0 x", "1 y", "2 finished"]);
  });

  it("holds bounded memory however much a job prints, and only the newest queue position", async () => {
    const job = new JobStore({ retentionMs: 1000, outputKeptBytes: 1000, endedKeptBytes: 1000 }).add(
      "j",
      "alice",
      () => undefined,
    );
    job.emit({ kind: "queued", jobId: "j", position: 5 });
    for (let p = 4; p >= 0; p--) job.emit({ kind: "queued", jobId: "j", position: p });
    job.emit({ kind: "started", stepIndex: 0 });
    for (let i = 0; i < 100_000; i++) job.emit(out("0123456789"));
    job.emit(finished);
    const seen = await all(job.watch(0, new AbortController().signal));
    // The first queued event (it carries the id), the newest, the start, then the gap, then the
    // last 100 outputs (1000 bytes) and the end.
    expect(seen.slice(0, 4)).toEqual(["0 queued", "5 queued", "6 started", "dropped 7-99907 999000"]);
    expect(seen).toHaveLength(4 + 100 + 1);
    expect(seen.at(-2)).toBe("100006 0123456789");
    expect(seen.at(-1)).toBe("100007 finished");
  });

  it("reports every dropped output even after all kept output was let go at once", async () => {
    // Each chunk bigger than the cap: every output is dropped as it comes.
    const job = new JobStore({ retentionMs: 1000, outputKeptBytes: 4, endedKeptBytes: 1000 }).add("j", "a", () => {});
    job.emit({ kind: "started", stepIndex: 0 });
    for (let i = 0; i < 1100; i++) job.emit(out("0123456789"));
    job.emit(finished);
    expect(await all(job.watch(0, new AbortController().signal))).toEqual([
      "0 started",
      "dropped 1-1101 11000",
      "1101 finished",
    ]);
  });

  it("forgets the jobs that ended first once the ended ones hold more output than the cap", () => {
    const store = new JobStore({ retentionMs: 60_000, outputKeptBytes: 100, endedKeptBytes: 150 });
    const run = (id: string, bytes: number) => {
      const job = store.add(id, "alice", () => undefined);
      job.emit(out("x".repeat(bytes)));
      job.emit(finished);
      store.ended(job);
    };
    run("a", 80);
    run("b", 60);
    expect([store.get("a", "alice")?.id, store.get("b", "alice")?.id]).toEqual(["a", "b"]);
    run("c", 80); // 220 bytes: a goes
    expect([store.get("a", "alice"), store.get("b", "alice")?.id, store.get("c", "alice")?.id]).toEqual([
      undefined,
      "b",
      "c",
    ]);
    // A running job is never forgotten for this.
    const running = store.add("d", "alice", () => undefined);
    running.emit(out("y".repeat(100)));
    run("e", 100);
    expect(store.get("d", "alice")?.id).toBe("d");
    expect(store.get("e", "alice")?.id).toBe("e");
  });

  it("shows a job to its owner only", () => {
    const store = new JobStore({ retentionMs: 1000, outputKeptBytes: 100, endedKeptBytes: 1000 });
    store.add("j", "alice", () => undefined);
    expect(store.get("j", "alice")?.id).toBe("j");
    expect(store.get("j", "bob")).toBeUndefined();
    expect(store.get("k", "alice")).toBeUndefined();
  });
});
