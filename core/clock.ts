// The one source of time. Pure code never reads a clock; I/O code receives a Clock so
// that tests can drive time by hand instead of sleeping.

export interface Clock {
  /** Wall-clock milliseconds since the epoch (for timestamps people read). */
  nowMs(): number;
  /**
   * Monotonic milliseconds with sub-millisecond precision (for every duration and latency).
   * Shared by all processes on one host, so a publisher and a subscriber in two processes agree.
   */
  monoMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monoMs: () => Number(process.hrtime.bigint()) / 1e6,
};
