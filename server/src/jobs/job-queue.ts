import PQueue from "p-queue";
import { QueueFullError, UnavailableError } from "../errors.js";

/** Options of the job queue. */
export interface JobQueueOptions {
  /** Jobs that run at once. */
  readonly concurrency: number;
  /** Jobs that may wait for a slot; past it a job is refused at once. */
  readonly backlog: number;
}

/** How a job waits. */
export interface AdmitOptions {
  /** Higher runs first; equal priorities run in arrival order. */
  readonly priority: number;
  /** Called with the job's new position whenever it changes while it waits. */
  readonly onPosition?: (position: number) => void;
}

/** A job admitted to the queue. */
export interface Admission<T> {
  /** Jobs ahead of it when it was admitted (0: it starts at once or next). */
  readonly position: number;
  /** Settles with the task's result; rejects with the signal's reason if aborted while still waiting. */
  readonly done: Promise<T>;
}

interface Waiter {
  readonly priority: number;
  /** The place last told to the job. */
  told: number;
  readonly onPosition?: (position: number) => void;
}

/**
 * Waiting jobs hear of a new place at most this often. Telling every waiter at every start
 * would send n messages per job, n² for a queue of n: 10⁸ for 10,000 waiting jobs.
 */
const TELL_EVERY_MS = 250;

/**
 * A bounded priority queue of jobs in front of a fixed number of run slots (p-queue), with its
 * own mirror of the waiting line so that each waiting job can be told its place as it moves.
 */
export class JobQueue {
  readonly #queue: PQueue;
  readonly #backlog: number;
  /** The waiting jobs in the order p-queue will start them: priority, then arrival. */
  readonly #line: Waiter[] = [];
  #closed = false;
  #teller: NodeJS.Timeout | undefined;

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
   * Admits `task` or throws QueueFullError (UnavailableError once shutting down) at once. A job
   * aborted while it waits leaves the queue without running. The task starts a microtask after
   * `admit` returns at the soonest, even with a slot free, so that the caller can announce the
   * job (its place in the queue) before anything the task says.
   */
  admit<T>(task: (signal: AbortSignal) => Promise<T>, signal: AbortSignal, opts: AdmitOptions): Admission<T> {
    if (this.#closed) throw new UnavailableError("the service is shutting down");
    const free = this.#queue.pending < this.#queue.concurrency;
    if (!free && this.#queue.size >= this.#backlog)
      throw new QueueFullError(`queue full: ${this.#queue.size} jobs waiting (backlog ${this.#backlog})`);
    const waiter: Waiter = { priority: opts.priority, told: 0, onPosition: opts.onPosition };
    if (!free) this.#enter(waiter);
    const position = waiter.told;
    // p-queue's own signal would also reject a *running* task's promise at once and free its
    // slot while the sandbox still runs; so it gets a signal that only fires while waiting.
    const dequeue = new AbortController();
    let started = false;
    const leave = (): void => {
      if (started) return;
      dequeue.abort(signal.reason);
      this.#leave(waiter);
    };
    signal.addEventListener("abort", leave, { once: true });
    const done = this.#queue
      .add(
        () => {
          started = true;
          this.#leave(waiter);
          return Promise.resolve().then(() => task(signal));
        },
        { signal: dequeue.signal, priority: opts.priority },
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

  // Same rule as p-queue's: after every waiting job of at least the same priority.
  #enter(w: Waiter): void {
    let at = this.#line.length;
    while (at > 0 && this.#line[at - 1]!.priority < w.priority) at--;
    this.#line.splice(at, 0, w);
    w.told = at;
    if (at < this.#line.length - 1) this.#tellSoon(); // it went ahead of someone
  }

  #leave(w: Waiter): void {
    const at = this.#line.indexOf(w);
    if (at < 0) return;
    this.#line.splice(at, 1);
    if (at < this.#line.length) this.#tellSoon(); // someone moved up
  }

  #tellSoon(): void {
    if (this.#teller) return;
    this.#teller = setTimeout(() => {
      this.#teller = undefined;
      this.#line.forEach((w, i) => {
        if (w.told === i) return;
        w.told = i;
        w.onPosition?.(i);
      });
    }, TELL_EVERY_MS).unref();
  }
}
