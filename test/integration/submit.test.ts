import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClient,
  limits,
  Status,
  type CorralClient,
  type ExecuteRequest,
  type JobFinished,
  type WatchResponse,
} from "@corral/client";
import { corral } from "../support/cli.js";
import { startTestService, type TestService } from "../support/service.js";

// Submit, Watch, Cancel: jobs that outlive the call that started them.
const job = (script: string): ExecuteRequest => ({
  profile: "default",
  priority: 0,
  files: [],
  steps: [
    {
      argv: ["sh", "-c", script],
      env: {},
      stdin: Buffer.alloc(0),
      limits: limits({ wallTimeMs: 120_000n }),
      collect: [],
    },
  ],
});

/** Everything a watch gives: stdout, the offsets seen, drop notices and the final event. */
async function follow(client: CorralClient, id: string, fromOffset = 0) {
  let stdout = "";
  const offsets: number[] = [];
  const dropped: WatchResponse[] = [];
  let finished: JobFinished | undefined;
  for await (const r of client.watch(id, { fromOffset })) {
    offsets.push(Number(r.offset));
    if (r.item?.$case === "dropped") dropped.push(r);
    const ev = r.item?.$case === "event" ? r.item.value.event : undefined;
    if (ev?.$case === "output") stdout += Buffer.from(ev.value.data).toString();
    if (ev?.$case === "finished") finished = ev.value;
  }
  return { stdout, offsets, dropped, finished };
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("submitted jobs", () => {
  let t: TestService;
  let dir: string;
  const as = (token: string) => createClient(t.address, { token, retry: { attempts: 1 } });
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "corral-submit-"));
    const tokens = path.join(dir, "tokens");
    await writeFile(tokens, `sha256:${sha("ci-secret")} name=ci\nsha256:${sha("other-secret")} name=ci\n`);
    t = await startTestService(
      { CORRAL_TOKENS_FILE: tokens, CORRAL_JOB_OUTPUT_KEPT_BYTES: "20000", CORRAL_JOB_RETENTION_MS: "1500" },
      { client: { token: "ci-secret" } },
    );
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("a CI job printing for 30 s is followed, whole, by two watchers that join at different times", async () => {
    const started = performance.now();
    const id = await t.client.submit(job("for i in $(seq 1 60); do echo line $i; sleep 0.5; done"));
    expect(performance.now() - started).toBeLessThan(1000); // the id comes at once
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 1000));
    const early = follow(t.client, id);
    await new Promise((r) => setTimeout(r, 10_000));
    const late = follow(as("ci-secret"), id);
    const lines = Array.from({ length: 60 }, (_, i) => `line ${i + 1}\n`).join("");
    for (const w of await Promise.all([early, late])) {
      expect(w.stdout).toBe(lines);
      expect(w.dropped).toEqual([]);
      expect(w.finished?.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
      // Offsets count every event from 0, with no gap.
      expect(w.offsets).toEqual(w.offsets.map((_, i) => i));
    }
    expect(performance.now() - started).toBeGreaterThan(29_000);
  }, 60_000);

  it("watches from an offset, the job running or ended", async () => {
    const id = await t.client.submit(job("echo a; echo b; echo c"));
    const all = await follow(t.client, id);
    const from = all.offsets.at(-2)!; // the last output... or whatever precedes finished
    const tail = await follow(t.client, id, from);
    expect(tail.offsets).toEqual([from, from + 1]);
    expect(tail.finished).toEqual(all.finished);
  });

  it("cancels by id: every watcher sees the job end as cancelled, at once", async () => {
    const id = await t.client.submit(job("echo up; sleep 60"));
    const watching = follow(t.client, id);
    await new Promise((r) => setTimeout(r, 500));
    const cancelledAt = performance.now();
    await t.client.cancel(id);
    const w = await watching;
    expect(w.stdout).toBe("up\n");
    expect(w.finished?.outcome?.status).toBe(Status.STATUS_CANCELLED);
    expect(performance.now() - cancelledAt).toBeLessThan(2000);
    await expect.poll(() => t.leftovers(), { timeout: 5000 }).toEqual([]);
  });

  it("keeps a bounded amount of output: the oldest goes, and watchers are told", async () => {
    // 200 lines of 200 bytes: 40 kB, twice what this server keeps.
    const id = await t.client.submit(
      job("i=0; while [ $i -lt 200 ]; do printf '%0199d\\n' $i; i=$((i+1)); sleep 0.005; done"),
    );
    // A watcher from far past the end sees nothing and returns when the job ends.
    expect((await follow(t.client, id, 1_000_000)).offsets).toEqual([]);
    const w = await follow(t.client, id);
    expect(w.dropped).toHaveLength(1);
    const notice = w.dropped[0]!.item!;
    expect(notice.$case === "dropped" && Number(notice.value.bytes)).toBeGreaterThan(15_000);
    // What is kept is the newest output, whole lines up to the last.
    expect(w.stdout.length).toBeLessThanOrEqual(20_000);
    expect(w.stdout.endsWith(`${"0".repeat(196)}199\n`)).toBe(true);
    expect(w.finished?.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
  });

  it("is another token's to watch or cancel never, even under the same name: NOT_FOUND, as for no job", async () => {
    const id = await t.client.submit(job("sleep 2"));
    const other = as("other-secret");
    await expect(follow(other, id)).rejects.toThrow(/NOT_FOUND: job_id: no job/);
    await expect(other.cancel(id)).rejects.toThrow(/NOT_FOUND/);
    await expect(follow(t.client, "no-such-job")).rejects.toThrow(/NOT_FOUND/);
    await expect(t.client.cancel("")).rejects.toThrow(/INVALID_ARGUMENT: job_id: must not be empty/);
    await t.client.cancel(id);
  });

  it("forgets a job its retention time after it ended", async () => {
    const id = await t.client.submit(job("echo done"));
    expect((await follow(t.client, id)).stdout).toBe("done\n");
    await new Promise((r) => setTimeout(r, 2000));
    await expect(follow(t.client, id)).rejects.toThrow(/NOT_FOUND/);
  });

  it("corral submit, watch and cancel", async () => {
    const env = { CORRAL_TOKEN: "ci-secret" };
    const s = await corral(["submit", "--server", t.address, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"], {
      env,
    });
    expect(s.code, s.stderr).toBe(0);
    const id = s.stdout.trim();
    const w = await corral(["watch", "--server", t.address, id], { env });
    expect(w).toEqual({ code: 3, stdout: "hi\n", stderr: "oops\n" });

    const long = (await corral(["submit", "--server", t.address, "--", "sleep", "60"], { env })).stdout.trim();
    expect(await corral(["cancel", "--server", t.address, long], { env })).toMatchObject({ code: 0 });
    const c = await corral(["watch", "--server", t.address, long], { env });
    expect(c.code).toBe(130);
  });
});
