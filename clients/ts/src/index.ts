import {
  ExecutionServiceClient,
  type ExecuteRequest,
  type ExecuteResponse,
  type GetServerInfoResponse,
  type ListProfilesResponse,
  type Limits,
} from "@corral/proto/corral/v1";
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";

export * from "@corral/proto/corral/v1";

/** Limits for a step with only the given ones set; zero means the profile's default. */
export function limits(given: Partial<Limits> = {}): Limits {
  return {
    wallTimeMs: 0n,
    cpuTimeMs: 0n,
    memoryBytes: 0n,
    processes: 0,
    outputBytes: 0n,
    fileSizeBytes: 0n,
    openFiles: 0,
    stackBytes: 0n,
    ...given,
  };
}

/** Options of one call. */
export interface CallOptions {
  /** Aborting cancels the call, and with it the job. */
  readonly signal?: AbortSignal;
  /** Absolute deadline of the call. */
  readonly deadline?: Date;
}

/** A connection to one Corral server. */
export interface CorralClient {
  /** Runs a job; yields its events in order, the last being `finished`. Throws a gRPC error for service failures. */
  execute(request: ExecuteRequest, options?: CallOptions): AsyncIterable<ExecuteResponse>;
  /** The server's version, load and what its host can enforce. */
  serverInfo(options?: CallOptions): Promise<GetServerInfoResponse>;
  /** The profiles this caller may use, with their default limits. */
  listProfiles(options?: CallOptions): Promise<ListProfilesResponse>;
  close(): void;
}

/** Biggest request sent: input files and stdin travel in it (the server takes 80 MiB). */
const MAX_SEND_BYTES = 80 * 1024 * 1024;

/** How to reach a server: plaintext (loopback), TLS, mutual TLS, and/or a bearer token. */
export interface ClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string;
  /** TLS: the CA that signed the server's certificate (PEM); with cert and key, mutual TLS. */
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

/** Connects (lazily) to the server at `address` (HOST:PORT). */
export function createClient(address: string, opts: ClientOptions = {}): CorralClient {
  if (opts.token && !opts.tls && !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(address))
    throw new Error(`refusing to send a bearer token in cleartext to ${address}: give the server's CA (tls.ca)`);
  const channel = opts.tls
    ? credentials.createSsl(opts.tls.ca, opts.tls.key ?? null, opts.tls.cert ?? null)
    : credentials.createInsecure();
  const client = new ExecutionServiceClient(address, channel, {
    "grpc.max_send_message_length": MAX_SEND_BYTES,
    "grpc.max_receive_message_length": -1,
  });
  // Metadata rather than call credentials: grpc-js sends those only over TLS, and a token on
  // loopback plaintext is a supported set-up.
  const metadata = (): Metadata => {
    const m = new Metadata();
    if (opts.token) m.set("authorization", `Bearer ${opts.token}`);
    return m;
  };
  /** One unary call with this client's metadata, a deadline and cancellation by signal. */
  const unary = <T>(
    start: (md: Metadata, o: { deadline?: Date }, cb: (err: ServiceError | null, res: T) => void) => { cancel(): void },
    options: CallOptions,
  ): Promise<T> =>
    new Promise((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = start(metadata(), options.deadline ? { deadline: options.deadline } : {}, (err, res) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(res);
      });
      if (options.signal?.aborted) call.cancel();
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });

  return {
    execute(request, options = {}) {
      const call: ClientReadableStream<ExecuteResponse> = client.execute(request, metadata(), {
        ...(options.deadline ? { deadline: options.deadline } : {}),
      });
      const onAbort = (): void => call.cancel();
      if (options.signal?.aborted) call.cancel();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      return (async function* () {
        try {
          for await (const event of call as AsyncIterable<ExecuteResponse>) yield event;
        } finally {
          options.signal?.removeEventListener("abort", onAbort);
          call.cancel();
        }
      })();
    },
    serverInfo: (options = {}) =>
      unary<GetServerInfoResponse>((md, o, cb) => client.getServerInfo({}, md, o, cb), options),
    listProfiles: (options = {}) =>
      unary<ListProfilesResponse>((md, o, cb) => client.listProfiles({}, md, o, cb), options),
    close: () => client.close(),
  };
}
