import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Limits } from "../domain.js";
import type { CgroupDriver } from "./cgroup/types.js";
import type { JobUids } from "./job-uids.js";
import type { NsjailRunner, PreparedSandbox } from "./nsjail/nsjail-runner.js";
import type { Profile } from "./profiles.js";
import { createWorkspace, type HolderSource, type Workspace } from "./scratch.js";

/** A sandbox built ahead of its job, in a workspace of its own; both are the job's alone. */
export interface WarmSandbox {
  readonly workspace: Workspace;
  readonly sandbox: PreparedSandbox;
}

/** Where jobs get warm sandboxes from. */
export interface WarmSource {
  /** A built sandbox of `profile`, never used, or undefined when none is ready. */
  take(profile: string): WarmSandbox | undefined;
}

/** After a sandbox could not be built, the pool waits this long before it builds again, doubling up to a minute. */
const RETRY_MS = 1000;
const RETRY_MAX_MS = 60_000;

/**
 * A few sandboxes per profile built ahead of the jobs that will use them: workspace mounted,
 * cgroup made, nsjail's namespaces, mounts, seccomp filter and rlimits in place, its first
 * program waiting for a job (see NsjailRunner.prepare). Each is used by one job and never
 * again, so jobs share nothing; a job only skips the waiting. Built one at a time, so that
 * refilling takes at most one core from the jobs running.
 */
export class WarmPool implements WarmSource {
  readonly #ready = new Map<string, WarmSandbox[]>();
  /** Sandboxes being ended (died while waiting, or the pool closing). */
  readonly #ending = new Set<Promise<void>>();
  #building: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryMs = RETRY_MS;
  #closed = false;

  constructor(
    private readonly build: (profile: string) => Promise<WarmSandbox>,
    private readonly size: number,
    profiles: readonly string[],
    private readonly logger: Logger,
  ) {
    for (const p of profiles) this.#ready.set(p, []);
    this.#fill();
  }

  /**
   * Refilled when the job is over (its workspace removed), not when it starts: building a
   * sandbox while the job runs slows it (measured on a trivial job: 2.7 ms from hand-over to
   * nsjail's end with a build running, 2.0 ms without). With none ready, a
   * job's own sandbox is built now and the pool builds more at once. The job's workspace
   * removal ends the sandbox too, whether or not its program ever ran.
   */
  take(profile: string): WarmSandbox | undefined {
    const ready = this.#ready.get(profile) ?? [];
    let taken = ready.shift();
    // Dead before its end was heard of: nothing can run in it.
    while (taken && !taken.sandbox.alive()) {
      this.#end(taken);
      taken = ready.shift();
    }
    if (!taken) {
      this.#fill();
      return undefined;
    }
    const remove = (): Promise<void> => end(taken).finally(() => this.#fill());
    return { ...taken, workspace: { ...taken.workspace, remove } };
  }

  /** Ends every sandbox not taken, with its workspace and cgroup; builds no more. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.#building;
    for (const list of this.#ready.values()) for (const w of list.splice(0)) this.#end(w);
    await Promise.all(this.#ending);
  }

  #fill(): void {
    if (this.#closed || this.#building || this.#retry) return;
    const profile = [...this.#ready].find(([, list]) => list.length < this.size)?.[0];
    if (profile === undefined) return;
    this.#building = this.build(profile)
      .then(
        (w) => {
          this.#retryMs = RETRY_MS;
          if (this.#closed) return this.#end(w);
          const list = this.#ready.get(profile)!;
          list.push(w);
          // Its nsjail died while it waited (killed from outside, say): replaced, never used.
          void w.sandbox.ended.then(() => {
            const at = list.indexOf(w);
            if (at < 0) return; // taken: its job ends it
            list.splice(at, 1);
            this.#end(w);
            this.#fill();
          });
        },
        (err: Error) => {
          this.logger.warn(
            { event: "warm-failed", profile, err: err.message, retryMs: this.#retryMs },
            "could not build a warm sandbox",
          );
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#fill();
          }, this.#retryMs).unref();
          this.#retryMs = Math.min(2 * this.#retryMs, RETRY_MAX_MS);
        },
      )
      .finally(() => {
        this.#building = undefined;
        this.#fill();
      });
  }

  /** Ends a sandbox never used, then its workspace; a failure is logged, never thrown. */
  #end(w: WarmSandbox): void {
    const ending = end(w)
      .catch((err: unknown) => this.logger.error({ event: "warm-end-failed", err }, "could not end a warm sandbox"))
      .finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
  }
}

