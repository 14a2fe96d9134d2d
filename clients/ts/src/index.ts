import {
  ExecutionServiceClient,
  type ExecuteRequest,
  type ExecuteResponse,
  type GetServerInfoResponse,
  type InteractRequest,
  type SubmitResponse,
  type WatchResponse,
  type ListProfilesResponse,
  type Limits,
} from "@corral/proto/corral/v1";
import { once } from "node:events";
import {
  credentials,
  Metadata,
  status,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from "@grpc/grpc-js";

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

/** Receive window per connection and per stream, bytes. */
const FLOW_CONTROL_WINDOW = 8 * 1024 * 1024;

/** Options of one call. */
export interface CallOptions {
  /** Aborting cancels the call, and with it the job. */
  readonly signal?: AbortSignal;
  /** Absolute deadline of the call. */
  readonly deadline?: Date;
}

/** An interactive job: stdin in, events out. */
export interface Interaction extends AsyncIterable<ExecuteResponse> {
  /** Sends stdin bytes; resolves when the call can take more. */
  write(data: Uint8Array): Promise<void>;
  /** Ends the program's stdin. */
  closeStdin(): void;
}

/** A connection to one Corral server. */
export interface CorralClient {
  /** Runs a job; yields its events in order, the last being `finished`. Throws a gRPC error for service failures. */
  execute(request: ExecuteRequest, options?: CallOptions): AsyncIterable<ExecuteResponse>;
  /**
   * Runs a job whose last step reads stdin while it runs (Interact): `write` sends stdin,
   * `closeStdin` ends it, and iterating gives the events as `execute` does. Not retried: the
   * stdin already sent cannot be sent again.
   */
  interact(request: ExecuteRequest, options?: CallOptions): Interaction;
  /** Queues a job that outlives the call; resolves with its id once admitted (retried like `execute`). */
  submit(request: ExecuteRequest, options?: CallOptions): Promise<string>;
  /** A submitted job's events from `fromOffset` (default 0), live until it ends. */
  watch(jobId: string, options?: CallOptions & { readonly fromOffset?: number }): AsyncIterable<WatchResponse>;
  /** Stops a submitted job. */
  cancel(jobId: string, options?: CallOptions): Promise<void>;
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
  /**
   * Retries of a call the server refused before running anything (RESOURCE_EXHAUSTED: its queue
   * is full; UNAVAILABLE: it is down or shutting down), each on the next address, after an
   * exponential backoff with jitter. Default: 4 attempts, from 100 ms up to 2 s.
   */
  readonly retry?: { readonly attempts?: number; readonly baseMs?: number; readonly maxMs?: number };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;

const retryable = (err: unknown): boolean => {
  const code = (err as ServiceError).code;
  return code === status.RESOURCE_EXHAUSTED || code === status.UNAVAILABLE;
};

/**
 * Connects (lazily) to one server, or to several taken in turn (round robin) at HOST:PORT
 * addresses; a refused call is retried on the next one.
 */
export function createClient(addresses: string | readonly string[], opts: ClientOptions = {}): CorralClient {
  const list = typeof addresses === "string" ? [addresses] : [...addresses];
  if (list.length === 0) throw new Error("createClient: give at least one address");
  for (const address of list)
    if (opts.token && !opts.tls && !LOOPBACK.test(address))
      throw new Error(`refusing to send a bearer token in cleartext to ${address}: give the server's CA (tls.ca)`);
  const channel = opts.tls
    ? credentials.createSsl(opts.tls.ca, opts.tls.key ?? null, opts.tls.cert ?? null)
    : credentials.createInsecure();
  const clients = list.map(
    (address) =>
      new ExecutionServiceClient(address, channel, {
        "grpc.max_send_message_length": MAX_SEND_BYTES,
        "grpc.max_receive_message_length": -1,
        // HTTP/2's default 64 KiB receive window makes the server wait for a WINDOW_UPDATE every
        // 64 KiB of output; a larger one lets a job's output stream at pipe speed (bench/streaming.ts).
        "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW,
      }),
  );
  let turn = 0;
  const nextClient = (): ExecutionServiceClient => clients[turn++ % clients.length]!;
  const attempts = Math.max(1, opts.retry?.attempts ?? 4);
  const backoff = (attempt: number, signal?: AbortSignal): Promise<void> => {
    const ms =
      Math.min(opts.retry?.maxMs ?? 2000, (opts.retry?.baseMs ?? 100) * 2 ** attempt) * (0.5 + Math.random() / 2);
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  };
  // Metadata rather than call credentials: grpc-js sends those only over TLS, and a token on
  // loopback plaintext is a supported set-up.
  const metadata = (): Metadata => {
    const m = new Metadata();
    if (opts.token) m.set("authorization", `Bearer ${opts.token}`);
    return m;
  };
  const callOptions = (o: CallOptions) => (o.deadline ? { deadline: o.deadline } : {});

  /** One unary call, retried like `execute`, with a deadline and cancellation by signal. */
  const unary = async <T>(
    start: (
      c: ExecutionServiceClient,
      md: Metadata,
      o: { deadline?: Date },
      cb: (err: ServiceError | null, res: T) => void,
    ) => { cancel(): void },
    options: CallOptions,
  ): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<T>((resolve, reject) => {
          let stop = (): void => undefined;
          const call = start(nextClient(), metadata(), callOptions(options), (err, res) => {
            stop();
            if (err) reject(err);
            else resolve(res);
          });
          stop = cancelOn(options.signal, call);
        });
      } catch (err) {
        if (!retryable(err) || attempt + 1 >= attempts || options.signal?.aborted) throw err;
        await backoff(attempt, options.signal);
      }
    }
  };

  return {
    execute: (request, options = {}) =>
      // Only a job the server refused before admitting it is tried again.
      streamCall(
        () => nextClient().execute(request, metadata(), callOptions(options)),
        (err, attempt) => retryable(err) && attempt + 1 < attempts && !options.signal?.aborted,
        options.signal,
        (attempt) => backoff(attempt, options.signal),
      ),
    interact(request, options = {}) {
      const call: ClientDuplexStream<InteractRequest, ExecuteResponse> = nextClient().interact(
        metadata(),
        callOptions(options),
      );
      const stop = cancelOn(options.signal, call);
      call.write({ input: { $case: "job", value: request } });
      return {
        write: async (data) => {
          if (!call.write({ input: { $case: "stdin", value: Buffer.from(data) } })) await once(call, "drain");
        },
        closeStdin: () => {
          call.write({ input: { $case: "closeStdin", value: {} } });
          call.end();
        },
        [Symbol.asyncIterator]: () =>
          (async function* () {
            try {
              yield* call as AsyncIterable<ExecuteResponse>;
            } finally {
              stop();
              call.cancel();
            }
          })(),
      };
    },
    submit: async (request, options = {}) =>
      (await unary<SubmitResponse>((c, md, o, cb) => c.submit(request, md, o, cb), options)).jobId,
    // A submitted job lives on the server that took it: with several addresses, each is asked
    // in turn until one knows the job (the others answer NOT_FOUND).
    watch: (jobId, options = {}) =>
      streamCall(
        (attempt) =>
          clients[attempt]!.watch(
            { jobId, fromOffset: BigInt(options.fromOffset ?? 0) },
            metadata(),
            callOptions(options),
          ),
        (err, attempt) => (err as ServiceError).code === status.NOT_FOUND && attempt + 1 < clients.length,
        options.signal,
      ),
    cancel: async (jobId, options = {}) => {
      for (const [i, c] of clients.entries()) {
        try {
          await new Promise<void>((resolve, reject) =>
            c.cancel({ jobId }, metadata(), callOptions(options), (err) => (err ? reject(err) : resolve())),
          );
          return;
        } catch (err) {
          if ((err as ServiceError).code !== status.NOT_FOUND || i === clients.length - 1) throw err;
        }
      }
    },
    serverInfo: (options = {}) =>
      unary<GetServerInfoResponse>((c, md, o, cb) => c.getServerInfo({}, md, o, cb), options),
    listProfiles: (options = {}) =>
      unary<ListProfilesResponse>((c, md, o, cb) => c.listProfiles({}, md, o, cb), options),
    close: () => clients.forEach((c) => c.close()),
  };
}

/**
 * Yields a server stream's messages, the call cancelled when `signal` aborts or the consumer
 * stops. A call that fails before its first message is started again (`start` gets the attempt's
 * number) while `again` says so, after `pause`.
 */
async function* streamCall<T>(
  start: (attempt: number) => ClientReadableStream<T>,
  again: (err: unknown, attempt: number) => boolean,
  signal: AbortSignal | undefined,
  pause: (attempt: number) => Promise<void> = () => Promise.resolve(),
): AsyncGenerator<T> {
  for (let attempt = 0; ; attempt++) {
    const call = start(attempt);
    const stop = cancelOn(signal, call);
    let started = false;
    try {
      for await (const message of call as AsyncIterable<T>) {
        started = true;
        yield message;
      }
      return;
    } catch (err) {
      if (started || !again(err, attempt)) throw err;
    } finally {
      stop();
      call.cancel();
    }
    await pause(attempt);
  }
}

/** Cancels `call` when `signal` aborts (at once if it has); returns what stops listening. */
function cancelOn(signal: AbortSignal | undefined, call: { cancel(): void }): () => void {
  const onAbort = (): void => call.cancel();
  if (signal?.aborted) call.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  return () => signal?.removeEventListener("abort", onAbort);
}
