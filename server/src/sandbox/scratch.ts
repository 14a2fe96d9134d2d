import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { constants } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, rm, statfs } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { CollectedFile, InputFile } from "../domain.js";
import { collectFiles, collectInHolder } from "./collect.js";
import { OWN_IDS, SUBORDINATE_IDS } from "./holder-ns.js";

const run = promisify(execFile);

/** How big a job's workspace may grow, and how it is built. */
export interface WorkspaceOptions {
  /** Bytes and files (inodes) the job may write, over all its steps. */
  readonly bytes: number;
  readonly inodes: number;
  /**
   * true: the workspace is an overlay, the job's files the read-only lower layer and a tmpfs
   * the upper one. false, where overlayfs cannot be mounted in a user namespace: the files are
   * copied into the tmpfs. Either way the job writes only to its own bounded tmpfs.
   */
  readonly overlay: boolean;
  /**
   * The uid (and gid), in the holder's user namespace, that the job runs as: 0, the service's
   * own, or from 1 up, a subordinate uid of the service user's (/etc/subuid). A subordinate uid
   * owns the job's files, in its workspace and its input, while it runs; they go back to the
   * service's uid after.
   */
  readonly uid: number;
}

/** What a job's workspace holds now. */
export interface WorkspaceUsage {
  readonly bytes: number;
  readonly inodes: number;
}

/** A job's folder on the host and its mount namespace, removed with the job. */
export interface Workspace {
  /** Becomes the sandbox's working directory; mounted only in the holder's mount namespace. */
  readonly dir: string;
  /** nsjail enters this process's user and mount namespaces, where `dir` is mounted. */
  readonly holderPid: number;
  /** `dir` as the service reaches it from outside (through `/proc/<holder>/root`). */
  readonly view: string;
  /** The service's own files for this job (nsjail configs); never mounted in a sandbox. */
  readonly privateDir: string;
  /** WorkspaceOptions.uid. */
  readonly uid: number;
  /** What the job has written so far (the tmpfs's figures). */
  usage(): Promise<WorkspaceUsage>;
  /**
   * Reads files of the workspace as collection does: directly, or, where the job runs as a
   * subordinate uid that may have kept them to itself, as root of the holder's namespace.
   */
  collect(paths: readonly string[]): Promise<CollectedFile[]>;
  /** Ends the holder (its mounts go with its namespace) and removes the folder. */
  remove(): Promise<void>;
}

/**
 * Runs as root of a fresh user namespace (the service's uid mapped to 0, and in subordinate mode
 * the service user's subordinate ids from 1 up) with a mount namespace of its own, so that
 * nothing it mounts is seen by the host. It may start ahead of its job: it waits for one line,
 * "BYTES INODES overlay|copy UID JOB-FOLDER" (the folder last, so that it may hold spaces),
 * mounts, says "ready", and stays until the service closes its stdin (or dies); its mounts go
 * with it. With a UID other than 0 the job's files belong to it while the job runs (root of a
 * user namespace may give files to any uid mapped in it), and back to the service's after.
 */
const HOLDER = `set -e
read -r bytes inodes how ids d
if [ "$how" = overlay ]; then
  mount -t tmpfs -o "size=$bytes,nr_inodes=$inodes,mode=0700" corral-scratch "$d/scratch"
  mkdir "$d/scratch/upper" "$d/scratch/work"
  top="$d/scratch/upper"
else
  mount -t tmpfs -o "size=$bytes,nr_inodes=$inodes,mode=0755" corral-scratch "$d/scratch"
  cp -a "$d/input/." "$d/scratch/"
  top="$d/scratch"
fi
if [ "$ids" != 0 ]; then chown -R "$ids:$ids" "$top" "$d/input"; fi
if [ "$how" = overlay ]; then
  mount -t overlay -o "lowerdir=$d/input,upperdir=$d/scratch/upper,workdir=$d/scratch/work,userxattr" corral-workspace "$d/work"
else
  mount --bind "$d/scratch" "$d/work"
fi
echo ready
read -r _ || true
if [ "$ids" != 0 ]; then chown -R 0:0 "$d/input"; fi`;

