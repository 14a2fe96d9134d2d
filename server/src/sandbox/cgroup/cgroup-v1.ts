import { constants } from "node:fs";
import { access, mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { killUntilEmpty, parseKeyed, readControl, readNumber, removeCgroupDir, writeControl } from "./cgroup-files.js";
import type { CgroupDriver, CgroupLimits, CgroupUsage, JobCgroup } from "./types.js";

/**
 * The v1 hierarchies a job uses: memory (limit, peak, OOM kills), pids (limit, peak) and
 * cpuacct (CPU time). cpu is not needed: a CPU-time limit is watched, not throttled.
 */
const V1_CONTROLLERS = ["memory", "pids", "cpuacct"] as const;

type Dirs = Record<(typeof V1_CONTROLLERS)[number], string>;

/** Where the driver works: `<root>/<controller>/<parent>/<instance>/job-*`. */
export interface CgroupV1Options {
  readonly root: string;
  readonly parent: string;
  readonly instance: string;
}

/** The delegated folders this driver needs, one per hierarchy. */
export function v1ParentDirs(o: Pick<CgroupV1Options, "root" | "parent">): Dirs {
  const dirs = {} as Dirs;
  for (const c of V1_CONTROLLERS) dirs[c] = path.join(o.root, c, o.parent);
  return dirs;
}

/** Problems that keep cgroup v1 from being used here, each with its fix; empty when usable. */
export async function checkCgroupV1(o: CgroupV1Options, user: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [c, dir] of Object.entries(v1ParentDirs(o))) {
    try {
      await access(dir, constants.W_OK);
    } catch {
      problems.push(
        `cgroup v1 ${c} hierarchy not writable at ${dir}: run \`sudo npx corral setup-host --user ${user}\` (or mkdir ${dir} and chown -R it to ${user})`,
      );
    }
  }
  return problems;
}

/** Opens the v1 driver; `checkCgroupV1` must have found no problem. */
export async function openCgroupV1(o: CgroupV1Options): Promise<CgroupDriver> {
  const parents = v1ParentDirs(o);
  const base = {} as Dirs;
  for (const c of V1_CONTROLLERS) {
    base[c] = path.join(parents[c], o.instance);
    await mkdir(base[c], { recursive: true });
  }
  const dirsOf = (name: string): Dirs => {
    const d = {} as Dirs;
    for (const c of V1_CONTROLLERS) d[c] = path.join(base[c], name);
    return d;
  };
  return {
    version: 1,
    where: `${path.join(o.root, "{memory,pids,cpuacct}", o.parent, o.instance)}`,
    async create(name) {
      const dirs = dirsOf(name);
      const cgroup = jobCgroupV1(dirs);
      try {
        for (const c of V1_CONTROLLERS) await mkdir(dirs[c]);
      } catch (err) {
        await cgroup.remove();
        throw err;
      }
      return cgroup;
    },
    async sweep() {
      const names = new Set<string>();
      for (const c of V1_CONTROLLERS)
        for (const e of await readdir(base[c], { withFileTypes: true }))
          if (e.isDirectory() && /^(job|warm)-/.test(e.name)) names.add(e.name);
      for (const name of names) await jobCgroupV1(dirsOf(name)).remove();
      return names.size;
    },
    async close() {
      for (const c of V1_CONTROLLERS) await removeCgroupDir(base[c]);
    },
  };
}

function applyLimits(dirs: Dirs, limits: CgroupLimits): void {
  const memory = path.join(dirs.memory, "memory.limit_in_bytes");
  // memory+swap at the same value turns swap off for the job (where swap accounting exists).
  // The kernel keeps memory <= memory+swap at every step: raising a limit already set (a warm
  // sandbox's) writes memory+swap first, lowering it memory first.
  const memsw = path.join(dirs.memory, "memory.memsw.limit_in_bytes");
  const swapNow = readControl(memsw);
  const order = swapNow !== undefined && limits.memoryBytes > Number(swapNow) ? [memsw, memory] : [memory, memsw];
  for (const file of order) if (file === memory || swapNow !== undefined) writeControl(file, limits.memoryBytes);
  writeControl(path.join(dirs.pids, "pids.max"), limits.pids);
}

function jobCgroupV1(dirs: Dirs): JobCgroup {
  const procs = V1_CONTROLLERS.map((c) => path.join(dirs[c], "cgroup.procs"));
  const killAll = () => killUntilEmpty(procs);
  let removed = false;
  return {
    joinFiles: procs,
    // Control files are read synchronously (cgroup-files.ts); the interface stays async.
    setLimits: (limits) => Promise.resolve(applyLimits(dirs, limits)),
    cpuUsageUs: () => Promise.resolve((readNumber(path.join(dirs.cpuacct, "cpuacct.usage")) ?? 0) / 1000),
    usage(): Promise<CgroupUsage> {
      const us = (f: string) => (readNumber(path.join(dirs.cpuacct, f)) ?? 0) / 1000;
      const oom = parseKeyed(readControl(path.join(dirs.memory, "memory.oom_control")));
      const pidsEvents = parseKeyed(readControl(path.join(dirs.pids, "pids.events")));
      return Promise.resolve({
        cpuUserUs: us("cpuacct.usage_user"),
        cpuSystemUs: us("cpuacct.usage_sys"),
        cpuTotalUs: us("cpuacct.usage"),
        peakMemoryBytes: readNumber(path.join(dirs.memory, "memory.max_usage_in_bytes")),
        peakPids: readNumber(path.join(dirs.pids, "pids.peak")),
        oomKills: oom.get("oom_kill") ?? 0,
        pidsMaxHits: pidsEvents.get("max") ?? 0,
      });
    },
    killAll,
    async remove() {
      if (removed) return;
      await killAll().catch(() => undefined);
      await Promise.all(V1_CONTROLLERS.map((c) => removeCgroupDir(dirs[c])));
      removed = true;
    },
  };
}
