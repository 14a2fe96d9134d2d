import { once } from "node:events";
import type { ExecuteRequest, ExecuteResponse } from "@corral/proto/corral/v1";
import { status, type Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import type { Metrics } from "../metrics.js";
import { authorizeProfile, type Caller } from "./access.js";
import { parseExecuteRequest } from "./parse-execute-request.js";
import { toExecuteResponse } from "./to-execute-response.js";
import { toGrpcStatus } from "./to-grpc-status.js";

/**
 * Execute: one job per call. The call's cancellation (client cancel, disconnect or expired
 * deadline) aborts the job's signal; output waits for the call's `drain` when the client
 * reads slower than the program writes.
 */
export function createExecuteHandler(
  jobs: JobService,
  who: (metadata: Metadata) => Caller,
  metrics: Metrics,
  logger: Logger,
) {
  return async (call: ServerWritableStream<ExecuteRequest, ExecuteResponse>): Promise<void> => {
    const abort = new AbortController();
    call.once("cancelled", () => abort.abort(new Error("call cancelled")));
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
      const request = parseExecuteRequest(call.request);
      authorizeProfile(caller, request.profile);
      await jobs.execute({ ...request, caller: caller.name }, sink, abort.signal);
      call.end();
    } catch (err) {
      const st = toGrpcStatus(err, abort.signal);
      if (st.code === status.INTERNAL) logger.error({ err }, "Execute failed");
      if (st.code !== status.CANCELLED) metrics.rejected(status[st.code]);
      // grpc-js turns an 'error' event on the call into the call's final status.
      if (!abort.signal.aborted) call.emit("error", st);
    }
  };
}
