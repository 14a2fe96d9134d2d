import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkCgroupV1, openCgroupV1 } from "../../server/src/sandbox/cgroup/cgroup-v1.js";
import { checkCgroupV2, openCgroupV2 } from "../../server/src/sandbox/cgroup/cgroup-v2.js";
import { startTestService } from "../support/service.js";

// Both drivers. v1 runs against the kernel's real hierarchies (this host is hybrid: v1
// controllers, a cgroup2 mount with none). v2 runs against a folder that mimics cgroup v2's
// files, because no v2 controller exists here; the kernel's part (making control files on
// mkdir, counting, killing) is played by the test and said so.
const v1 = { root: "/sys/fs/cgroup", parent: "corral", instance: `test-drivers-${process.pid}` };
const v1Ready = (await checkCgroupV1(v1, userInfo().username)).length === 0;
const realV2 = existsSync("/sys/fs/cgroup/cgroup.controllers");

const v1Why = v1Ready ? "" : ": SKIPPED, no delegated cgroup v1 here (run `sudo npx corral setup-host --user $USER`)";

describe(`cgroup v1 driver, real kernel cgroups${v1Why}`, () => {
  afterAll(async () => {
    if (v1Ready) await (await openCgroupV1(v1)).close();
  });

  it.runIf(v1Ready)("creates a job cgroup with limits, counts a process in it, kills and removes it", async () => {
    console.log("cgroup v1: REAL kernel hierarchies under /sys/fs/cgroup/{memory,pids,cpuacct}/corral");
    const driver = await openCgroupV1(v1);
    const cg = await driver.create("job-driver");
    await cg.setLimits({ memoryBytes: 32 << 20, pids: 8 });
    const dir = (c: string) => path.join(v1.root, c, v1.parent, v1.instance, "job-driver");
    expect(Number(await readFile(path.join(dir("memory"), "memory.limit_in_bytes"), "utf8"))).toBe(32 << 20);
    expect((await readFile(path.join(dir("pids"), "pids.max"), "utf8")).trim()).toBe("8");
    // A shell joins the cgroup the way the runner's wrapper does, forks past pids.max, spins a bit.
    const script =
      'for f in "$@"; do echo $$ > "$f"; done; for i in 1 2 3 4 5 6 7 8 9; do sleep 5 </dev/null >/dev/null 2>&1 & done; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done';
    const r = spawnSync("/bin/sh", ["-c", script, "sh", ...cg.joinFiles], { encoding: "utf8" });
    expect(r.stderr).toMatch(/fork/i);
    const usage = await cg.usage();
    expect(usage.cpuTotalUs).toBeGreaterThan(0);
    expect(usage.peakPids).toBe(8);
    expect(usage.pidsMaxHits).toBeGreaterThan(0);
    expect(usage.peakMemoryBytes).toBeGreaterThan(0);
    // The sleeps outlived the shell: remove() kills them first.
    expect((await readFile(path.join(dir("pids"), "cgroup.procs"), "utf8")).trim()).not.toBe("");
    await cg.remove();
    for (const c of ["memory", "pids", "cpuacct"]) expect(existsSync(dir(c))).toBe(false);
  });

  it.runIf(v1Ready)("sweeps the job cgroups a crashed predecessor left, processes and all", async () => {
    const driver = await openCgroupV1(v1);
    const cg = await driver.create("job-orphan");
    spawnSync("/bin/sh", [
      "-c",
      'for f in "$@"; do echo $$ > "$f"; done; sleep 30 </dev/null >/dev/null 2>&1 & exit 0',
      "sh",
      ...cg.joinFiles,
    ]);
    expect(await driver.sweep()).toBe(1);
    expect(await readdir(path.join(v1.root, "pids", v1.parent, v1.instance))).not.toContain("job-orphan");
  });
});

