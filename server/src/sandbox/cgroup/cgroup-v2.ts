import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { killUntilEmpty, parseKeyed, readControl, readNumber, removeCgroupDir, writeControl } from "./cgroup-files.js";
import type { CgroupDriver, CgroupLimits, CgroupUsage, JobCgroup } from "./types.js";

/** Controllers a job needs on v2; cpu.stat is there without the cpu controller. */
const REQUIRED = ["memory", "pids"];

/**
 * Problems that keep the delegated v2 folder `parent` from being used, each with its fix.
 * The service must already run in a place from which it may move tasks into `parent`
 * (a systemd unit with Delegate=yes, or started inside the folder by root).
 */
export function checkCgroupV2(parent: string, user: string): string[] {
  const controllers = readControl(path.join(parent, "cgroup.controllers"))?.trim().split(/\s+/);
  if (controllers === undefined)
    return [`cgroup v2 folder ${parent} not found: run \`sudo npx corral setup-host --user ${user}\``];
  const missing = REQUIRED.filter((c) => !controllers.includes(c));
  if (missing.length > 0)
    return [
      `cgroup v2 folder ${parent} lacks the ${missing.join(", ")} controller(s): enable them in its parent's cgroup.subtree_control (\`sudo npx corral setup-host --user ${user}\`)`,
    ];
  return [];
}

/** Opens the v2 driver on `parent`: jobs live in `<parent>/<instance>/job-*`. */
export async function openCgroupV2(parent: string, instance: string): Promise<CgroupDriver> {
  const controllers = (readControl(path.join(parent, "cgroup.controllers")) ?? "").trim().split(/\s+/);
  const enable = ["memory", "pids", "cpu"]
    .filter((c) => controllers.includes(c))
    .map((c) => `+${c}`)
    .join(" ");
  // Domain controllers are handed down level by level; a folder with processes in it cannot
  // hand them down (the no-internal-process rule), so jobs never go in `parent` itself.
  writeControl(path.join(parent, "cgroup.subtree_control"), enable);
  const base = path.join(parent, instance);
  await mkdir(base, { recursive: true });
  writeControl(path.join(base, "cgroup.subtree_control"), enable);
  return {
    version: 2,
    where: base,
    async create(name) {
      const dir = path.join(base, name);
      await mkdir(dir);
      // What every job's cgroup gets, whatever its limits: written here, ahead of the job (the
      // pool makes cgroups early), not on its critical path in setLimits.
      // No swap: a job past its memory is killed, not paged out (the file is absent without swap).
      const swap = path.join(dir, "memory.swap.max");
      if (readControl(swap) !== undefined) writeControl(swap, 0);
      // An OOM kills the whole job, not one task that its parent might outlive.
      writeControl(path.join(dir, "memory.oom.group"), 1);
      return jobCgroupV2(dir);
    },
    async sweep() {
      const names = (await readdir(base, { withFileTypes: true })).filter(
        (e) => e.isDirectory() && /^(job|warm)-/.test(e.name),
      );
      for (const e of names) await jobCgroupV2(path.join(base, e.name)).remove();
      return names.length;
    },
    async close() {
      await removeCgroupDir(base);
    },
  };
}

function applyLimits(dir: string, limits: CgroupLimits): void {
  writeControl(path.join(dir, "memory.max"), limits.memoryBytes);
  writeControl(path.join(dir, "pids.max"), limits.pids);
}

function jobCgroupV2(dir: string): JobCgroup {
  const procs = path.join(dir, "cgroup.procs");
  const killAll = async (): Promise<void> => {
    // cgroup.kill (Linux 5.14+, write-only) kills every task at once, forks in flight included.
    const kill = path.join(dir, "cgroup.kill");
    if (existsSync(kill)) writeControl(kill, 1);
    await killUntilEmpty([procs]);
  };
  let removed = false;
  return {
    joinFiles: [procs],
    // Control files are read synchronously (cgroup-files.ts); the interface stays async.
    setLimits: (limits) => Promise.resolve(applyLimits(dir, limits)),
    cpuUsageUs: () => Promise.resolve(parseKeyed(readControl(path.join(dir, "cpu.stat"))).get("usage_usec") ?? 0),
    usage(): Promise<CgroupUsage> {
      const keyed = (f: string) => parseKeyed(readControl(path.join(dir, f)));
      const number = (f: string) => readNumber(path.join(dir, f));
      const [cpu, mem, pids] = [keyed("cpu.stat"), keyed("memory.events"), keyed("pids.events")];
      return Promise.resolve({
        cpuUserUs: cpu.get("user_usec") ?? 0,
        cpuSystemUs: cpu.get("system_usec") ?? 0,
        cpuTotalUs: cpu.get("usage_usec") ?? 0,
        peakMemoryBytes: number("memory.peak"),
        peakPids: number("pids.peak"),
        oomKills: Math.max(mem.get("oom_kill") ?? 0, mem.get("oom_group_kill") ?? 0),
        pidsMaxHits: pids.get("max") ?? 0,
      });
    },
    killAll,
    async remove() {
      if (removed) return;
      await killAll().catch(() => undefined);
      await removeCgroupDir(dir);
      removed = true;
    },
  };
}
