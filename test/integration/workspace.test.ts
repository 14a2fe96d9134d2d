import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, type ExecuteRequest, type Step } from "@corral/client";
import { once } from "node:events";
import { createWorkspace, HolderPool } from "../../server/src/sandbox/scratch.js";
import { collect, startTestService, type TestService } from "../support/service.js";

// The working directory: the job's files as a read-only lower layer, a bounded tmpfs as the
// upper one, in a mount namespace the host never sees.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const step = (script: string): Step => ({
  argv: ["sh", "-c", script],
  env: {},
  stdin: Buffer.alloc(0),
  limits: undefined,
  collect: [],
});
const files = [
  { path: "a.txt", content: Buffer.from("original a\n"), mode: 0o644 },
  { path: "dir/b.txt", content: Buffer.from("original b\n"), mode: 0o644 },
];
const job = (...scripts: string[]): ExecuteRequest => ({
  profile: "default",
  priority: 0,
  files,
  steps: scripts.map(step),
});

describe("the workspace", () => {
  it("is an overlay on a tmpfs of the profile's size, whose figures each step reports", async () => {
    const r = await collect(
      t.client,
      job("grep -c ' /workspace .* - overlay ' /proc/self/mountinfo; df -k . | tail -1; head -c 1000000 /dev/zero > f"),
    );
    const [overlays, df] = r.stdout.trim().split("\n");
    expect(overlays).toBe("1");
    // default.json: scratchBytes 64 MiB.
    expect(Number(df!.split(/\s+/)[1])).toBe(65536);
    const usage = r.finished.steps[0]!.usage!;
    expect(Number(usage.workspaceBytes)).toBeGreaterThanOrEqual(1_000_000);
    expect(Number(usage.workspaceBytes)).toBeLessThan(1_200_000);
    expect(Number(usage.workspaceInodes)).toBeGreaterThanOrEqual(1);
  });

  it("leaves the job's files on the host unchanged when a step deletes and rewrites everything", async () => {
    const seen: string[] = [];
    for await (const ev of t.client.execute(
      job("rm -rf ./* && echo rewritten > a.txt && mkdir new && echo x > new/c.txt && ls -R", "cat a.txt"),
    )) {
      if (ev.event?.$case !== "stepFinished" || ev.event.value.result?.stepIndex !== 0) continue;
      // Between the steps: the lower layer on the host, as the job gave it.
      const [jobDir] = (await readdir(t.scratchDir)).filter((n) => n.startsWith("job-"));
      const input = path.join(t.scratchDir, jobDir!, "input");
      seen.push(...(await readdir(input, { recursive: true })).sort());
      seen.push(await readFile(path.join(input, "a.txt"), "utf8"));
      seen.push(await readFile(path.join(input, "dir/b.txt"), "utf8"));
      // And nothing the job wrote is anywhere in the job's folder on the host's disk.
      const all = await readdir(path.join(t.scratchDir, jobDir!), { recursive: true });
      expect(all.filter((n) => n.includes("new") || n.includes("c.txt"))).toEqual([]);
    }
    expect(seen).toEqual(["a.txt", "dir", "dir/b.txt", "original a\n", "original b\n"]);
    expect(await t.leftovers()).toEqual([]);
  });

  it("is shared by the job's steps but never seen by another job, even one running at the same time", async () => {
    const first = collect(t.client, job("echo secret > mine.txt; sleep 1", "cat mine.txt"));
    await new Promise((r) => setTimeout(r, 300));
    const second = await collect(t.client, job("ls -A; cat mine.txt 2>&1; cat /tmp/mine.txt 2>&1; true"));
    expect(second.stdout).toBe(
      "a.txt\ndir\ncat: mine.txt: No such file or directory\ncat: /tmp/mine.txt: No such file or directory\n",
    );
    expect((await first).stdout).toBe("secret\n");
  });

  it("gives ENOSPC at its byte and file bounds, and says how full it is", async () => {
    const r = await collect(
      t.client,
      job(
        "head -c 100000000 /dev/zero > big 2>/dev/null || echo bytes: ENOSPC; rm big; " +
          "i=0; while [ $i -lt 20000 ]; do printf '' > f$i 2>/dev/null || { echo files: ENOSPC; break; }; i=$((i+1)); done",
      ),
    );
    expect(r.stdout).toBe("bytes: ENOSPC\nfiles: ENOSPC\n");
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    // default.json: scratchInodes 16384 (the root folder and the job's files take some).
    expect(Number(r.finished.steps[0]!.usage!.workspaceInodes)).toBe(16384);
    expect(await t.leftovers()).toEqual([]);
  });
});

