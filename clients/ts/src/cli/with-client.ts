import { createClient, Status } from "../index.js";
import { clientOptions } from "./client-options.js";
import { EXIT_CODES, EXIT_SERVICE_ERROR } from "./exit-codes.js";

/** Runs `act` with a client for `server`, ^C cancelling it; failures become exit codes. */
export async function withClient(
  server: string | undefined,
  act: (client: ReturnType<typeof createClient>, signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const client = createClient(
    (server ?? process.env.CORRAL_SERVER ?? "127.0.0.1:50051").split(","),
    clientOptions(process.env),
  );
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await act(client, abort.signal);
  } catch (err) {
    return serviceError(err, abort.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    client.close();
  }
}

/** Reports a failed call on stderr; the exit code for it (130 after the user's own ^C). */
function serviceError(err: unknown, interrupted: AbortSignal): number {
  if (interrupted.aborted) return EXIT_CODES[Status.STATUS_CANCELLED]!;
  const e = err as { code?: number; details?: string; message: string };
  process.stderr.write(`corral: ${e.details ?? e.message}\n`);
  return EXIT_SERVICE_ERROR;
}
