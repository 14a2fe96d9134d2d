import { status, type StatusObject } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  QueueFullError,
  ScratchFullError,
  UnavailableError,
} from "../errors.js";

/**
 * The one place that turns a failure into a gRPC status. Known service failures keep their
 * message; anything else is INTERNAL with a generic message (the details go to the log).
 */
export function toGrpcStatus(err: unknown, signal?: AbortSignal): StatusObject {
  const s = (code: status, details: string): StatusObject => ({ code, details, metadata: new Metadata() });
  if (err instanceof InvalidArgumentError) return s(status.INVALID_ARGUMENT, err.message);
  if (err instanceof NotFoundError) return s(status.NOT_FOUND, err.message);
  if (err instanceof QueueFullError || err instanceof ScratchFullError)
    return s(status.RESOURCE_EXHAUSTED, err.message);
  if (err instanceof FailedPreconditionError) return s(status.FAILED_PRECONDITION, err.message);
  if (err instanceof UnavailableError) return s(status.UNAVAILABLE, err.message);
  if (err instanceof UnauthenticatedError) return s(status.UNAUTHENTICATED, err.message);
  if (err instanceof PermissionDeniedError) return s(status.PERMISSION_DENIED, err.message);
  if (signal?.aborted) return s(status.CANCELLED, "the job was cancelled");
  return s(status.INTERNAL, "internal error; see the service log");
}