/** Where holders come from: started now, or ahead of their job (HolderPool). */
export interface HolderSource {
  take(): ChildProcess;
  /** Called once a holder's job is over. */
  returned(): void;
}

/** Starts a holder (see HOLDER); it waits for its job's line. */
function spawnHolder(subordinate: boolean): ChildProcess {
  const ids = subordinate ? SUBORDINATE_IDS : OWN_IDS;
  const child = spawn(
    "unshare",
    ["--user", ...ids, "--mount", "--propagation", "private", "/bin/sh", "-c", HOLDER, "corral-workspace"],
    { stdio: ["pipe", "pipe", "pipe"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, cwd: "/" },
  );
  // Until a job takes it, a holder's failure is its own: the job that takes it reports it.
  child.on("error", () => undefined);
  return child;
}

/**
 * A few holders started ahead of the jobs that will use them, each used by one job only:
 * starting `unshare` and `sh` from the service's big process costs about 3 ms that then stays
 * off the job's critical path (bench/results/latency.md). Refilled when a job is over, not when
 * it starts, so that spawning does not slow a sandbox being set up.
 */
export class HolderPool implements HolderSource {
  readonly #spare: ChildProcess[] = [];
  #closed = false;

  constructor(
    private readonly size: number,
    private readonly subordinate: boolean,
  ) {
    this.returned();
  }

  take(): ChildProcess {
    for (let h = this.#spare.shift(); h; h = this.#spare.shift())
      if (h.exitCode === null && h.signalCode === null) return h;
    return spawnHolder(this.subordinate);
  }

  returned(): void {
    while (!this.#closed && this.#spare.length < this.size) this.#spare.push(spawnHolder(this.subordinate));
  }

  /** Ends the spare holders; starts no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#spare.splice(0).map(endHolder));
  }
}

/** Closes a holder's stdin, which ends it, and waits until it has (at once if it had). */
async function endHolder(holder: ChildProcess): Promise<void> {
  if (holder.exitCode !== null || holder.signalCode !== null) return;
  const exited = once(holder, "exit");
  holder.stdin?.end();
  await exited;
}

/** Holders started when asked, for a caller without a pool. */
const startNow = (subordinate: boolean): HolderSource => ({
  take: () => spawnHolder(subordinate),
  returned: () => undefined,
});

/**
 * Mode of the scratch root, a job's folder and its `run/`: the owner's alone but for search
 * (x) by others, which a job running as a subordinate uid needs: nsjail makes its mounts (the
 * workspace, a checker's files) with the jail's ids. Nothing in them can be listed, and a job's
 * folder name holds a random UUID.
 */
const SEARCHABLE = 0o711;

/**
 * Makes `<root>/job-<id>` (mode 0711) holding `input/` with the job's files, `run/` for the
 * service's private files, and `scratch/` and `work/`, where a holder process (see HOLDER)
 * mounts a tmpfs of `opts.bytes` and `opts.inodes` and, on it, the job's working directory.
 * Every step's sandbox is made in the holder's namespaces, so the steps share the workspace;
 * a job that fills it gets ENOSPC, and the host's disk is never written by a job.
 * `files` must be validated already (relative, no `..`); each is still created with
 * O_EXCL | O_NOFOLLOW so that nothing is written outside the folder or through a link.
 */
export async function createWorkspace(
  root: string,
  jobId: string,
  files: readonly InputFile[],
  opts: WorkspaceOptions,
  holders: HolderSource = startNow(opts.uid !== 0),
): Promise<Workspace> {
  await mkdir(root, { recursive: true, mode: SEARCHABLE });
  const jobDir = path.join(root, `job-${jobId}`);
  await mkdir(jobDir, { mode: SEARCHABLE });
  const dirs = {
    input: path.join(jobDir, "input"),
    run: path.join(jobDir, "run"),
    scratch: path.join(jobDir, "scratch"),
    work: path.join(jobDir, "work"),
  };
  let holder: ChildProcess | undefined;
  const remove = async (): Promise<void> => {
    if (holder) {
      await endHolder(holder);
      holders.returned();
    }
    await removeTree(jobDir);
  };
  try {
    for (const d of Object.values(dirs)) await mkdir(d, { mode: d === dirs.run ? SEARCHABLE : 0o700 });
    for (const file of files) {
      const target = path.join(dirs.input, file.path);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      const handle = await open(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        await handle.writeFile(file.content);
        await handle.chmod(file.mode);
      } finally {
        await handle.close();
      }
    }
    // The working directory's own mode comes from the upper layer (overlay) or the tmpfs.
    await chmod(dirs.input, 0o755);
    holder = holders.take();
    await mountWorkspace(holder, jobDir, opts);
    const pid = holder.pid!;
    // A path of the holder's mount namespace, as the service reaches it from outside.
    const inHolder = (p: string): string => `/proc/${pid}/root${p}`;
    const view = inHolder(dirs.work);
    return {
      dir: dirs.work,
      holderPid: pid,
      view,
      privateDir: dirs.run,
      uid: opts.uid,
      collect: (paths) => (opts.uid === 0 ? collectFiles(view, paths) : collectInHolder(pid, dirs.work, paths)),
      usage: async () => {
        const s = await statfs(inHolder(dirs.scratch));
        return { bytes: (s.blocks - s.bfree) * s.bsize, inodes: s.files - s.ffree };
      },
      remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** Tells a holder its job's folder and sizes, and waits until it has mounted the workspace. */
async function mountWorkspace(child: ChildProcess, jobDir: string, opts: WorkspaceOptions): Promise<void> {
  if (!child.stdin || !child.stdout || !child.stderr) throw new Error("a workspace holder needs its three pipes");
  const how = `${opts.overlay ? "overlay" : "copy"} ${opts.uid}`;
  child.stdin.write(`${opts.bytes} ${opts.inodes} ${how} ${jobDir}\n`);
  let said = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => (said += s));
  const ready = await new Promise<boolean>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(false);
    child.stdout!.on("data", (s: string) => s.includes("ready") && resolve(true));
    child.once("error", (err) => {
      said += err.message;
      resolve(false);
    });
    child.once("exit", () => resolve(false));
  });
  if (!ready) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    throw new Error(`could not mount the job's workspace: ${said.trim() || "the holder process ended"}`);
  }
  child.stdout.resume();
}

/**
 * Makes `root` (mode 0711) unless it exists, and checks that it is a folder of this user's that
 * nobody else may write: another user's folder there could swap a job's files or its nsjail
 * config under the service. Then removes every job folder a crashed predecessor left in it;
 * returns how many.
 */
export async function sweepWorkspaces(root: string): Promise<number> {
  await mkdir(root, { recursive: true, mode: SEARCHABLE });
  const st = await lstat(root);
  const uid = process.getuid?.();
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0)
    throw new Error(
      `scratch folder ${root} must be a directory owned by uid ${uid} and writable by it alone (found uid ${st.uid}, mode 0${(st.mode & 0o7777).toString(8)}): remove it or set CORRAL_SCRATCH_DIR`,
    );
  await chmod(root, SEARCHABLE);
  const names = (await readdir(root).catch(() => [])).filter((n) => n.startsWith("job-"));
  for (const name of names) await removeTree(path.join(root, name));
  return names.length;
}

/**
 * The first folder on the way to `dir` (itself included) that other users may not search, or
 * undefined: a job running as a subordinate uid must reach its workspace.
 */
export async function unsearchableOnTheWay(dir: string): Promise<string | undefined> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = await lstat(d);
    if ((st.mode & 0o001) === 0) return d;
    if (d === path.dirname(d)) return undefined;
  }
}

/**
 * `rm -rf`, first giving back owner write/search permission a job may have taken away. Files a
 * job left as a subordinate uid (a holder killed before it gave them back) are removed as root
 * of a user namespace that maps that uid.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    try {
      await restorePermissions(dir);
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      // Not spawnSync: this runs in a job's clean-up, while other jobs' sandboxes run.
      await run("unshare", ["--user", ...SUBORDINATE_IDS, "rm", "-rf", "--", dir]).catch(() => {
        throw err;
      });
    }
  }
}

async function restorePermissions(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(dir, 0o700);
  for (const name of await readdir(dir)) await restorePermissions(path.join(dir, name));
}
