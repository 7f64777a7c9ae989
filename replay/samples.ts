// What the run actually sent, kept as bounded uniform samples (reservoir sampling) for the
// report's fidelity view against the model's distributions.

import { seededRandom, type Random } from '../stats/random.js';

export const maxSamples = 100_000;

export class Reservoir {
  private readonly values: number[] = [];
  private seen = 0;
  constructor(
    private readonly rng: Random,
    private readonly capacity = maxSamples,
  ) {}

  add(value: number): void {
    this.seen++;
    if (this.values.length < this.capacity) {
      this.values.push(value);
      return;
    }
    const j = Math.floor(this.rng.next() * this.seen);
    if (j < this.capacity) this.values[j] = value;
  }

  get count(): number {
    return this.seen;
  }

  sorted(): Float64Array {
    const out = Float64Array.from(this.values);
    out.sort();
    return out;
  }
}

/** Names follow db/model-types distributionNames, in the model's units (ms of recorded time, or counts). */
export type SentSampleName =
  | 'learnerPublishInterval'
  | 'proctorControlInterval'
  | 'messagesPerPublish'
  | 'controlTargets'
  | 'sessionDuration'
  | 'proctorSessionDuration'
  | 'rosterSize'
  | 'pollDuration'
  | 'retryGap';

export class SentSamples {
  readonly reservoirs = new Map<SentSampleName, Reservoir>();
  private readonly rng: Random;
  constructor(seed: number) {
    this.rng = seededRandom(`${seed}/sent-samples`);
  }
  add(name: SentSampleName, value: number): void {
    let r = this.reservoirs.get(name);
    if (!r) this.reservoirs.set(name, (r = new Reservoir(this.rng)));
    r.add(value);
  }
}
