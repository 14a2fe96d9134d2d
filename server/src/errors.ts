/**
 * The service's own failures. Each maps to one gRPC status in `grpc/to-grpc-status.ts`;
 * a program's failure is never one of these but an Outcome.
 */

/** A request field is invalid; `field` is its path in the request, e.g. `steps[0].argv`. */
export class InvalidArgumentError extends Error {
  override readonly name = "InvalidArgumentError";
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** The request names something this server does not have, such as a profile. */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
}

/** The queue's backlog is full; the client may retry later or elsewhere. */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
}

/** The host cannot enforce what the request asks for (for example a limit it cannot apply). */
export class FailedPreconditionError extends Error {
  override readonly name = "FailedPreconditionError";
}

/** The service is shutting down and admits no new job. */
export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
}

/** The call carries no credential, or a wrong one. */
export class UnauthenticatedError extends Error {
  override readonly name = "UnauthenticatedError";
}

/** The caller's credential does not allow what it asks for (such as this profile). */
export class PermissionDeniedError extends Error {
  override readonly name = "PermissionDeniedError";
}

/** The service's scratch filesystem has no room for a job's files. */
export class ScratchFullError extends Error {
  override readonly name = "ScratchFullError";
}
