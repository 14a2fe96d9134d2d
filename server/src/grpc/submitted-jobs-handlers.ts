import { once } from "node:events";
import type {
  CancelRequest,
  CancelResponse,
  ExecuteRequest,
  SubmitResponse,
  WatchRequest,
  WatchResponse,
} from "@corral/proto/corral/v1";
import { type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import type { JobService } from "../jobs/job-service.js";
import type { JobStore, StoredJob } from "../jobs/job-store.js";
import type { Metrics } from "../metrics.js";
import { authenticated, type Caller } from "./access.js";
import { checkedJob, failureStatus } from "./execute-handler.js";
import { toExecuteResponse } from "./to-execute-response.js";
import { toGrpcStatus } from "./to-grpc-status.js";

/** Submit, Watch and Cancel: jobs that outlive the call that started them. */
export function createSubmittedJobsHandlers(
  jobs: JobService,
  store: JobStore,
  who: (metadata: Metadata) => Caller,
  metrics: Metrics,
  logger: Logger,
) {
  const find = (caller: Caller, id: string): StoredJob => {
    if (id === "") throw new InvalidArgumentError("job_id", "must not be empty");
    const job = store.get(id, caller.id);
    if (!job) throw new NotFoundError(`job_id: no job '${id}' of this caller (a job is kept a while after it ends)`);
    return job;
  };

  return {
    /** Admits the job (or fails as Execute would), answers with its id, and runs it detached. */
    submit: async (
      call: ServerUnaryCall<ExecuteRequest, SubmitResponse>,
      callback: sendUnaryData<SubmitResponse>,
    ): Promise<void> => {
      try {
        const caller = who(call.metadata);
        const request = checkedJob(caller, call.request);
        const abort = new AbortController();
        let stored: StoredJob | undefined;
        const jobId = await new Promise<string>((admitted, refused) => {
          // The first event is `queued`, with the id: the job is admitted.
          const sink = {
            emit: (event: Parameters<StoredJob["emit"]>[0]): boolean => {
              if (!stored && event.kind === "queued") {
                stored = store.add(event.jobId, caller.id, () => abort.abort(new Error("cancelled by Cancel")));
                admitted(event.jobId);
              }
              return stored?.emit(event) ?? true;
            },
            drained: () => Promise.resolve(),
          };
          jobs.execute(request, sink, abort.signal).then(
            () => store.ended(stored!),
            (err: Error) => {
              if (!stored) return refused(err);
              logger.error({ err, jobId: stored.id }, "a submitted job failed");
              stored.abandon();
              store.ended(stored);
            },
          );
        });
        callback(null, { jobId });
      } catch (err) {
        callback(failureStatus(err, undefined, metrics, logger));
      }
    },

    /** Streams the job's events from the offset asked for, live until it ends. */
    watch: async (call: ServerWritableStream<WatchRequest, WatchResponse>): Promise<void> => {
      const stop = new AbortController();
      call.once("cancelled", () => stop.abort());
      try {
        const job = find(who(call.metadata), call.request.jobId);
        for await (const item of job.watch(Number(call.request.fromOffset), stop.signal)) {
          const message: WatchResponse =
            item.kind === "event"
              ? { item: { $case: "event", value: toExecuteResponse(item.event) }, offset: BigInt(item.offset) }
              : {
                  item: {
                    $case: "dropped",
                    value: {
                      fromOffset: BigInt(item.fromOffset),
                      toOffset: BigInt(item.toOffset),
                      bytes: BigInt(item.bytes),
                    },
                  },
                  offset: BigInt(item.fromOffset),
                };
          if (!call.write(message)) await once(call, "drain", { signal: stop.signal }).catch(() => undefined);
        }
        if (stop.signal.aborted) return;
        if (job.abandoned) throw new Error("the job failed in the service; see its log");
        call.end();
      } catch (err) {
        if (!stop.signal.aborted) call.emit("error", toGrpcStatus(err));
      }
    },

    cancel: authenticated<CancelRequest, CancelResponse>(who, (caller, request) => {
      find(caller, request.jobId).cancel();
      return {};
    }),
  };
}
