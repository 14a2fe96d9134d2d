/** What a job's cgroup enforces. CPU time is not here: it is watched, not throttled. */
export interface CgroupLimits {
  /** Memory of the whole cgroup, bytes; swap is off. */
  readonly memoryBytes: number;
  /** Tasks (processes and threads) alive at once in the cgroup. */
  readonly pids: number;
}

/** What a job's cgroup counted, read after the sandbox exited. */
export interface CgroupUsage {
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  readonly cpuTotalUs: number;
  /** Peak memory charged to the cgroup (includes page cache and tmpfs it touched). */
  readonly peakMemoryBytes: number | undefined;
  /** Peak tasks, where the kernel reports it (pids.peak: Linux 6.1+). */
  readonly peakPids: number | undefined;
  /** Tasks the kernel's OOM killer killed in this cgroup. */
  readonly oomKills: number;
  /** Times a fork or clone failed on pids.max. */
  readonly pidsMaxHits: number;
}

/** One job's cgroup (one folder per hierarchy on v1, one on v2). */
export interface JobCgroup {
  /** Files a process writes its pid to, in order, to enter the cgroup (before it forks). */
  readonly joinFiles: readonly string[];
  /** Writes the limits; done before any task enters. */
  setLimits(limits: CgroupLimits): Promise<void>;
  /** CPU used so far (user + system), microseconds; cheap enough to poll. */
  cpuUsageUs(): Promise<number>;
  /** Every counter; read after the sandbox has exited. */
  usage(): Promise<CgroupUsage>;
  /** Kills every task left in the cgroup and waits until it is empty. */
  killAll(): Promise<void>;
  /** killAll, then removes the cgroup. Safe to call twice. */
  remove(): Promise<void>;
}

/** A cgroup hierarchy Corral may make job cgroups in. */
export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Human-readable: where job cgroups are made. */
  readonly where: string;
  /** Makes the cgroup `name` (no limits yet). */
  create(name: string): Promise<JobCgroup>;
  /** Kills and removes every cgroup a crashed predecessor left; returns how many. */
  sweep(): Promise<number>;
  /** Removes this instance's folder (after the last job). */
  close(): Promise<void>;
}

/** Hands out fresh, never-used job cgroups. */
export interface CgroupSource {
  take(): Promise<JobCgroup>;
}
