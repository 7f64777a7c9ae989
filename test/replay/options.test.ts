import { describe, expect, it } from 'vitest';
import { pollLimitMs } from '../../replay/target/http.js';
import { replayDefaults, resolveReplayOptions } from '../../replay/options.js';

const run = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 3, modelFingerprint: 'test' };

describe('replay options', () => {
  it("long-polls like the platform's clients (25 s) and lets undici wait longer than that", () => {
    const o = resolveReplayOptions({ target: 'http://127.0.0.1:1', run });
    expect(o.pollTimeoutS).toBe(25);
    expect(replayDefaults.pollTimeoutS).toBe(25);
    // headersTimeout and bodyTimeout of the poll pools: a silent poll must not time out on our side first.
    expect(pollLimitMs(o.pollTimeoutS)).toBeGreaterThan(o.pollTimeoutS * 1000);
  });

  it('names API-only options by their field, not by a flag that does not exist', () => {
    expect(() => resolveReplayOptions({ target: 'http://127.0.0.1:1', run, requestTimeoutMs: -1 })).toThrow(/requestTimeoutMs: /);
  });
});
