import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { writeControl } from "./cgroup-files.js";
import { checkCgroupV1, openCgroupV1 } from "./cgroup-v1.js";
import { checkCgroupV2, openCgroupV2 } from "./cgroup-v2.js";
import type { CgroupDriver } from "./types.js";

/** Where to look for job cgroups (the `cgroup` part of the config). */
export interface CgroupConfig {
  readonly v1Root: string;
  readonly v1Parent: string;
  readonly v2Parent: string | undefined;
  readonly instance: string;
}

/** The outcome of looking: a driver, or the problems (each with its fix) that leave none. */
export interface CgroupAccess {
  readonly driver: CgroupDriver | undefined;
  readonly problems: readonly string[];
}

const V2_MOUNT = "/sys/fs/cgroup";

/**
 * Finds the cgroup hierarchy this service may use, in this order: a configured v2 folder; v1
 * (or hybrid) hierarchies with a delegated folder; the service's own v2 cgroup when it is
 * delegated (systemd Delegate=yes), after moving the service into `<own>/supervisor` so that
 * its own cgroup may hand controllers down.
 */
export async function openCgroups(cfg: CgroupConfig): Promise<CgroupAccess> {
  const user = userInfo().username;
  if (cfg.v2Parent !== undefined) {
    const problems = await checkCgroupV2(cfg.v2Parent, user);
    return problems.length
      ? { driver: undefined, problems }
      : { driver: await openCgroupV2(cfg.v2Parent, cfg.instance), problems };
  }
  if (existsSync(path.join(cfg.v1Root, "memory"))) {
    const v1 = { root: cfg.v1Root, parent: cfg.v1Parent, instance: cfg.instance };
    const problems = await checkCgroupV1(v1, user);
    return problems.length ? { driver: undefined, problems } : { driver: await openCgroupV1(v1), problems };
  }
  if (existsSync(path.join(V2_MOUNT, "cgroup.controllers"))) {
    const own = /^0::(.*)$/m.exec(await readFile("/proc/self/cgroup", "utf8"))?.[1];
    const parent = path.join(V2_MOUNT, own ?? "/");
    const problems = await checkCgroupV2(parent, user);
    if (problems.length) return { driver: undefined, problems };
    const supervisor = path.join(parent, "supervisor");
    await mkdir(supervisor, { recursive: true });
    await writeControl(path.join(supervisor, "cgroup.procs"), process.pid);
    return { driver: await openCgroupV2(parent, cfg.instance), problems };
  }
  return {
    driver: undefined,
    problems: [
      "no cgroup hierarchy found under /sys/fs/cgroup: memory, process and CPU-time limits cannot be enforced",
    ],
  };
}
