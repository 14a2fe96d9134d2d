import { ExecutionServiceService } from "@corral/proto/corral/v1";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import type { ServerInfo } from "../domain.js";
import { createExecuteHandler } from "./execute-handler.js";
import { createGetServerInfoHandler } from "./get-server-info-handler.js";

/** Largest request accepted: input files and stdin travel in it. */
export const MAX_REQUEST_BYTES = 80 * 1024 * 1024;

/** A gRPC server bound to an address. */
export interface BoundServer {
  readonly server: Server;
  /** The port bound (useful with port 0). */
  readonly port: number;
}

/** Creates the gRPC server with Corral's services and binds it (plaintext; auth comes later). */
export async function createGrpcServer(
  address: string,
  jobs: JobService,
  info: () => ServerInfo,
  logger: Logger,
): Promise<BoundServer> {
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });
  const execute = createExecuteHandler(jobs, logger);
  // The handler settles every call itself and never rejects.
  server.addService(ExecutionServiceService, {
    execute: (call: Parameters<typeof execute>[0]) => void execute(call),
    getServerInfo: createGetServerInfoHandler(info),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}
