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

/** What looking found: which hierarchy would be used, or the problems (each with its fix). */
export interface CgroupProbe {
  readonly version: 0 | 1 | 2;
  /** v2: the delegated folder; `own` when it is the service's own cgroup. */
  readonly v2Parent?: { readonly dir: string; readonly own: boolean };
  readonly problems: readonly string[];
}

const V2_MOUNT = "/sys/fs/cgroup";

/**
 * Finds the cgroup hierarchy this service may use, without changing anything, in this order:
 * a configured v2 folder; v1 (or hybrid) hierarchies with a delegated folder; the service's
 * own v2 cgroup when it is delegated (a systemd unit with Delegate=yes).
 */
export async function probeCgroups(cfg: CgroupConfig): Promise<CgroupProbe> {
  const user = userInfo().username;
  if (cfg.v2Parent !== undefined) {
    const problems = checkCgroupV2(cfg.v2Parent, user);
    return { version: problems.length ? 0 : 2, v2Parent: { dir: cfg.v2Parent, own: false }, problems };
  }
  if (existsSync(path.join(cfg.v1Root, "memory"))) {
    const problems = await checkCgroupV1({ root: cfg.v1Root, parent: cfg.v1Parent, instance: cfg.instance }, user);
    return { version: problems.length ? 0 : 1, problems };
  }
  if (existsSync(path.join(V2_MOUNT, "cgroup.controllers"))) {
    const own = /^0::(.*)$/m.exec(await readFile("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
    const dir = path.join(V2_MOUNT, own);
    const problems = checkCgroupV2(dir, user);
    return { version: problems.length ? 0 : 2, v2Parent: { dir, own: true }, problems };
  }
  return {
    version: 0,
    problems: [`no cgroup hierarchy under ${V2_MOUNT}: memory, process and CPU-time limits cannot be enforced`],
  };
}

/** The outcome of opening: a driver, or the problems that leave none. */
export interface CgroupAccess {
  readonly driver: CgroupDriver | undefined;
  readonly problems: readonly string[];
}

/** Probes, then opens the driver found. In its own v2 cgroup, the service first moves into
 * `<own>/supervisor`, so that its own cgroup may hand controllers down to job cgroups. */
export async function openCgroups(cfg: CgroupConfig): Promise<CgroupAccess> {
  const probe = await probeCgroups(cfg);
  if (probe.version === 0) return { driver: undefined, problems: probe.problems };
  if (probe.version === 1)
    return {
      driver: await openCgroupV1({ root: cfg.v1Root, parent: cfg.v1Parent, instance: cfg.instance }),
      problems: [],
    };
  const { dir, own } = probe.v2Parent!;
  if (own) {
    await mkdir(path.join(dir, "supervisor"), { recursive: true });
    writeControl(path.join(dir, "supervisor", "cgroup.procs"), process.pid);
  }
  return { driver: await openCgroupV2(dir, cfg.instance), problems: [] };
}
