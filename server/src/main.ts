import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import pino, { type Logger } from "pino";
import type { Config } from "./config.js";
import { loadTokens } from "./grpc/access.js";
import { createMetrics, serveMetrics } from "./metrics.js";
import type { Server as HttpServer } from "node:http";
import { createGrpcServer, type BoundServer } from "./grpc/create-grpc-server.js";
import { JobQueue } from "./jobs/job-queue.js";
import { createJobService } from "./jobs/job-service.js";
import { JobUids } from "./sandbox/job-uids.js";
import type { LimitName, ServerInfo } from "./domain.js";
import { APPARMOR_PROFILES, appArmorEnabled, appArmorLoaded } from "./sandbox/apparmor.js";
import { CgroupPool } from "./sandbox/cgroup/cgroup-pool.js";
import { openCgroups } from "./sandbox/cgroup/open-cgroups.js";
import { checkNsjail, jobUidMode, probeOverlay, type JobUidMode } from "./sandbox/host.js";
import { HolderPool, sweepWorkspaces } from "./sandbox/scratch.js";
import { JobStore } from "./jobs/job-store.js";
import { createNsjailRunner } from "./sandbox/nsjail/nsjail-runner.js";
import { checkSeccompPolicies, loadProfiles } from "./sandbox/profiles.js";
import { WarmPool, warmBuilder, withinHardLimits } from "./sandbox/warm-pool.js";

/** The warm sandboxes' first program, built by `npm run build` (server/native/warm-start.c). */
const WARM_START = new URL("../dist/warm-start", import.meta.url).pathname;

/** A running Corral service. */
export interface Service {
  /** The port the gRPC server listens on. */
  readonly port: number;
  /** Where job cgroups go ("v1 at ...", "v2 at ...") or "none". */
  readonly cgroups: string;
  /** The port of the metrics endpoint, when it is on. */
  readonly metricsPort: number | undefined;
  /**
   * Shuts down: health turns NOT_SERVING, new jobs get UNAVAILABLE, running and queued jobs get
   * `graceMs` to finish and are then cancelled (their outcome says so); resolves when every job
   * and everything it held is gone and the server has stopped.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Limits only a job cgroup can enforce. */
const CGROUP_LIMITS: readonly LimitName[] = ["cpuTimeMs", "memoryBytes", "processes"];

/**
 * Corral's version (server/package.json) and nsjail's: the set-up writes the pinned one's to
 * .nsjail/VERSION beside the binary (nsjail 3.6 has no --version); another binary is "unknown".
 */
async function readVersions(nsjailPath: string): Promise<{ version: string; nsjailVersion: string }> {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  const nsjailVersion = await readFile(path.join(path.dirname(nsjailPath), "..", "..", "VERSION"), "utf8")
    .then((v) => v.trim())
    .catch(() => "unknown");
  return { version: pkg.version, nsjailVersion };
}

/** Creates the logger the service writes: JSON lines on stderr. */
export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { service: "corral" } }, pino.destination(2));
}