describe(`cgroup v2 driver, ${realV2 ? "real" : "SIMULATED folder (no cgroup v2 controllers on this host)"}`, () => {
  it("writes limits, reads counters, kills and removes through v2's files", async () => {
    console.log("cgroup v2: SIMULATED: a plain folder that mimics cgroup v2's files; the test plays the kernel");
    const root = await mkdtemp(path.join(tmpdir(), "fake-cgroup2-"));
    await writeFile(path.join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
    await writeFile(path.join(root, "cgroup.subtree_control"), "");
    expect(checkCgroupV2(root, "someone")).toEqual([]);
    const driver = await openCgroupV2(root, "svc");
    expect(await readFile(path.join(root, "cgroup.subtree_control"), "utf8")).toBe("+memory +pids +cpu");
    expect(await readFile(path.join(root, "svc", "cgroup.subtree_control"), "utf8")).toBe("+memory +pids +cpu");

    const job = path.join(root, "svc", "job-1");
    const cg = await driver.create("job-1");
    await cg.setLimits({ memoryBytes: 64 << 20, pids: 17 });
    expect(await readFile(path.join(job, "memory.max"), "utf8")).toBe(String(64 << 20));
    expect(await readFile(path.join(job, "memory.oom.group"), "utf8")).toBe("1");
    expect(await readFile(path.join(job, "pids.max"), "utf8")).toBe("17");
    expect(cg.joinFiles).toEqual([path.join(job, "cgroup.procs")]);

    await writeFile(
      path.join(job, "cpu.stat"),
      "usage_usec 1500000\nuser_usec 1200000\nsystem_usec 300000\nnr_periods 0\n",
    );
    await writeFile(path.join(job, "memory.peak"), "268435456\n");
    await writeFile(path.join(job, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 1\n");
    await writeFile(path.join(job, "pids.peak"), "17\n");
    await writeFile(path.join(job, "pids.events"), "max 4\n");
    await writeFile(path.join(job, "cgroup.procs"), "");
    await writeFile(path.join(job, "cgroup.kill"), "");
    expect(await cg.cpuUsageUs()).toBe(1_500_000);
    expect(await cg.usage()).toEqual({
      cpuUserUs: 1_200_000,
      cpuSystemUs: 300_000,
      cpuTotalUs: 1_500_000,
      peakMemoryBytes: 268435456,
      peakPids: 17,
      oomKills: 1,
      pidsMaxHits: 4,
    });
    await cg.killAll();
    expect(await readFile(path.join(job, "cgroup.kill"), "utf8")).toBe("1");
    // The kernel removes a cgroup's control files with it; a plain folder needs them gone first.
    for (const f of await readdir(job)) await rm(path.join(job, f));
    await cg.remove();
    expect(existsSync(job)).toBe(false);
    await rm(root, { recursive: true });
  });

  it("says what is missing when the folder lacks a controller", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "fake-cgroup2-"));
    await writeFile(path.join(root, "cgroup.controllers"), "cpu io\n");
    expect(checkCgroupV2(root, "svc")).toEqual([expect.stringMatching(/lacks the memory, pids controller/) as string]);
    expect(checkCgroupV2(path.join(root, "absent"), "svc")).toEqual([
      expect.stringMatching(/setup-host --user svc/) as string,
    ]);
    await rm(root, { recursive: true });
  });
});

describe("start-up", () => {
  it.runIf(v1Ready)("removes job cgroups and job folders a crashed predecessor left", async () => {
    const instance = `test-sweep-${process.pid}`;
    const scratch = await mkdtemp(path.join(tmpdir(), "corral-sweep-"));
    const before = await openCgroupV1({ ...v1, instance });
    await before.create("job-left-behind");
    await mkdir(path.join(scratch, "job-left-behind", "work"), { recursive: true });
    const t = await startTestService({ CORRAL_INSTANCE: instance, CORRAL_SCRATCH_DIR: scratch });
    try {
      expect(await t.jobCgroups()).not.toContain("job-left-behind");
      expect(await t.leftoverCgroups()).toEqual([]);
      expect(await t.leftovers()).toEqual([]);
    } finally {
      await t.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
