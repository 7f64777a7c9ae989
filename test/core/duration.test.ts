import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../core/duration.js';

describe('parseDuration', () => {
  it('reads single and compound units', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2m30s')).toBe(150_000);
    expect(parseDuration('2.5s')).toBe(2500);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('250us')).toBe(0.25);
    expect(parseDuration('0.1s')).toBe(100);
    expect(parseDuration(' 5M ')).toBe(300_000);
    expect(parseDuration('0')).toBe(0);
  });

  it('refuses bare numbers, unknown units and garbage', () => {
    for (const bad of ['', '10', '5x', 'm', '1h 30m', '-5s', '1.2.3s', 'ten minutes']) expect(parseDuration(bad), bad).toBeNull();
  });

  it('formats back to the shortest form that parses to the same value', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(3_660_000)).toBe('1h1m');
    for (const ms of [1000, 61_000, 5_400_000, 86_399_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
