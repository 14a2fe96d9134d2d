import PQueue from "p-queue";
import { QueueFullError, UnavailableError } from "../errors.js";

/** Options of the job queue. */
export interface JobQueueOptions {
  /** Jobs that run at once. */
  readonly concurrency: number;
  /** Jobs that may wait for a slot; past it a job is refused at once. */
  readonly backlog: number;
}

/** A job admitted to the queue. */
export interface Admission<T> {
  /** Jobs ahead of it when it was admitted (0: it starts at once or next). */
  readonly position: number;
  /** Settles with the task's result; rejects with the signal's reason if aborted while still waiting. */
  readonly done: Promise<T>;
}

/** Bounded FIFO of jobs in front of a fixed number of run slots. */
export class JobQueue {
  readonly #queue: PQueue;
  readonly #backlog: number;
  #closed = false;

  constructor(opts: JobQueueOptions) {
    this.#queue = new PQueue({ concurrency: opts.concurrency });
    this.#backlog = opts.backlog;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#queue.size;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#queue.pending;
  }

  /**
   * Admits `task` or throws QueueFullError at once. A job aborted while it waits leaves the
   * queue without running.
   */
  admit<T>(task: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Admission<T> {
    if (this.#closed) throw new UnavailableError("the service is shutting down");
    const free = this.#queue.pending < this.#queue.concurrency;
    if (!free && this.#queue.size >= this.#backlog)
      throw new QueueFullError(`queue full: ${this.#queue.size} jobs waiting (backlog ${this.#backlog})`);
    const position = free ? 0 : this.#queue.size;
    // p-queue's own signal would also reject a *running* task's promise at once and free its
    // slot while the sandbox still runs; so it gets a signal that only fires while waiting.
    const dequeue = new AbortController();
    let started = false;
    const leave = (): void => {
      if (!started) dequeue.abort(signal.reason);
    };
    signal.addEventListener("abort", leave, { once: true });
    const done = this.#queue
      .add(
        () => {
          started = true;
          return task(signal);
        },
        { signal: dequeue.signal },
      )
      .finally(() => signal.removeEventListener("abort", leave));
    return { position, done };
  }

  /** From now on every admission fails with UnavailableError (shutting down). */
  refuse(): void {
    this.#closed = true;
  }

  /** Resolves when no job waits or runs. */
  idle(): Promise<void> {
    return this.#queue.onIdle();
  }
}
