import { fileURLToPath } from "node:url";
import { ExecutionServiceService } from "@corral/proto/corral/v1";
import { readFile } from "node:fs/promises";
import { Server, ServerCredentials, type Metadata } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProto } from "grpc-health-check";
import type { Logger } from "pino";
import type { ServerInfo } from "../domain.js";
import type { JobService } from "../jobs/job-service.js";
import type { Metrics } from "../metrics.js";
import { authenticate, type Caller, type TokenEntry } from "./access.js";
import { createExecuteHandlers } from "./execute-handler.js";
import { createSubmittedJobsHandlers } from "./submitted-jobs-handlers.js";
import type { JobStore } from "../jobs/job-store.js";
import { createGetServerInfoHandler } from "./get-server-info-handler.js";
import { createListProfilesHandler } from "./list-profiles-handler.js";
import type { Profile } from "../sandbox/profiles.js";

/** Largest request accepted: input files and stdin travel in it. */
const MAX_REQUEST_BYTES = 80 * 1024 * 1024;

/** The service name health reports, besides the server as a whole (""). */
const SERVICE_NAME = "corral.v1.ExecutionService";

/** Who may call: token hashes (absent: no token needed) and TLS files (absent: plaintext). */
export interface Access {
  readonly tokens: readonly TokenEntry[] | undefined;
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string | undefined } | undefined;
}

/** A gRPC server bound to an address. */
export interface BoundServer {
  readonly server: Server;
  /** The port bound (useful with port 0). */
  readonly port: number;
  /** Turns grpc.health.v1 to NOT_SERVING (at shutdown). */
  notServing(): void;
}

/**
 * Creates the gRPC server, binds it (TLS when configured) and serves Corral's
 * ExecutionService, the standard grpc.health.v1 Health service and server reflection (so that
 * `grpcurl -plaintext ADDR list` and `describe` work without the .proto files).
 */
export async function createGrpcServer(
  address: string,
  access: Access,
  jobs: JobService,
  submitted: JobStore,
  profiles: ReadonlyMap<string, Profile>,
  info: () => ServerInfo,
  metrics: Metrics,
  logger: Logger,
): Promise<BoundServer> {
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    // A step's collected files (at most 32 MiB) travel in its step_finished event.
    "grpc.max_send_message_length": MAX_REQUEST_BYTES,
    // Pings keep idle streams (a long job with no output) alive through proxies and NAT.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const mtls = access.tls?.clientCa !== undefined;
  const who = (metadata: Metadata): Caller => authenticate(access.tokens, metadata, mtls);
  const { execute, interact } = createExecuteHandlers(jobs, who, metrics, logger);
  const { submit, watch, cancel } = createSubmittedJobsHandlers(jobs, submitted, who, metrics, logger);
  // The handlers settle every call themselves and never reject.
  server.addService(ExecutionServiceService, {
    execute: (call: Parameters<typeof execute>[0]) => void execute(call),
    interact: (call: Parameters<typeof interact>[0]) => void interact(call),
    submit: (call: Parameters<typeof submit>[0], cb: Parameters<typeof submit>[1]) => void submit(call, cb),
    watch: (call: Parameters<typeof watch>[0]) => void watch(call),
    cancel,
    getServerInfo: createGetServerInfoHandler(info, who),
    listProfiles: createListProfilesHandler(profiles, who),
  });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  const ownProto = fileURLToPath(import.meta.resolve("@corral/proto/corral/v1/execution.proto"));
  new ReflectionService(loadSync([ownProto, healthProto])).addToServer(server);
  const read = (variable: string, file: string) =>
    readFile(file).catch((err: Error) => {
      throw new Error(`${variable}=${file}: ${err.message}`);
    });
  const credentials = access.tls
    ? ServerCredentials.createSsl(
        access.tls.clientCa ? await read("CORRAL_TLS_CLIENT_CA", access.tls.clientCa) : null,
        [
          {
            cert_chain: await read("CORRAL_TLS_CERT", access.tls.cert),
            private_key: await read("CORRAL_TLS_KEY", access.tls.key),
          },
        ],
        mtls, // with a client CA, a client without a certificate it signed is refused
      )
    : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
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
