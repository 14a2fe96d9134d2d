import { spawnSync } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import pino from "pino";
import { APPARMOR_PROFILES, appArmorEnabled, appArmorLoaded } from "./apparmor.js";
import { probeCgroups, type CgroupConfig } from "./cgroup/open-cgroups.js";
import { createNsjailRunner } from "./nsjail/nsjail-runner.js";
import { SUBORDINATE_IDS } from "./holder-ns.js";
import { loadProfiles } from "./profiles.js";
import { createWorkspace, removeTree, sweepWorkspaces, unsearchableOnTheWay } from "./scratch.js";

/** Thrown at start-up when this host lacks something the service cannot run without. */
export class HostError extends Error {
  override readonly name = "HostError";
}

/** Checks that the configured nsjail can be executed; the error names the fix. */
export async function checkNsjail(nsjailPath: string): Promise<void> {
  try {
    await access(nsjailPath, constants.X_OK);
  } catch {
    throw new HostError(
      `nsjail not found or not executable at ${nsjailPath}: run \`sudo npm run setup\` in the repository, or set CORRAL_NSJAIL to an nsjail 3.6 binary`,
    );
  }
}

/** One line of `corral doctor`. */
export interface HostCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was found, or what is missing and the command that fixes it. */
  readonly detail: string;
}

/** What the host checks need from the config. */
export interface HostCheckOptions {
  readonly nsjailPath: string;
  readonly profilesDir: string;
  readonly cgroup: CgroupConfig;
}

/**
 * Checks the host as the service will use it: nsjail, a real rootless sandbox (the `default`
 * profile running `true`), and the delegated cgroups that memory, process and CPU-time
 * limits need. `scratch` is a folder for the trial sandbox's workspace.
 */
export async function checkHost(o: HostCheckOptions, scratch: string): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  try {
    await checkNsjail(o.nsjailPath);
    checks.push({ name: "nsjail", ok: true, detail: o.nsjailPath });
  } catch (err) {
    return [{ name: "nsjail", ok: false, detail: (err as Error).message }];
  }
  const overlay = await probeOverlay(scratch);
  // As the service leaves its scratch folder: searchable, for a subordinate uid.
  await sweepWorkspaces(scratch);
  const subordinate = await jobUidMode(scratch);
  const profile = (await loadProfiles(o.profilesDir)).get("default");
  if (!profile)
    checks.push({
      name: "sandbox",
      ok: false,
      detail: `no default profile in ${o.profilesDir}: the trial sandbox needs default.json`,
    });
  else {
    const runner = createNsjailRunner({
      nsjailPath: o.nsjailPath,
      cgroups: undefined,
      logger: pino({ level: "silent" }),
    });
    const ws = await createWorkspace(scratch, "doctor", [], {
      bytes: profile.scratchBytes,
      inodes: profile.scratchInodes,
      overlay: overlay.ok,
      uid: subordinate.ok ? 1 : 0,
    });
    try {
      const limits = { ...profile.limits, wallTimeMs: 10_000 };
      const sink = { write: () => true, drained: () => Promise.resolve() };
      const spec = { runId: "doctor", profile, argv: ["true"], env: {}, stdin: new Uint8Array(), limits };
      const r = await runner.run(
        { ...spec, workspace: { dir: ws.dir, holderPid: ws.holderPid, uid: ws.uid }, privateDir: ws.privateDir },
        sink,
        new AbortController().signal,
      );
      checks.push(
        r.outcome.status === "exited-zero"
          ? {
              name: "sandbox",
              ok: true,
              detail: "a rootless sandbox (user, mount, pid, net, ipc, uts, cgroup namespaces) ran true",
            }
          : {
              name: "sandbox",
              ok: false,
              detail: `${r.outcome.detail} (if nsjail could not make the namespaces: unprivileged user namespaces must be allowed, sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 23.10+ \`sudo npm run setup\` installs the AppArmor profile that allows them)`,
            },
      );
    } finally {
      await ws.remove();
    }
  }
  checks.push(checkAppArmor());
  checks.push({ name: "overlay", ...overlay });
  checks.push({ name: "job uid", ...subordinate });
  const cg = await probeCgroups(o.cgroup);
  checks.push(
    cg.version
      ? { name: "cgroups", ok: true, detail: `v${cg.version}: memory, process and CPU-time limits are enforceable` }
      : {
          name: "cgroups",
          ok: false,
          detail: `memory, process and CPU-time limits unavailable: ${cg.problems.join("; ")}`,
        },
  );
  return checks;
}

