import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, type ExecuteRequest } from "@corral/client";
import { collect, job, limits, startTestService, type Collected, type TestService } from "../support/service.js";

const run = promisify(execFile);

// The fast path: sandboxes built ahead (CORRAL_WARM_SANDBOXES per CORRAL_WARM_PROFILES), each
// used by one job of one step and no files, never again.
let t: TestService;
const log: string[] = [];
beforeAll(async () => {
  const lines = new PassThrough();
  lines.setEncoding("utf8");
  lines.on("data", (s: string) => log.push(...s.split("\n").filter(Boolean)));
  t = await startTestService({ CORRAL_WARM_SANDBOXES: "2", CORRAL_WARM_PROFILES: "default" }, { log: lines });
});
afterAll(async () => {
  await t?.stop();
});

/** Pids of this service's warm sandboxes' nsjail (their configs are in its scratch folder). */
async function warmNsjails(): Promise<number[]> {
  const { stdout } = await run("pgrep", ["-f", `nsjail .*${t.scratchDir}/job-warm-`]).catch(() => ({ stdout: "" }));
  return stdout.split("\n").filter(Boolean).map(Number);
}

/** How many of them wait for a job (their first program, warm-start, is running). */
async function warmReady(): Promise<number> {
  let ready = 0;
  for (const pid of await warmNsjails()) {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
    for (const child of children.split(" ").filter(Boolean)) {
      const cmdline = await readFile(`/proc/${child}/cmdline`, "utf8").catch(() => "");
      if (cmdline.startsWith("corral-warm-start")) ready++;
    }
  }
  return ready;
}

/** Waits until the pool is full again (it refills after each job). */
const poolFull = () => expect.poll(warmReady, { timeout: 10_000 }).toBe(2);

/** Whether the job with this id ran its step in a warm sandbox, from the service's log. */
function ranWarm(jobId: string): boolean | undefined {
  for (const line of log) {
    const e = JSON.parse(line) as { jobId?: string; event?: string; warm?: boolean };
    if (e.jobId === jobId && e.event === "started") return e.warm;
  }
  return undefined;
}

const jobIdOf = (r: Collected): string =>
  r.events.flatMap((e) => (e.event?.$case === "queued" ? [e.event.value.jobId] : []))[0]!;

/** Runs a job once the pool is full again, and checks that it took a warm sandbox. */
async function inWarm(request: ExecuteRequest): Promise<Collected> {
  await poolFull();
  const r = await collect(t.client, request);
  expect(ranWarm(jobIdOf(r))).toBe(true);
  return r;
}

describe("warm sandboxes", () => {
  it("run a job of one step and no files, and are built again after", async () => {
    const r = await inWarm(job(["sh", "-c", "echo $$; id -u; pwd"]));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    // The program is the jail's init, in the workspace, as the jail's user: as in a cold sandbox.
    expect(r.stdout).toBe(`1\n${process.getuid!()}\n/workspace\n`);
    await poolFull();
  });

  it("are never used twice: a job sees nothing an earlier one left", async () => {
    await poolFull();
    const first = await collect(t.client, job(["sh", "-c", "echo left > /workspace/a; echo left > /tmp/b"]));
    expect(first.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    const second = await collect(t.client, job(["sh", "-c", "ls -A /workspace /tmp"]));
    expect(ranWarm(jobIdOf(first))).toBe(true);
    expect(ranWarm(jobIdOf(second))).toBe(true);
    expect(second.stdout).toBe("/tmp:\n\n/workspace:\n");
  });

  it("give each job its own limits: rlimits lowered to what it asked, cgroup limits set", async () => {
    // Not whole MiB: both paths round up to whole MiB, as nsjail takes them.
    const ask = { cpuTimeMs: 2000n, fileSizeBytes: 3_000_000n, openFiles: 77, stackBytes: 4_000_000n };
    const script = "ulimit -t; ulimit -f; ulimit -n; ulimit -s";
    // With a file the job cannot have a warm sandbox: the same limits, built on demand.
    const cold = await collect(
      t.client,
      job(
        ["sh", "-c", script],
        { limits: limits(ask) },
        { files: [{ path: "f", content: Buffer.from("x"), mode: 0o644 }] },
      ),
    );
    const warm = await inWarm(job(["sh", "-c", script], { limits: limits(ask) }));
    expect(ranWarm(jobIdOf(cold))).toBe(false);
    // CPU: the limit's seconds plus one (a backstop behind the CPU watch); dash's ulimit -f
    // counts 512-byte blocks, -s KiB.
    expect(warm.stdout).toBe("3\n6144\n77\n4096\n");
    expect(cold.stdout).toBe(warm.stdout);
    const oom = await inWarm(
      job(["python3", "-c", "b = bytearray(128 << 20); print(len(b))"], {
        limits: limits({ memoryBytes: 64n << 20n }),
      }),
    );
    expect(oom.finished.outcome?.status).toBe(Status.STATUS_MEMORY_LIMIT);
    // More than the profile's default (256 MiB), which the sandbox waited with: raised.
    const more = await inWarm(
      job(["python3", "-c", "b = bytearray(300 << 20); print(len(b) >> 20)"], {
        limits: limits({ memoryBytes: 512n << 20n }),
      }),
    );
    expect(more.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    expect(more.stdout).toBe("300\n");
  });

  it("count CPU time and memory from the job's start, not from the sandbox's", async () => {
    const r = await inWarm(job(["true"]));
    // nsjail's own set-up (some ms of CPU) is not the job's.
    expect(Number(r.finished.usage?.cpuTimeMs)).toBeLessThan(5);
    expect(Number(r.finished.usage?.peakMemoryBytes)).toBeGreaterThan(0);
  });

  it("report a program that is not there as a set-up failure, and leave nothing", async () => {
    const r = await collect(t.client, job(["/no/such/program"]));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_SETUP_FAILURE);
    expect(r.finished.outcome?.detail).toMatch(/execve\('\/no\/such\/program'\) failed: No such file/);
    await expect.poll(() => t.leftovers(), { timeout: 5000 }).toEqual([]);
    expect(await t.leftoverCgroups()).toEqual([]);
  });

  it("whose nsjail has died are not used, and are replaced", async () => {
    await poolFull();
    const killed = await warmNsjails();
    for (const pid of killed) process.kill(pid, "SIGKILL");
    await expect.poll(async () => (await warmNsjails()).filter((p) => killed.includes(p))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the service hears of their end
    const r = await collect(t.client, job(["echo", "fine"]));
    expect(r.stdout).toBe("fine\n");
    await expect.poll(warmNsjails, { timeout: 10_000 }).toHaveLength(2);
    await expect.poll(() => t.leftovers(), { timeout: 5000 }).toEqual([]);
  });
});

describe("the warm sandbox settings", () => {
  it("refuse a profile that does not exist, naming it", async () => {
    await expect(startTestService({ CORRAL_WARM_PROFILES: "default,nope" })).rejects.toThrow(
      /CORRAL_WARM_PROFILES: no profile 'nope'/,
    );
  });

  it("turn the fast path off with CORRAL_WARM_SANDBOXES=0", async () => {
    const lines = new PassThrough();
    const seen: string[] = [];
    lines.on("data", (b: Buffer) => seen.push(b.toString()));
    const off = await startTestService({ CORRAL_WARM_SANDBOXES: "0" }, { log: lines });
    const r = await collect(off.client, job(["true"]));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    expect(seen.join("")).toContain('"warm":false');
    expect(await off.leftovers()).toEqual([]);
    expect((await readdir(off.scratchDir)).filter((n) => n.includes("warm"))).toEqual([]);
  });
});
