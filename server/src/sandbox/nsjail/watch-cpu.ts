/** A running CPU watch. */
export interface CpuWatch {
  stop(): void;
}

/**
 * Polls a cgroup's CPU usage and calls `onExceeded` once it reaches `limitMs`. The next poll
 * comes sooner as the budget runs out: the job can burn at most `cores` ms of CPU per wall ms,
 * so polling at half the remaining budget divided by the cores never sleeps past the limit by
 * more than the 2 ms floor (times the cores).
 */
export function watchCpu(
  readUsageUs: () => Promise<number>,
  limitMs: number,
  cores: number,
  onExceeded: () => void,
): CpuWatch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poll = async (): Promise<void> => {
    const usedMs = (await readUsageUs().catch(() => 0)) / 1000;
    if (stopped) return;
    if (usedMs >= limitMs) {
      onExceeded();
      return;
    }
    const next = Math.min(100, Math.max(2, (limitMs - usedMs) / (2 * cores)));
    timer = setTimeout(() => void poll(), next);
  };
  timer = setTimeout(() => void poll(), 0);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
