import type { Mount } from "../profiles.js";

/** Everything nsjail needs to build one sandbox and start one program in it. */
export interface SandboxSpec {
  /** Absolute path of the program inside the sandbox, and its argv (argv[0] kept as given). */
  readonly execPath: string;
  readonly argv: readonly string[];
  /** The program's whole environment (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** The profile's mounts, in order. */
  readonly mounts: readonly Mount[];
  /** Directory bound as the working directory (a path in nsjail's mount namespace). */
  readonly workspaceDir: string;
  readonly workspaceReadOnly?: boolean;
  /**
   * Where nsjail runs as 0 of a workspace holder's user namespace (the service's uid on the
   * host): the program's uid and gid inside (the service's own numbers), and the holder's id
   * they map to: 0 (the service's uid) or from 1 (a subordinate uid). Without it, nsjail maps
   * its own ids to themselves.
   */
  readonly jailIds?: { readonly uid: number; readonly gid: number; readonly outside: number };
  /** Working directory inside the sandbox. */
  readonly workdir: string;
  /** Size of the /tmp tmpfs, bytes and files. */
  readonly tmpBytes: number;
  readonly tmpInodes: number;
  /** Kafel seccomp policy, compiled by nsjail and applied just before the program's execve. */
  readonly seccompPolicy: string;
  /** Descriptors besides 0-2 the program keeps (nsjail makes every other one close-on-exec). */
  readonly passFds?: readonly number[];
  /** Per-process rlimits, in nsjail's units. */
  readonly rlimits: {
    /** RLIMIT_CPU, seconds: a backstop behind the service's own millisecond CPU watch. */
    readonly cpuSeconds: number;
    readonly fileSizeMiB: number;
    readonly openFiles: number;
    readonly stackMiB: number;
  };
}

/**
 * Text-format protobuf literal: UTF-8 bytes, with quotes, backslashes and every byte outside
 * printable ASCII as an octal escape, so any string survives nsjail's parser unchanged.
 */
export function quote(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, "utf8")) {
    if (byte === 0x22 || byte === 0x5c) out += "\\" + String.fromCharCode(byte);
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += "\\" + byte.toString(8).padStart(3, "0");
  }
  return out + '"';
}

function mountLine(m: Mount): string {
  if (m.type === "symlink") return `mount { src: ${quote(m.src)} dst: ${quote(m.dst)} is_symlink: true }`;
  return `mount { src: ${quote(m.src)} dst: ${quote(m.dst)} is_bind: true rw: ${m.rw} }`;
}

/**
 * Host-leaking or kernel-poking parts of /proc, hidden under /dev/null (files) or an empty
 * read-only tmpfs (folders), as container runtimes do. Not mandatory: a kernel may lack some.
 */
const MASKED_PROC_FILES = [
  "/proc/cmdline", // the host kernel's boot line
  "/proc/kallsyms",
  "/proc/modules",
  "/proc/kcore",
  "/proc/keys",
  "/proc/key-users",
  "/proc/timer_list",
  "/proc/sched_debug",
  "/proc/latency_stats",
  "/proc/sysrq-trigger",
];
const MASKED_PROC_DIRS = ["/proc/acpi", "/proc/scsi", "/proc/bus", "/proc/irq"];

/**
 * nsjail 3.6 config (text protobuf) for one run. Written for the pinned version's schema
 * (nsjail-notes.md §1): proto2 defaults are not zero (time_limit 600, rlimit_fsize 1 MiB,
 * rlimit_nofile 32, rlimit_as 4 GiB), so every field that matters is written explicitly.
 */
export function buildNsjailConfig(spec: SandboxSpec): string {
  const lines = [
    'name: "corral"',
    "mode: ONCE",
    'hostname: "corral"',
    `cwd: ${quote(spec.workdir)}`,
    // The service owns the wall timer (millisecond precision); nsjail's has 1 s steps.
    "time_limit: 0",
    // INFO keeps the "Executing", "exited with status" and error lines the classifier reads.
    "log_level: INFO",
    // Every namespace new (all default true in 3.6; written so a reader need not know).
    "clone_newnet: true",
    "clone_newuser: true",
    "clone_newns: true",
    "clone_newpid: true",
    "clone_newipc: true",
    "clone_newuts: true",
    "clone_newcgroup: true",
    // Files the program makes belong to the service on the host, as a plain rootless nsjail's.
    ...(spec.jailIds
      ? [
          `uidmap { inside_id: ${quote(String(spec.jailIds.uid))} outside_id: "${spec.jailIds.outside}" count: 1 }`,
          `gidmap { inside_id: ${quote(String(spec.jailIds.gid))} outside_id: "${spec.jailIds.outside}" count: 1 }`,
        ]
      : []),
    "keep_env: false",
    "keep_caps: false",
    "disable_no_new_privs: false",
    `seccomp_string: ${quote(spec.seccompPolicy)}`,
    // nsjail renices to 19 by default; a judge's job should not run behind everything else.
    "nice_level: 0",
    // Memory is bounded by the cgroup, not the address space: V8, the JVM and Go reserve
    // far more address space than they use.
    // HARD = the service's own hard limit: the most an unprivileged process may set (INF
    // fails with EPERM wherever the service's hard limit is finite, e.g. RLIMIT_NPROC).
    // Processes are bounded by the job's pids cgroup, memory by its memory cgroup.
    "rlimit_as_type: HARD",
    "rlimit_nproc_type: HARD",
    "rlimit_core: 0",
    // nsjail sets soft = hard, so the kernel SIGKILLs at the CPU limit (no SIGXCPU first).
    `rlimit_cpu: ${spec.rlimits.cpuSeconds}`,
    `rlimit_fsize: ${spec.rlimits.fileSizeMiB}`,
    `rlimit_nofile: ${spec.rlimits.openFiles}`,
    // rlimit_stack's type defaults to SOFT (the service's own soft limit), which would ignore the value.
    "rlimit_stack_type: VALUE",
    `rlimit_stack: ${spec.rlimits.stackMiB}`,
    ...Object.entries(spec.env).map(([k, v]) => `envar: ${quote(`${k}=${v}`)}`),
    // /proc read-only, in the job's own pid namespace, with the leaking parts masked.
    'mount { dst: "/proc" fstype: "proc" rw: false }',
    ...MASKED_PROC_FILES.map(
      (f) => `mount { src: "/dev/null" dst: ${quote(f)} is_bind: true rw: false mandatory: false }`,
    ),
    ...MASKED_PROC_DIRS.map(
      (d) => `mount { dst: ${quote(d)} fstype: "tmpfs" options: "size=0" rw: false mandatory: false }`,
    ),
    ...spec.mounts.map(mountLine),
    `mount { src: ${quote(spec.workspaceDir)} dst: ${quote(spec.workdir)} is_bind: true rw: ${!spec.workspaceReadOnly} }`,
    `mount { dst: "/tmp" fstype: "tmpfs" options: ${quote(`size=${spec.tmpBytes},nr_inodes=${spec.tmpInodes},mode=1777`)} rw: true }`,
    ...(spec.passFds ?? []).map((fd) => `pass_fd: ${fd}`),
    `exec_bin { path: ${quote(spec.execPath)} ${spec.argv.map((a, i) => (i === 0 ? `arg0: ${quote(a)}` : `arg: ${quote(a)}`)).join(" ")} }`,
  ];
  return lines.join("\n") + "\n";
}
