import { createLogger, loadConfig, printableConfig, startService } from "@corral/server";
import { UsageError } from "./usage-error.js";

/** `corral serve [--print-config]`: runs the service until SIGTERM or SIGINT, or prints its config. */
export async function serve(args: string[]): Promise<number> {
  if (args.some((a) => a !== "--print-config")) throw new UsageError(`serve: unknown option ${args.join(" ")}`);
  const config = loadConfig(process.env);
  if (args.includes("--print-config")) {
    process.stdout.write(printableConfig(config) + "\n");
    return 0;
  }
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