/** AppArmor: off in the kernel is fine (other walls hold); on, Corral's profiles must be loaded. */
function checkAppArmor(): HostCheck {
  if (!appArmorEnabled())
    return {
      name: "apparmor",
      ok: true,
      detail: "not in this kernel: Corral's profiles are not applied (namespaces and seccomp still hold)",
    };
  const loaded = APPARMOR_PROFILES.map((p) => [p, appArmorLoaded(p)] as const);
  if (loaded.some(([, l]) => l === undefined))
    return {
      name: "apparmor",
      ok: true,
      detail: "active; only root can list the loaded profiles: check with `sudo aa-status`",
    };
  const missing = loaded.filter(([, l]) => !l).map(([p]) => p);
  return missing.length === 0
    ? { name: "apparmor", ok: true, detail: `active; ${APPARMOR_PROFILES.join(" and ")} loaded` }
    : {
        name: "apparmor",
        ok: false,
        detail: `active but ${missing.join(", ")} not loaded: run \`sudo npx corral setup-host --user $USER\``,
      };
}

/**
 * Whether jobs can run as a subordinate uid of this user's (an /etc/subuid and /etc/subgid
 * range, and newuidmap/newgidmap to map it), so that nothing of the service's is theirs.
 */
/** Whether jobs run as subordinate uids (ok), why or why not, and how many there are. */
export interface JobUidMode {
  readonly ok: boolean;
  readonly detail: string;
  readonly count?: number;
}

function probeSubordinateIds(): JobUidMode {
  const r = spawnSync("unshare", ["--user", ...SUBORDINATE_IDS, "cat", "/proc/self/uid_map"], {
    encoding: "utf8",
  });
  const ranges = r.status === 0 ? r.stdout.trim().split("\n") : [];
  const first = ranges[1]?.trim().split(/\s+/);
  if (first?.[0] === "1")
    return {
      ok: true,
      count: Number(first[2]),
      detail: `jobs run as host uids ${first[1]} to ${Number(first[1]) + Number(first[2]) - 1} in turn (subordinate uids), not the service's own ${process.getuid?.()}`,
    };
  const why = (r.stderr || r.error?.message || "no subordinate range mapped").trim();
  const user = userInfo().username;
  return {
    ok: false,
    detail: `jobs run as the service's own uid: no subordinate ids (${why}); to isolate them, install uidmap and give ${user} a range in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user})`,
  };
}

/**
 * Whether jobs run as a subordinate uid here: the ids exist and the way to the scratch folder
 * (after sweepWorkspaces has made it) is searchable by that uid.
 */
export async function jobUidMode(scratch: string): Promise<JobUidMode> {
  const ids = probeSubordinateIds();
  if (!ids.ok) return ids;
  const closed = await unsearchableOnTheWay(scratch);
  return closed
    ? {
        ok: false,
        detail: `jobs run as the service's own uid: ${closed} is not searchable by other users (chmod o+x), and a job running as a subordinate uid must reach its workspace under ${scratch}`,
      }
    : ids;
}

/**
 * Whether this user can mount overlayfs inside a user namespace (Linux 5.11+, `userxattr`): the
 * copy-on-write workspace needs it. Tries it once, in a throwaway folder under `scratch`.
 */
export async function probeOverlay(scratch: string): Promise<{ ok: boolean; detail: string }> {
  // job- prefix: a start-up sweep removes it should the service die mid-probe.
  const dir = await mkdtemp(path.join(scratch, "job-overlay-probe-"));
  try {
    for (const d of ["lower", "upper", "work", "merged"]) await mkdir(path.join(dir, d));
    const opts = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work,userxattr`;
    const r = spawnSync(
      "unshare",
      ["--user", "--map-root-user", "--mount", "mount", "-t", "overlay", "overlay", "-o", opts, `${dir}/merged`],
      {
        encoding: "utf8",
      },
    );
    return r.status === 0
      ? { ok: true, detail: "overlayfs mounts inside a user namespace: workspaces are overlays" }
      : {
          ok: false,
          detail: `overlayfs did not mount in a user namespace: ${(r.stderr || r.error?.message || "").trim()} (it needs Linux 5.11+); workspaces are copies of the job's files instead`,
        };
  } finally {
    await removeTree(dir);
  }
}
