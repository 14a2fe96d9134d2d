import type { JobEvent } from "../domain.js";
import type { JobEventSink } from "./job-service.js";

/** One item of a watch: an event at its offset, or a run of output events that were dropped. */
export type WatchItem =
  | { readonly kind: "event"; readonly offset: number; readonly event: JobEvent }
  | { readonly kind: "dropped"; readonly fromOffset: number; readonly toOffset: number; readonly bytes: number };

/** Settings of the store. */
export interface JobStoreOptions {
  /** How long a job stays watchable after it ends. */
  readonly retentionMs: number;
  /** Output bytes kept per job; past it the oldest output events are dropped. */
  readonly outputKeptBytes: number;
}

/**
 * A submitted job's events, kept for any number of watchers while it runs and `retentionMs`
 * after it ends. It is the job's event sink: it never makes the job wait (output past
 * `outputKeptBytes` drops the oldest output instead, and watchers are told).
 */
export class StoredJob implements JobEventSink {
  readonly #events: (JobEvent | undefined)[] = [];
  /** Output bytes held now, and the size of each output event by offset (to drop the oldest). */
  #heldBytes = 0;
  readonly #sizes = new Map<number, number>();
  #nextToDrop = 0;
  #ended = false;
  #abandoned = false;
  /** Resolved, and replaced, at every new event. */
  #changed = latch();

  constructor(
    readonly id: string,
    /** Who submitted it: only they may watch or cancel it. */
    readonly owner: string,
    readonly cancel: () => void,
    private readonly outputKeptBytes: number,
  ) {}

  get ended(): boolean {
    return this.#ended;
  }

  /** The service failed the job: it ended without `finished`. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  emit(event: JobEvent): boolean {
    const offset = this.#events.push(event) - 1;
    if (event.kind === "output") {
      this.#sizes.set(offset, event.data.length);
      this.#heldBytes += event.data.length;
      while (this.#heldBytes > this.outputKeptBytes) this.#dropOldestOutput();
    }
    if (event.kind === "finished") this.#ended = true;
    this.#changed.fire();
    this.#changed = latch();
    return true;
  }

  /** Ends the job without its `finished` event (the service failed it); watchers stop. */
  abandon(): void {
    this.#ended = this.#abandoned = true;
    this.#changed.fire();
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  #dropOldestOutput(): void {
    while (this.#events[this.#nextToDrop]?.kind !== "output") this.#nextToDrop++;
    this.#events[this.#nextToDrop] = undefined;
    this.#heldBytes -= this.#sizes.get(this.#nextToDrop) ?? 0;
    this.#nextToDrop++;
  }

  /**
   * The job's events from `from` on, then live ones until it ends. A run of dropped output
   * events comes as one `dropped` item. Stops early when `signal` aborts.
   */
  async *watch(from: number, stop: AbortSignal): AsyncIterable<WatchItem> {
    const stopped = new Promise<void>((resolve) => stop.addEventListener("abort", () => resolve(), { once: true }));
    let at = from;
    for (;;) {
      while (at < this.#events.length) {
        if (this.#events[at] === undefined) {
          const start = at;
          let bytes = 0;
          while (at < this.#events.length && this.#events[at] === undefined) bytes += this.#sizes.get(at++) ?? 0;
          yield { kind: "dropped", fromOffset: start, toOffset: at, bytes };
          continue;
        }
        yield { kind: "event", offset: at, event: this.#events[at]! };
        at++;
      }
      if (this.#ended || stop.aborted) return;
      await Promise.race([this.#changed.promise, stopped]);
    }
  }
}

/** A promise and the function that resolves it. */
function latch(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** Submitted jobs by id. */
export class JobStore {
  readonly #jobs = new Map<string, StoredJob>();

  constructor(private readonly opts: JobStoreOptions) {}

  /** Keeps a new job; `cancel` stops it. */
  add(id: string, owner: string, cancel: () => void): StoredJob {
    const job = new StoredJob(id, owner, cancel, this.opts.outputKeptBytes);
    this.#jobs.set(id, job);
    return job;
  }

  /** Starts the job's retention clock once it has ended. */
  ended(job: StoredJob): void {
    setTimeout(() => this.#jobs.delete(job.id), this.opts.retentionMs).unref();
  }

  /** The job, if it exists and `owner` submitted it; another's job is as good as absent. */
  get(id: string, owner: string): StoredJob | undefined {
    const job = this.#jobs.get(id);
    return job?.owner === owner ? job : undefined;
  }

  get size(): number {
    return this.#jobs.size;
  }
}
