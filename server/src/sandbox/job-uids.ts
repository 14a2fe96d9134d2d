import { UnavailableError } from "../errors.js";
import type { Workspace } from "./scratch.js";

/**
 * The uids jobs run as in their workspace holder's namespace. With `count` subordinate uids of
 * the service user's: 1 up to `count`, taken in turn, never one a workspace still holds, so
 * that jobs running at once are always different host uids, however long one runs or a warm
 * sandbox waits for its job. With none: 0, the service's own uid, for every job.
 */
export class JobUids {
  #last = 0;
  readonly #held = new Set<number>();

  constructor(private readonly count: number) {}

  take(): number {
    if (this.count === 0) return 0;
    for (let tried = 0; tried < this.count; tried++) {
      this.#last = (this.#last % this.count) + 1;
      if (!this.#held.has(this.#last)) {
        this.#held.add(this.#last);
        return this.#last;
      }
    }
    throw new UnavailableError(
      `all ${this.count} subordinate uids are held by jobs, warm sandboxes or clean-ups still running; try again later`,
    );
  }

  release(uid: number): void {
    this.#held.delete(uid);
  }

  /**
   * A workspace made by `make` for a uid taken now; the uid is given back once the workspace
   * is removed (its holder, and every process of the job with it, gone), or if making it fails.
   */
  async workspace(make: (uid: number) => Promise<Workspace>): Promise<Workspace> {
    const uid = this.take();
    try {
      const made = await make(uid);
      const remove = async (): Promise<void> => {
        try {
          await made.remove();
        } finally {
          this.release(uid);
        }
      };
      return { ...made, remove };
    } catch (err) {
      this.release(uid);
      throw err;
    }
  }
}
