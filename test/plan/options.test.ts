import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.js';
import { PlanOptionsError, defaultPlanOptions, resolvePlanOptions } from '../../replay/plan.js';

describe('resolvePlanOptions', () => {
  it('fills the defaults', () => {
    expect(resolvePlanOptions({})).toEqual({ mode: 'sample', scale: 1, window: 'peak', speed: 1, seed: 1, rampMs: 0, shard: { index: 0, count: 1 } });
    expect(resolvePlanOptions()).toEqual(defaultPlanOptions);
  });

  it('parses what the CLI passes as strings, and numbers from the API', () => {
    expect(
      resolvePlanOptions({ mode: 'clone', scale: '7.5', window: '09:30-10:30', duration: '10m', speed: '4', seed: '42', ramp: '2m', shard: '1/4' }),
    ).toEqual({ mode: 'clone', scale: 7.5, window: '09:30-10:30', durationMs: 600_000, speed: 4, seed: 42, rampMs: 120_000, shard: { index: 1, count: 4 } });
    expect(resolvePlanOptions({ scale: 5, duration: 90_000, ramp: 0, shard: { index: 2, count: 3 } })).toMatchObject({
      scale: 5,
      durationMs: 90_000,
      rampMs: 0,
      shard: { index: 2, count: 3 },
    });
    expect(resolvePlanOptions({ window: '2026-09-01T09:00/PT1H' }).window).toBe('2026-09-01T09:00/PT1H');
    expect(resolvePlanOptions({ window: 'all' }).window).toBe('all');
  });

  it('reports every bad option in one UsageError naming each flag', () => {
    let error: unknown;
    try {
      resolvePlanOptions({ mode: 'replay', scale: '-1', window: 'noon', duration: '10', speed: 'fast', seed: '1.5', ramp: 'soon', shard: '4/4' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect(error).toBeInstanceOf(PlanOptionsError);
    const e = error as PlanOptionsError;
    expect(e.code).toBe('REHEARSE_USAGE');
    expect(e.problems.map((p) => p.flag)).toEqual(['--mode', '--scale', '--speed', '--duration', '--ramp', '--seed', '--window', '--shard']);
    for (const flag of ['--mode', '--scale', '--window', '--duration', '--speed', '--seed', '--ramp', '--shard']) expect(e.message).toContain(flag);
    expect(e.message).toMatch(/^8 options are invalid:/);
    expect(e.message).toContain("--duration: expected a duration like 90s, 10m or 1h30m, got '10'");
  });

  it('checks ranges and windows', () => {
    const problems = (raw: Parameters<typeof resolvePlanOptions>[0]): string[] => {
      try {
        resolvePlanOptions(raw);
        return [];
      } catch (err) {
        return (err as PlanOptionsError).problems.map((p) => `${p.flag}: ${p.message}`);
      }
    };
    expect(problems({ scale: 0 })).toEqual(["--scale: expected a positive number, got '0'"]);
    expect(problems({ scale: 5000 })[0]).toMatch(/--scale: 5000 is more than 1000/);
    expect(problems({ window: '10:30-09:30' })).toEqual(['--window: 10:30-09:30: the end must be after the start']);
    expect(problems({ shard: '0/0' })[0]).toMatch(/^--shard/);
    expect(problems({ shard: { index: -1, count: 2 } })[0]).toMatch(/^--shard/);
    expect(problems({ duration: '5m', ramp: '10m' })).toEqual(['--ramp: the ramp (600000 ms) is longer than --duration (300000 ms)']);
    expect(problems({ duration: '0' })).toEqual(['--duration: must be longer than 0']);
    expect(problems({ seed: 0 })).toEqual([]);
  });
});
