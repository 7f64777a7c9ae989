// Seeded pseudo-random numbers. Every pure stage (fixtures, plan, fault injection) takes a
// Random so that the same seed gives the same output, and tests can say so.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/** xoshiro128** seeded through splitmix32: fast, 2^128 period, good equidistribution. */
export function seededRandom(seed: number | string): Random {
  let s = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return {
    next(): number {
      const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
      const t = (b << 9) >>> 0;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      return result / 4294967296;
    },
  };
}

/** A child stream derived from a parent seed and a label, so adding draws in one place does not shift another. */
export function forkRandom(seed: number | string, label: string): Random {
  return seededRandom(`${seed}/${label}`);
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function hashString(text: string): number {
  // FNV-1a, 32 bit
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function randomInt(rng: Random, minInclusive: number, maxInclusive: number): number {
  return minInclusive + Math.floor(rng.next() * (maxInclusive - minInclusive + 1));
}

/** Standard normal by Box-Muller. */
export function randomNormal(rng: Random): number {
  let u = 0;
  while (u === 0) u = rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Lognormal with the given median and shape sigma (of the underlying normal). */
export function randomLognormal(rng: Random, median: number, sigma: number): number {
  return median * Math.exp(sigma * randomNormal(rng));
}

/** Exponential with the given mean (Poisson process gaps). */
export function randomExponential(rng: Random, mean: number): number {
  let u = 0;
  while (u === 0) u = rng.next();
  return -Math.log(u) * mean;
}
