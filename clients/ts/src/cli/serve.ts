import { createLogger, loadConfig, startService } from "@corral/server";

/** `corral serve`: runs the service until SIGTERM or SIGINT. */
export async function serve(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger(config);
  const service = await startService(config, logger);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await service.shutdown(config.shutdownGraceMs);
  logger.flush();
  return 0;
}
