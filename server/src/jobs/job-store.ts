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
  /** Output bytes kept for all ended jobs together; past it the ones that ended first go. */
  readonly endedKeptBytes: number;
}

/** A kept event and its offset in the job's stream. */
interface Kept {
  readonly offset: number;
  readonly event: JobEvent;
}

/**
 * A submitted job's events, kept for any number of watchers while it runs and `retentionMs`
 * after it ends. It is the job's event sink: it never makes the job wait. Its memory is bounded
 * whatever the job prints: output past `outputKeptBytes` drops the oldest output (watchers are
 * told, with the offsets and bytes gone), and a queue-position update replaces the one before
 * it. The other events (start and end of steps and test cases) are few, and all kept.
 */
export class StoredJob implements JobEventSink {
  /** Output events, oldest first, from index #outputsHead on (the rest were dropped). */
  readonly #outputs: Kept[] = [];
  #outputsHead = 0;
  /** Every other event, in order. */
  readonly #markers: Kept[] = [];
  #next = 0;
  /** The offset of the job's first output event. */
  #firstOutput = Infinity;
  #heldBytes = 0;
  /** Output bytes dropped so far, and the offset just past the newest dropped event. */
  #droppedBytes = 0;
  #droppedBefore = 0;
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

  /** Output bytes it holds now. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** The service failed the job: it ended without `finished`. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  emit(event: JobEvent): boolean {
    const kept = { offset: this.#next++, event };
    if (event.kind === "output") {
      if (this.#firstOutput === Infinity) this.#firstOutput = kept.offset;
      this.#outputs.push(kept);
      this.#heldBytes += event.data.length;
      while (this.#heldBytes > this.outputKeptBytes) this.#dropOldestOutput();
    } else if (event.kind === "queued" && this.#markers.at(-1)?.event.kind === "queued" && this.#markers.length > 1) {
      // Only the newest place in the queue matters (the first queued event, with the id, stays).
      this.#markers[this.#markers.length - 1] = kept;
    } else {
      this.#markers.push(kept);
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
    const oldest = this.#outputs[this.#outputsHead++]!;
    const size = oldest.event.kind === "output" ? oldest.event.data.length : 0;
    this.#heldBytes -= size;
    this.#droppedBytes += size;
    this.#droppedBefore = oldest.offset + 1;
    // Let go of the dropped ones now and then, not at every drop (that would copy the array).
    if (this.#outputsHead > 1024 && this.#outputsHead * 2 > this.#outputs.length) {
      this.#outputs.splice(0, this.#outputsHead);
      this.#outputsHead = 0;
    }
  }

  /** The first kept event at or after `offset`, or undefined when there is none yet. */
  #at(offset: number): Kept | undefined {
    const output = firstAtOrAfter(this.#outputs, this.#outputsHead, offset);
    const marker = firstAtOrAfter(this.#markers, 0, offset);
    if (!output) return marker;
    if (!marker) return output;
    return output.offset < marker.offset ? output : marker;
  }

  /**
   * The job's events from `from` on, then live ones until it ends. A run of output dropped
   * before the watcher got to it comes as one `dropped` item: the offsets skipped, and the bytes
   * of output the job has lost so far. Stops early when `stop` aborts.
   */
  async *watch(from: number, stop: AbortSignal): AsyncIterable<WatchItem> {
    const stopped = new Promise<void>((resolve) => stop.addEventListener("abort", () => resolve(), { once: true }));
    let at = from;
    for (;;) {
      if (at < this.#droppedBefore) {
        // Below #droppedBefore an offset is a kept marker, a replaced queue update (all of them
        // before the first output), or a dropped output.
        const marker = firstAtOrAfter(this.#markers, 0, at);
        if (marker?.offset === at) {
          yield { kind: "event", offset: at++, event: marker.event };
          continue;
        }
        if (at < this.#firstOutput) {
          at = Math.min(marker?.offset ?? Infinity, this.#firstOutput);
          continue;
        }
        const to = Math.min(marker?.offset ?? Infinity, this.#droppedBefore);
        yield { kind: "dropped", fromOffset: at, toOffset: to, bytes: this.#droppedBytes };
        at = to;
        continue;
      }
      const next = this.#at(at);
      if (next) {
        yield { kind: "event", offset: next.offset, event: next.event };
        at = next.offset + 1;
        continue;
      }
      if (this.#ended || stop.aborted) return;
      await Promise.race([this.#changed.promise, stopped]);
    }
  }
}

/** The first of `list` (sorted by offset, from index `head`) at or after `offset`: a binary search. */
function firstAtOrAfter(list: readonly Kept[], head: number, offset: number): Kept | undefined {
  let lo = head;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return list[lo];
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
  /** Ended jobs still kept, the first to end first, and the output bytes they hold together. */
  readonly #ended: StoredJob[] = [];
  #endedBytes = 0;

  constructor(private readonly opts: JobStoreOptions) {}

  /** Keeps a new job; `cancel` stops it. */
  add(id: string, owner: string, cancel: () => void): StoredJob {
    const job = new StoredJob(id, owner, cancel, this.opts.outputKeptBytes);
    this.#jobs.set(id, job);
    return job;
  }

  /**
   * Starts the job's retention clock once it has ended; forgets the jobs that ended first while
   * the ended ones hold more output than `endedKeptBytes` together (the newest always stays).
   */
  ended(job: StoredJob): void {
    this.#ended.push(job);
    this.#endedBytes += job.heldBytes;
    setTimeout(() => this.#forget(job), this.opts.retentionMs).unref();
    while (this.#endedBytes > this.opts.endedKeptBytes && this.#ended.length > 1) this.#forget(this.#ended[0]!);
  }

  #forget(job: StoredJob): void {
    const at = this.#ended.indexOf(job);
    if (at < 0) return; // forgotten already
    this.#ended.splice(at, 1);
    this.#endedBytes -= job.heldBytes;
    this.#jobs.delete(job.id);
  }

  /** The job, if it exists and `owner` submitted it; another's job is as good as absent. */
  get(id: string, owner: string): StoredJob | undefined {
    const job = this.#jobs.get(id);
    return job?.owner === owner ? job : undefined;
  }
}
