import pino, { type Logger } from "pino";
import { ConfigError, type Config } from "./config.js";
import { createGrpcServer } from "./grpc/create-grpc-server.js";
import { JobQueue } from "./jobs/job-queue.js";
import { createJobService } from "./jobs/job-service.js";
import { checkNsjail } from "./sandbox/host.js";
import { createNsjailRunner } from "./sandbox/nsjail/nsjail-runner.js";
import { loadProfiles } from "./sandbox/profiles.js";

/** A running Corral service. */
export interface Service {
  /** The port the gRPC server listens on. */
  readonly port: number;
  /** Stops taking calls, cancels running jobs and resolves when all are gone. */
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;

/** Creates the logger the service writes: JSON lines on stderr. */
export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { service: "corral" } }, pino.destination(2));
}

/** Composition root: config -> host checks -> profiles -> runner -> queue -> jobs -> gRPC. */
export async function startService(config: Config, logger: Logger): Promise<Service> {
  if (!LOOPBACK.test(config.listen))
    throw new ConfigError(
      `CORRAL_LISTEN=${config.listen}: only loopback addresses are allowed until authentication exists`,
    );
  await checkNsjail(config.nsjailPath);
  const profiles = await loadProfiles(config.profilesDir);
  const queue = new JobQueue({ concurrency: config.concurrency, backlog: config.backlog });
  const runner = createNsjailRunner({ nsjailPath: config.nsjailPath, logger });
  const jobs = createJobService({
    queue,
    runner,
    profiles,
    ceilings: config.ceilings,
    scratchDir: config.scratchDir,
    logger,
  });
  const { server, port } = await createGrpcServer(config.listen, jobs, logger);
  logger.info(
    {
      event: "listening",
      address: config.listen.replace(/:\d+$/, `:${port}`),
      profiles: [...profiles.keys()],
      concurrency: config.concurrency,
    },
    "corral is serving",
  );
  return {
    port,
    async close() {
      // Cancels in-flight calls, which aborts their jobs; then waits for the queue to empty.
      server.forceShutdown();
      await queue.close();
    },
  };
}
