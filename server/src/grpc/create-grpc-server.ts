import { fileURLToPath } from "node:url";
import { ExecutionServiceService } from "@corral/proto/corral/v1";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProto } from "grpc-health-check";
import type { Logger } from "pino";
import type { ServerInfo } from "../domain.js";
import type { JobService } from "../jobs/job-service.js";
import { createExecuteHandler } from "./execute-handler.js";
import { createGetServerInfoHandler } from "./get-server-info-handler.js";

/** Largest request accepted: input files and stdin travel in it. */
export const MAX_REQUEST_BYTES = 80 * 1024 * 1024;

/** The service name health reports, besides the server as a whole (""). */
export const SERVICE_NAME = "corral.v1.ExecutionService";

/** A gRPC server bound to an address. */
export interface BoundServer {
  readonly server: Server;
  /** The port bound (useful with port 0). */
  readonly port: number;
  /** Turns grpc.health.v1 to NOT_SERVING (at shutdown). */
  notServing(): void;
}

/**
 * Creates the gRPC server, binds it (plaintext; auth comes later) and serves Corral's
 * ExecutionService, the standard grpc.health.v1 Health service and server reflection (so that
 * `grpcurl -plaintext ADDR list` and `describe` work without the .proto files).
 */
export async function createGrpcServer(
  address: string,
  jobs: JobService,
  info: () => ServerInfo,
  logger: Logger,
): Promise<BoundServer> {
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    "grpc.max_send_message_length": 4 * 1024 * 1024,
    // Pings keep idle streams (a long job with no output) alive through proxies and NAT.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const execute = createExecuteHandler(jobs, logger);
  // The handler settles every call itself and never rejects.
  server.addService(ExecutionServiceService, {
    execute: (call: Parameters<typeof execute>[0]) => void execute(call),
    getServerInfo: createGetServerInfoHandler(info),
  });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  const ownProto = fileURLToPath(import.meta.resolve("@corral/proto/corral/v1/execution.proto"));
  new ReflectionService(loadSync([ownProto, healthProto])).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    port,
    notServing() {
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
    },
  };
}
