import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { readControl, writeControl } from "./cgroup-files.js";
import { v1ParentDirs } from "./cgroup-v1.js";

/** Where to delegate: the v1 mount root and the folder name used in each hierarchy. */
export interface DelegateOptions {
  readonly user: string;
  readonly cgroupRoot: string;
  readonly parent: string;
}

function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync("id", [flag, user], { encoding: "utf8" }).trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    throw new Error(`no such user '${user}': create it first (useradd ${user})`);
  }
}

/** Hands a folder and the named files in it (all of them when `files` is undefined) to uid:gid. */
async function handOver(dir: string, uid: number, gid: number, files?: readonly string[]): Promise<void> {
  await chown(dir, uid, gid);
  for (const f of files ?? (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name))
    if (existsSync(path.join(dir, f))) await chown(path.join(dir, f), uid, gid);
}

/**
 * `corral setup-host` (root, idempotent): makes the cgroup folder the service user may
 * create job cgroups in. cgroupfs does not survive a reboot: run it at every boot (the
 * systemd unit in deploy/ does). Returns one line per thing it did or found done.
 */
export async function delegateCgroups(o: DelegateOptions): Promise<string[]> {
  const { uid, gid } = idsOf(o.user);
  const said: string[] = [];
  if (existsSync(path.join(o.cgroupRoot, "memory"))) {
    // v1 or hybrid: one folder per hierarchy, owned (with its control files) by the user.
    for (const [c, dir] of Object.entries(v1ParentDirs({ root: o.cgroupRoot, parent: o.parent }))) {
      const existed = existsSync(dir);
      await mkdir(dir, { recursive: true });
      await handOver(dir, uid, gid);
      said.push(`cgroup v1 ${c}: ${dir} ${existed ? "already there" : "created"}, owned by ${o.user}`);
    }
    return said;
  }
  const root = o.cgroupRoot;
  if (!existsSync(path.join(root, "cgroup.controllers")))
    throw new Error(
      `no cgroup v1 hierarchy and no cgroup v2 mount at ${root}: pass the mount point with --cgroup-root`,
    );
  // v2: a folder under the root with memory, pids and cpu handed down to it. Moving tasks into
  // it needs write access to the common ancestor's cgroup.procs, so the service must itself
  // run inside it (its `supervisor` folder): deploy/corral.service does this with Delegate=yes.
  const available = (readControl(path.join(root, "cgroup.controllers")) ?? "").trim().split(/\s+/);
  const enable = ["memory", "pids", "cpu"].filter((c) => available.includes(c));
  writeControl(path.join(root, "cgroup.subtree_control"), enable.map((c) => `+${c}`).join(" "));
  const dir = path.join(root, o.parent);
  const existed = existsSync(dir);
  await mkdir(path.join(dir, "supervisor"), { recursive: true });
  const delegation = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];
  await handOver(dir, uid, gid, delegation);
  await handOver(path.join(dir, "supervisor"), uid, gid, delegation);
  said.push(
    `cgroup v2: ${dir} ${existed ? "already there" : "created"} with ${enable.join(", ")}, delegated to ${o.user}`,
  );
  said.push(
    `cgroup v2: start the service inside ${dir}/supervisor with CORRAL_CGROUP_V2_PARENT=${dir} (or use deploy/corral.service)`,
  );
  return said;
}