/** Composition root: config -> host checks -> profiles -> runner -> queue -> jobs -> gRPC. */
export async function startService(config: Config, logger: Logger): Promise<Service> {
  const tokens =
    config.access.tokensFile === undefined
      ? undefined
      : await loadTokens(config.access.tokensFile).catch((err: Error) => {
          throw new Error(`CORRAL_TOKENS_FILE=${config.access.tokensFile}: ${err.message}`);
        });
  await checkNsjail(config.nsjailPath);
  const profiles = await loadProfiles(config.profilesDir);
  const warmProfiles = !config.warm.sandboxes
    ? []
    : (config.warm.profiles ?? (profiles.has("default") ? ["default"] : []));
  for (const name of warmProfiles)
    if (!profiles.has(name))
      throw new Error(
        `CORRAL_WARM_PROFILES: no profile '${name}'; this server has: ${[...profiles.keys()].join(", ")}`,
      );
  if (warmProfiles.length) {
    const mode = await stat(WARM_START).then(
      (s) => s.mode,
      () => {
        throw new Error(`${WARM_START} is missing: run \`npm run build\` (or set CORRAL_WARM_SANDBOXES=0)`);
      },
    );
    // A job's uid (a subordinate one, or the service's) runs it from inside the sandbox.
    if ((mode & 0o111) !== 0o111)
      throw new Error(`${WARM_START} must be executable by everyone: chmod a+rx ${WARM_START}`);
  }
  await checkSeccompPolicies(profiles, config.profilesDir, config.nsjailPath);
  const version = await readVersions(config.nsjailPath);
  const appArmor = {
    active: appArmorEnabled(),
    profilesLoaded: APPARMOR_PROFILES.every((p) => appArmorLoaded(p) === true),
  };
  const scratchLeftovers = await sweepWorkspaces(config.scratchDir);
  const overlay = await probeOverlay(config.scratchDir);
  const subordinate: JobUidMode =
    config.subordinateIds === "off"
      ? { ok: false, detail: "jobs run as the service's own uid (CORRAL_SUBORDINATE_IDS=off)" }
      : await jobUidMode(config.scratchDir);
  logger.info({ event: "job-uid", subordinate: subordinate.ok }, subordinate.detail);
  // From here on, what start-up makes (job cgroups, spare workspace holders) is released if start-up fails.
  const cgroups = await openCgroups(config.cgroup);
  for (const problem of cgroups.problems) logger.warn({ event: "host", problem }, "limit not enforceable");
  const leftovers = { cgroups: (await cgroups.driver?.sweep()) ?? 0, scratch: scratchLeftovers };
  logger.info({ event: "leftovers-removed", ...leftovers }, "removed what a previous run left");
  const queue = new JobQueue({ concurrency: config.concurrency, backlog: config.backlog });
  // One spare cgroup and workspace holder per run slot, plus one.
  const pool = cgroups.driver && new CgroupPool(cgroups.driver, config.concurrency + 1);
  const holders = new HolderPool(config.concurrency + 1, subordinate.ok);
  const uids = new JobUids(subordinate.ok ? (subordinate.count ?? 1) : 0);
  const runner = createNsjailRunner({
    nsjailPath: config.nsjailPath,
    cgroups: pool,
    warmStartPath: WARM_START,
    logger,
  });
  const warm = new WarmPool(
    warmBuilder({
      runner,
      profiles,
      scratchDir: config.scratchDir,
      overlay: overlay.ok,
      holders,
      uids,
      cgroups: cgroups.driver,
      ceilings: withinHardLimits(config.ceilings, await readFile("/proc/self/limits", "utf8")),
    }),
    config.warm.sandboxes,
    warmProfiles,
    logger,
  );
  const release = async (): Promise<void> => {
    await warm.close();
    await holders.close();
    await pool?.close();
    await cgroups.driver?.close();
  };
  const unavailableLimits = cgroups.driver ? [] : CGROUP_LIMITS;
  const shutdown = new AbortController();
  const metrics = createMetrics(() => ({ waiting: queue.waiting, running: queue.running }));
  const jobs = createJobService({
    queue,
    runner,
    profiles,
    ceilings: config.ceilings,
    unenforceable: new Set(unavailableLimits),
    scratchDir: config.scratchDir,
    overlay: overlay.ok,
    uids,
    holders,
    warm,
    maxTestParallelism: config.concurrency,
    logger,
    shutdown: shutdown.signal,
    metrics,
  });
  const info = (): ServerInfo => ({
    ...version,
    concurrency: config.concurrency,
    queueDepth: queue.waiting,
    running: queue.running,
    profiles: [...profiles.keys()],
    cgroupVersion: cgroups.driver?.version ?? 0,
    unavailableLimits,
    problems: cgroups.problems,
    appArmor,
    overlay: overlay.ok,
    jobUid: subordinate.ok ? "subordinate" : "service",
  });
  // A start-up that fails from here on (port taken, say) leaves no spare cgroup behind.
  let bound: BoundServer;
  let metricsServer: HttpServer | undefined;
  try {
    bound = await createGrpcServer(
      config.listen,
      { tokens, tls: config.access.tls },
      jobs,
      new JobStore(config.submitted),
      profiles,
      info,
      metrics,
      logger,
    );
    metricsServer =
      config.metricsListen === undefined
        ? undefined
        : await serveMetrics(config.metricsListen, metrics).catch((err: Error) => {
            bound.server.forceShutdown();
            throw new Error(`CORRAL_METRICS_LISTEN=${config.metricsListen}: ${err.message}`);
          });
  } catch (err) {
    await release();
    throw err;
  }
  const where = cgroups.driver ? `v${cgroups.driver.version} at ${cgroups.driver.where}` : "none";
  logger.info(
    {
      event: "listening",
      address: config.listen.replace(/:\d+$/, `:${bound.port}`),
      profiles: [...profiles.keys()],
      concurrency: config.concurrency,
      cgroups: where,
      metrics: metricsServer ? config.metricsListen : "off",
    },
    "corral is serving",
  );
  return {
    port: bound.port,
    cgroups: where,
    metricsPort: (metricsServer?.address() as { port: number } | undefined)?.port,
    async shutdown(graceMs) {
      bound.notServing();
      queue.refuse();
      await warm.close(); // no more built for jobs that will not come
      logger.info({ event: "stopping", jobs: queue.running + queue.waiting, graceMs }, "corral is stopping");
      const idle = queue.idle();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
      if (await Promise.race([idle.then(() => false), graceOver])) {
        logger.info({ event: "grace-over", jobs: queue.running + queue.waiting }, "cancelling the jobs left");
        shutdown.abort(new Error("the server is shutting down"));
        await idle;
      }
      clearTimeout(timer);
      await jobs.cleanedUp();
      // Every job has ended and sent its last event, so its call ends too; only open health
      // watches may hold the server, and they get cut after a moment.
      const cut = setTimeout(() => bound.server.forceShutdown(), 2000);
      await new Promise<void>((resolve) => bound.server.tryShutdown(() => resolve()));
      clearTimeout(cut);
      await new Promise((resolve) => (metricsServer ? metricsServer.close(resolve) : resolve(undefined)));
      await release();
      logger.info({ event: "stopped" }, "corral stopped");
    },
  };
}
