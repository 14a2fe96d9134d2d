import { once } from "node:events";
import type { ExecuteRequest, ExecuteResponse, InteractRequest } from "@corral/proto/corral/v1";
import { status, type Metadata, type ServerDuplexStream, type ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { JobRequest } from "../domain.js";
import { InvalidArgumentError } from "../errors.js";
import type { JobService } from "../jobs/job-service.js";
import type { Metrics } from "../metrics.js";
import { authorizeProfile, type Caller } from "./access.js";
import { parseExecuteRequest } from "./parse-execute-request.js";
import { toExecuteResponse } from "./to-execute-response.js";
import { toGrpcStatus } from "./to-grpc-status.js";

type JobCall =
  ServerWritableStream<ExecuteRequest, ExecuteResponse> | ServerDuplexStream<InteractRequest, ExecuteResponse>;

/** A call's job, checked, that `caller` may run; throws what the call must answer. */
export function checkedJob(caller: Caller, wire: ExecuteRequest): JobRequest {
  const request = parseExecuteRequest(wire);
  authorizeProfile(caller, request.profile);
  return { ...request, caller: caller.name };
}

/** The status a failed job call (Execute, Interact, Submit) ends with: counted, and logged if internal. */
export function failureStatus(err: unknown, cancelled: AbortSignal | undefined, metrics: Metrics, logger: Logger) {
  const st = toGrpcStatus(err, cancelled);
  if (st.code === status.INTERNAL) logger.error({ err }, "a job call failed");
  if (st.code !== status.CANCELLED) metrics.rejected(status[st.code]);
  return st;
}

/**
 * Execute and Interact: one job per call. The call's cancellation (client cancel, disconnect
 * or expired deadline) aborts the job's signal; output waits for the call's `drain` when the
 * client reads slower than the program writes.
 */
export function createExecuteHandlers(
  jobs: JobService,
  who: (metadata: Metadata) => Caller,
  metrics: Metrics,
  logger: Logger,
) {
  /** Runs the job `start` reads from the call; ends the call with the job's stream or an error. */
  const serve = async (
    call: JobCall,
    start: (broken: AbortController) => Promise<{ request: ExecuteRequest; stdin?: AsyncIterable<Uint8Array> }>,
  ): Promise<void> => {
    const abort = new AbortController();
    call.once("cancelled", () => abort.abort(new Error("call cancelled")));
    // Aborted with an InvalidArgumentError when the client breaks the call's protocol mid-job.
    const broken = new AbortController();
    const sink = {
      emit: (event: Parameters<typeof toExecuteResponse>[0]) => call.write(toExecuteResponse(event)),
      // Resolves on drain, or as soon as the call is gone (the abort removes the listener).
      drained: () =>
        once(call, "drain", { signal: abort.signal }).then(
          () => undefined,
          () => undefined,
        ),
    };
    try {
      const caller = who(call.metadata);
      const { request, stdin } = await start(broken);
      const signal = AbortSignal.any([abort.signal, broken.signal]);
      await jobs.execute(checkedJob(caller, request), sink, signal, stdin);
      if (broken.signal.aborted) throw broken.signal.reason;
      call.end();
    } catch (err) {
      const st = failureStatus(err, abort.signal, metrics, logger);
      // grpc-js turns an 'error' event on the call into the call's final status.
      if (!abort.signal.aborted) call.emit("error", st);
    }
  };

  return {
    execute: (call: ServerWritableStream<ExecuteRequest, ExecuteResponse>): Promise<void> =>
      serve(call, () => Promise.resolve({ request: call.request })),

    interact: (call: ServerDuplexStream<InteractRequest, ExecuteResponse>): Promise<void> =>
      serve(call, async (broken) => {
        const messages = (call as AsyncIterable<InteractRequest>)[Symbol.asyncIterator]();
        const first = await messages.next();
        const job = first.done ? undefined : first.value.input;
        if (job?.$case !== "job") throw new InvalidArgumentError("input", "the first message must be the job");
        const request = job.value;
        if (request.steps.length === 0)
          throw new InvalidArgumentError("job.steps", "Interact needs a step to read the stdin it sends");
        if (request.tests) throw new InvalidArgumentError("job.tests", "Interact runs no test cases; use Execute");
        return { request, stdin: stdinOf(messages, broken) };
      }),
  };
}

/**
 * The stdin chunks of an Interact call, up to a close or the end of the client's side. A
 * second job message fails the call: the job is aborted with INVALID_ARGUMENT.
 */
async function* stdinOf(messages: AsyncIterator<InteractRequest>, broken: AbortController): AsyncIterable<Uint8Array> {
  for (;;) {
    const next = await messages.next();
    if (next.done) return;
    const input = next.value.input;
    if (input?.$case === "stdin") yield input.value;
    else if (input?.$case === "closeStdin") return;
    else {
      broken.abort(
        new InvalidArgumentError("input", "only the first message may be the job; later ones are stdin or close_stdin"),
      );
      return;
    }
  }
}
