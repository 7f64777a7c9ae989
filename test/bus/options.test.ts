import { describe, expect, it } from 'vitest';
import { FaultInjector, mergeFaults, parseFault, parseRetention, resolveBusOptions } from '../../bus/index.js';
import { UsageError } from '../../core/errors.js';

describe('parseFault', () => {
  it('parses every fault of the documented syntax', () => {
    expect(parseFault('drop=0.02')).toEqual({ drop: 0.02 });
    expect(parseFault('dup=0.01')).toEqual({ dup: 0.01 });
    expect(parseFault('error=0.5')).toEqual({ error: 0.5 });
    expect(parseFault('delay=0.03:4s')).toEqual({ delay: { fraction: 0.03, ms: 4000 } });
    expect(parseFault('latency=50ms+20ms')).toEqual({ latency: { fixedMs: 50, jitterMs: 20 } });
    expect(parseFault('latency=1.5s')).toEqual({ latency: { fixedMs: 1500, jitterMs: 0 } });
    expect(parseFault('stall=30s-40s')).toEqual({ stalls: [{ startMs: 30_000, endMs: 40_000 }] });
  });

  it.each([
    ['drop', 'missing "="'],
    ['drop=1.5', 'outside 0-1'],
    ['drop=abc', 'not a fraction'],
    ['dup=-0.1', 'not a fraction'],
    ['delay=0.1', 'delay takes'],
    ['delay=0.1:4', 'not a duration'],
    ['latency=50', 'not a duration'],
    ['latency=5ms+1ms+1ms', 'latency takes'],
    ['stall=40s-30s', 'ends before it starts'],
    ['stall=10s', 'stall takes'],
    ['explode=0.1', 'unknown fault "explode"'],
  ])('rejects %s naming the flag and the spec', (spec, why) => {
    let error: unknown;
    try {
      parseFault(spec);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).flag).toBe('--fault');
    expect((error as Error).message).toContain(`"${spec}"`);
    expect((error as Error).message).toContain(why);
  });

  it('merges specs: later ones replace the same kind, stall windows add up', () => {
    const merged = mergeFaults(
      ['drop=0.02', 'dup=0.01', 'delay=0.03:4s', 'error=0.02', 'latency=50ms+20ms', 'stall=30s-40s', 'drop=0.05', 'stall=1m-2m'].map(parseFault),
    );
    expect(merged).toEqual({
      drop: 0.05,
      dup: 0.01,
      delay: { fraction: 0.03, ms: 4000 },
      error: 0.02,
      latency: { fixedMs: 50, jitterMs: 20 },
      stalls: [
        { startMs: 30_000, endMs: 40_000 },
        { startMs: 60_000, endMs: 120_000 },
      ],
    });
  });
});

describe('parseRetention and durations', () => {
  it('reads counts, ages and both', () => {
    expect(parseRetention('10000')).toEqual({ messages: 10000 });
    expect(parseRetention('5m')).toEqual({ ms: 300_000 });
    expect(parseRetention('500,90s')).toEqual({ messages: 500, ms: 90_000 });
    expect(parseRetention('250ms')).toEqual({ ms: 250 });
    expect(parseRetention('2h')).toEqual({ ms: 7_200_000 });
  });

  it.each(['0', '5q', '', '10,20', '1m,2m', '-5'])('rejects %j naming --retention', (spec) => {
    expect(() => parseRetention(spec)).toThrow(/^--retention: /);
  });
});

describe('resolveBusOptions', () => {
  it('fills the documented defaults', () => {
    const o = resolveBusOptions();
    expect(o).toMatchObject({ host: '127.0.0.1', port: 0, pollTimeoutS: 25, retention: { messages: 10_000, ms: 600_000 }, maxBodyBytes: 1 << 20, seed: 1 });
    expect(o.maxPolls).toBe(Number.POSITIVE_INFINITY);
  });

  it('collects every problem at once, naming each flag', () => {
    let message = '';
    try {
      resolveBusOptions({ port: 70000, pollTimeoutS: -1, maxPolls: 1.5, seed: 0.5 });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const flag of ['--port', '--poll-timeout', '--max-polls', '--seed']) expect(message).toContain(flag);
  });
});

describe('FaultInjector', () => {
  it('gives the same fates for the same seed and different ones for another seed', () => {
    const fates = (seed: number) => {
      const f = new FaultInjector({ drop: 0.3, dup: 0.2, delay: { fraction: 0.1, ms: 5 } }, seed);
      return Array.from({ length: 200 }, () => f.messageFate());
    };
    expect(fates(7)).toEqual(fates(7));
    expect(fates(7)).not.toEqual(fates(8));
  });

  it('keeps one fault stream independent of whether another fault is configured', () => {
    const drops = (config: object) => {
      const f = new FaultInjector(config, 3);
      return Array.from({ length: 300 }, () => f.messageFate().drop);
    };
    expect(drops({ drop: 0.2 })).toEqual(drops({ drop: 0.2, dup: 0.5, delay: { fraction: 0.5, ms: 1 } }));
  });

  it('never duplicates or delays a dropped message, and latency stays within fixed + jitter', () => {
    const f = new FaultInjector({ drop: 0.5, dup: 0.5, delay: { fraction: 0.5, ms: 10 }, latency: { fixedMs: 50, jitterMs: 20 } }, 11);
    for (let i = 0; i < 500; i++) {
      const fate = f.messageFate();
      if (fate.drop) expect(fate).toEqual({ drop: true, dup: false, delayMs: 0 });
      const l = f.answerLatencyMs();
      expect(l).toBeGreaterThanOrEqual(50);
      expect(l).toBeLessThan(70);
    }
  });

  it('knows its stall windows', () => {
    const f = new FaultInjector({ stalls: [{ startMs: 100, endMs: 200 }] }, 1);
    expect([99, 100, 199, 200].map((t) => f.stalled(t))).toEqual([false, true, true, false]);
  });
});
