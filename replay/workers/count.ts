// How many worker processes `--workers auto` starts: pure, from the plan's peak virtual users and
// the machine's cores.

/**
 * Users one worker holds comfortably: the measured ceiling is about 10,000 per process within a
 * 10 ms schedule lag (BENCHMARKS.md), and one socket per open long-poll against a 20,000 fd limit.
 */
export const usersPerWorker = 8000;

export interface WorkerCount {
  workers: number;
  /** Why, for the terminal. */
  why: string;
  /** Set when the plan wants more processes than the machine has cores. */
  warning?: string;
}

export function chooseWorkerCount(peakUsers: number, cores: number): WorkerCount {
  const wanted = Math.max(1, Math.ceil(peakUsers / usersPerWorker));
  const cap = Math.max(1, cores);
  if (wanted <= cap) {
    return { workers: wanted, why: `${peakUsers} virtual users at peak, up to ${usersPerWorker} per worker` };
  }
  return {
    workers: cap,
    why: `${peakUsers} virtual users at peak would need ${wanted} workers; this machine has ${cap} cores`,
    warning:
      `the plan peaks at ${peakUsers} virtual users, about ${Math.ceil(peakUsers / cap)} per worker on ${cap} cores: ` +
      'expect a generator-bound verdict; split the plan over machines (--shard i/N, docs/scale-out.md)',
  };
}