/** Ends a sandbox (used or not), then its workspace. */
function end(w: WarmSandbox): Promise<void> {
  return w.sandbox.discard().finally(() => w.workspace.remove());
}

/** What building a warm sandbox needs. */
export interface WarmBuildDeps {
  readonly runner: NsjailRunner;
  readonly profiles: ReadonlyMap<string, Profile>;
  readonly scratchDir: string;
  readonly overlay: boolean;
  readonly holders: HolderSource;
  /** The uids jobs run as (shared with jobs built on demand, so that none runs as another's). */
  readonly uids: JobUids;
  readonly cgroups: CgroupDriver | undefined;
  readonly ceilings: Limits;
}

const MiB = 1024 * 1024;

/**
 * The ceilings a warm sandbox starts with, lowered to this process's hard rlimits
 * (`/proc/self/limits`): nsjail cannot set an rlimit above the hard one, and warm-start only
 * lowers them. A job asking for more than the hard limit fails either way. Pure.
 */
export function withinHardLimits(ceilings: Limits, procLimits: string): Limits {
  const hard = (name: string): number => {
    const line = procLimits.split("\n").find((l) => l.startsWith(name));
    const value = line?.slice(26).trim().split(/\s+/)[1];
    return value === undefined || value === "unlimited" ? Infinity : Number(value);
  };
  // nsjail takes whole seconds (one more than the limit) and whole MiB.
  const wholeMiB = (bytes: number): number => Math.floor(bytes / MiB) * MiB;
  return {
    ...ceilings,
    cpuTimeMs: Math.min(ceilings.cpuTimeMs, (hard("Max cpu time") - 1) * 1000),
    fileSizeBytes: Math.min(ceilings.fileSizeBytes, wholeMiB(hard("Max file size"))),
    openFiles: Math.min(ceilings.openFiles, hard("Max open files")),
    stackBytes: Math.min(ceilings.stackBytes, wholeMiB(hard("Max stack size"))),
  };
}

/** Builds one warm sandbox of a profile: an empty workspace, a cgroup, and nsjail waiting in them. */
export function warmBuilder(deps: WarmBuildDeps): (profile: string) => Promise<WarmSandbox> {
  return async (name) => {
    const profile = deps.profiles.get(name);
    if (!profile) throw new Error(`no profile '${name}'`);
    // The warm- prefix keeps them apart from jobs' cgroups; the start-up sweep removes both.
    const id = `warm-${randomBytes(8).toString("hex")}`;
    const opts = { bytes: profile.scratchBytes, inodes: profile.scratchInodes, overlay: deps.overlay };
    const workspace = await deps.uids.workspace((uid) =>
      createWorkspace(deps.scratchDir, id, [], { ...opts, uid }, deps.holders),
    );
    const cgroup = await deps.cgroups?.create(id).catch(async (err: unknown) => {
      await workspace.remove();
      throw err;
    });
    try {
      const sandbox = await deps.runner.prepare({
        id,
        profile,
        workspace: { dir: workspace.dir, holderPid: workspace.holderPid, uid: workspace.uid },
        privateDir: workspace.privateDir,
        cgroup,
        ceilings: deps.ceilings,
        // What most jobs of the profile run with (its defaults): then nothing is written at the start.
        cgroupLimits: {
          memoryBytes: Math.min(profile.limits.memoryBytes, deps.ceilings.memoryBytes),
          pids: Math.min(profile.limits.processes, deps.ceilings.processes) + 1,
        },
      });
      return { workspace, sandbox };
    } catch (err) {
      await cgroup?.remove();
      await workspace.remove();
      throw err;
    }
  };
}