describe("a workspace without overlayfs (hosts older than Linux 5.11)", () => {
  it("is a copy of the job's files on the bounded tmpfs, and goes without a trace", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "corral-ws-"));
    const ws = await createWorkspace(root, "copy", files, {
      bytes: 1 << 20,
      inodes: 64,
      overlay: false,
      uid: 0,
    });
    expect(await readFile(path.join(ws.view, "dir/b.txt"), "utf8")).toBe("original b\n");
    await writeFile(path.join(ws.view, "a.txt"), "changed\n");
    await expect(writeFile(path.join(ws.view, "big"), Buffer.alloc(2 << 20))).rejects.toThrow(/ENOSPC/);
    expect((await ws.usage()).bytes).toBeGreaterThanOrEqual(1 << 20);
    expect(await readFile(path.join(root, "job-copy", "input", "a.txt"), "utf8")).toBe("original a\n");
    await ws.remove();
    expect(await readdir(root)).toEqual([]);
  });
});

describe("workspace holders started ahead (HolderPool)", () => {
  it("hands each out once, replaces a dead one, and ends every spare when closed", async () => {
    const pool = new HolderPool(2, false);
    const first = pool.take();
    const second = pool.take();
    expect(second.pid).not.toBe(first.pid);
    // A spare that died while waiting is not handed out.
    pool.returned();
    const spare = pool.take();
    spare.kill("SIGKILL");
    await once(spare, "exit");
    const root = await mkdtemp(path.join(tmpdir(), "corral-pool-"));
    const ws = await createWorkspace(
      root,
      "pooled",
      files,
      { bytes: 1 << 20, inodes: 64, overlay: true, uid: 0 },
      pool,
    );
    expect(await readFile(path.join(ws.view, "a.txt"), "utf8")).toBe("original a\n");
    await ws.remove();
    const spares = [pool.take(), pool.take()];
    pool.returned();
    await pool.close();
    for (const h of [first, second]) {
      h.stdin!.end();
      if (h.exitCode === null) await once(h, "exit");
    }
    for (const h of spares) {
      h.stdin!.end();
      if (h.exitCode === null) await once(h, "exit");
    }
    expect(await readdir(root)).toEqual([]);
  });
});

describe("the job's uid", () => {
  // This host has subordinate ids for the test user (CI's corral-ci gets a range from useradd),
  // so the other files run jobs as a subordinate uid; this one checks the service's-own-uid mode.
  it("is the service's own with CORRAL_SUBORDINATE_IDS=off, and everything still works", async () => {
    const own = await startTestService({ CORRAL_SUBORDINATE_IDS: "off" });
    try {
      expect((await own.client.serverInfo()).host?.jobUid).toBe("service");
      const r = await collect(own.client, {
        profile: "default",
        priority: 0,
        files,
        steps: [
          {
            ...step("umask 077; cat a.txt > out.txt; stat -L -c %u /proc/self/fd/0; id -u"),
            collect: ["out.txt"],
          },
        ],
      });
      const [pipeOwner, uid] = r.stdout.trim().split("\n").map(Number);
      expect(pipeOwner).toBe(uid);
      expect(uid).toBe(process.getuid?.());
      const out = r.finished.steps[0];
      expect(r.events.some((e) => e.event?.$case === "stepFinished")).toBe(true);
      expect(out?.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
      const collected = r.events.flatMap((e) =>
        e.event?.$case === "stepFinished" ? (e.event.value.result?.files ?? []) : [],
      );
      expect(collected).toMatchObject([{ path: "out.txt", collected: true, mode: 0o600 }]);
      expect(Buffer.from(collected[0]!.content).toString()).toBe("original a\n");
      expect(await own.leftovers()).toEqual([]);
    } finally {
      await own.stop();
    }
  });

  it("is a subordinate uid where the host has them, and the job's 0600 files are still collected", async (ctx) => {
    const { host } = await t.client.serverInfo();
    if (host?.jobUid !== "subordinate") ctx.skip(); // a host without subordinate ids: nothing to check
    const r = await collect(t.client, {
      profile: "default",
      priority: 0,
      files: [{ path: "dir/in.txt", content: Buffer.from("in\n"), mode: 0o600 }],
      steps: [
        {
          ...step("umask 077; mkdir -p private; cat dir/in.txt > private/out.txt; echo more >> dir/in.txt"),
          collect: ["private/out.txt", "dir/in.txt"],
        },
      ],
    });
    expect(r.finished.outcome?.status, r.stderr).toBe(Status.STATUS_EXITED_ZERO);
    const collected = r.events.flatMap((e) =>
      e.event?.$case === "stepFinished" ? (e.event.value.result?.files ?? []) : [],
    );
    expect(collected.map((f) => [f.path, f.collected, f.mode, Buffer.from(f.content).toString()])).toEqual([
      ["private/out.txt", true, 0o600, "in\n"],
      ["dir/in.txt", true, 0o600, "in\nmore\n"],
    ]);
    // Given back: the service can remove everything the job's uid had.
    expect(await t.leftovers()).toEqual([]);
  });
});
