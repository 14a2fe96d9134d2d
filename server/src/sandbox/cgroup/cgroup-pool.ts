import { randomBytes } from "node:crypto";
import type { CgroupDriver, CgroupSource, JobCgroup } from "./types.js";

/**
 * A few job cgroups made ahead of the jobs that will use them, each used once and removed
 * after its job. On this machine's kernel a sandbox started in a cgroup made the moment
 * before runs ~10 ms slower than in one made earlier (bench/results/accuracy.md), so making
 * them ahead takes that off the job's critical path without sharing a cgroup between jobs.
 */
export class CgroupPool implements CgroupSource {
  readonly #driver: CgroupDriver;
  readonly #size: number;
  readonly #spare: Promise<JobCgroup>[] = [];
  #closed = false;

  constructor(driver: CgroupDriver, size: number) {
    this.#driver = driver;
    this.#size = size;
    this.#refill();
  }

  /**
   * A fresh, never-used cgroup: a spare one when there is one, else made now. The pool is
   * refilled once the job has removed it, not now: making cgroups while a sandbox starts
   * slows that start as much as making its own would.
   */
  async take(): Promise<JobCgroup> {
    const cgroup = await (this.#spare.shift() ?? this.#make());
    return {
      ...cgroup,
      remove: async () => {
        await cgroup.remove();
        this.#refill();
      },
    };
  }

  /** Removes the spare cgroups; takes no more. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const spare of this.#spare.splice(0)) await (await spare.catch(() => undefined))?.remove();
  }

  #make(): Promise<JobCgroup> {
    // The job- prefix lets the start-up sweep find spares a crashed predecessor left.
    return this.#driver.create(`job-${randomBytes(8).toString("hex")}`);
  }

  #refill(): void {
    while (!this.#closed && this.#spare.length < this.#size) {
      const made = this.#make();
      made.catch(() => undefined); // a failure surfaces when the spare is taken
      this.#spare.push(made);
    }
  }
}
