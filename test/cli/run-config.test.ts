import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCredentialHeader, mergeRunConfig, parseRunConfig, RunConfigError, type RunConfig } from '../../cli/run-config.js';
import { createProgram } from '../../cli/program.js';
import type { CliIO } from '../../cli/io.js';

const problemsOf = (text: string): string[] => {
  try {
    parseRunConfig(text, 'rehearse.json');
  } catch (err) {
    expect(err).toBeInstanceOf(RunConfigError);
    expect((err as RunConfigError).code).toBe('REHEARSE_USAGE');
    return (err as RunConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
};

const complete = {
  version: 1,
  description: 'back-to-school surge, 5x',
  db: 'model.db',
  results: 'runs.db',
  target: 'http://127.0.0.1:8080',
  protocol: 'nchan',
  targetOptions: { subPath: '/sub', pubPath: '/pub' },
  headers: { Authorization: 'env:BUS_TOKEN', 'X-Rehearsal': 'surge' },
  slo: 'p95<=2s, lost>15s, duplicates=0',
  plan: { scale: 7.5, mode: 'clone', window: '08:00-08:30', duration: '10m', speed: 2, seed: 3, ramp: '1m', shard: '1/4', day: '2026-09-01', shape: ['rosterSize=60', 'pollTimeout=10s'] },
  pollTimeout: 25,
  backoff: { base: '1s', cap: '30s' },
  publishConnections: 128,
  maxLag: '250ms',
  release: '2.4',
  scrape: { url: 'http://127.0.0.1:8080/metrics', interval: '10s' },
};

describe('parseRunConfig', () => {
  it('turns every key into the raw flag value the command line would give, with its JSON path', () => {
    const text = JSON.stringify(complete);
    const config = parseRunConfig(text, 'rehearse.json');
    expect(config.sha256).toBe(createHash('sha256').update(text).digest('hex'));
    const byAttribute = Object.fromEntries(config.flags.map((f) => [f.attribute, { value: f.value, path: f.path }]));
    expect(byAttribute).toEqual({
      db: { value: 'model.db', path: 'db' },
      results: { value: 'runs.db', path: 'results' },
      target: { value: 'http://127.0.0.1:8080', path: 'target' },
      protocol: { value: 'nchan', path: 'protocol' },
      slo: { value: 'p95<=2s, lost>15s, duplicates=0', path: 'slo' },
      pollTimeout: { value: '25', path: 'pollTimeout' },
      publishConnections: { value: '128', path: 'publishConnections' },
      maxLag: { value: '250ms', path: 'maxLag' },
      release: { value: '2.4', path: 'release' },
      scale: { value: '7.5', path: 'plan.scale' },
      mode: { value: 'clone', path: 'plan.mode' },
      window: { value: '08:00-08:30', path: 'plan.window' },
      duration: { value: '10m', path: 'plan.duration' },
      speed: { value: '2', path: 'plan.speed' },
      seed: { value: '3', path: 'plan.seed' },
      ramp: { value: '1m', path: 'plan.ramp' },
      shard: { value: '1/4', path: 'plan.shard' },
      day: { value: '2026-09-01', path: 'plan.day' },
      shape: { value: ['rosterSize=60', 'pollTimeout=10s'], path: 'plan.shape' },
      backoffBase: { value: '1s', path: 'backoff.base' },
      backoffCap: { value: '30s', path: 'backoff.cap' },
      scrape: { value: 'http://127.0.0.1:8080/metrics', path: 'scrape.url' },
      scrapeInterval: { value: '10s', path: 'scrape.interval' },
      targetOption: { value: ['subPath=/sub', 'pubPath=/pub'], path: 'targetOptions' },
      header: { value: ['Authorization: env:BUS_TOKEN', 'X-Rehearsal: surge'], path: 'headers' },
    });
  });

  it('refuses a shape that is not a list of terms', () => {
    expect(problemsOf('{"version": 1, "plan": {"shape": "rosterSize=60"}}')).toEqual([
      'plan.shape: expected a list of what-if terms like ["learnerPublishInterval*0.5", "rosterSize=60"] (docs/shape.md), got "rosterSize=60"',
    ]);
  });

  it('takes scrape as a plain URL too', () => {
    const config = parseRunConfig('{"version": 1, "scrape": "http://127.0.0.1:9/metrics"}', 'r.json');
    expect(config.flags).toEqual([expect.objectContaining({ attribute: 'scrape', value: 'http://127.0.0.1:9/metrics', path: 'scrape' })]);
  });

  it('lists every problem at once, each with its JSON path', () => {
    const problems = problemsOf(
      JSON.stringify({
        version: 2,
        taget: 'http://x',
        plan: { scale: 'five', speeed: 2, seed: 1.5 },
        backoff: '1s',
        pollTimeout: '25s',
        headers: { 'X-Tenant': 7 },
      }),
    );
    expect(problems).toEqual([
      'version: 2 is not supported; this rehearse reads run configuration version 1',
      expect.stringMatching(/^taget: unknown key \(known: db, results, target, /),
      'pollTimeout: expected a number of seconds, got "25s"',
      'plan.scale: expected a positive number, got "five"',
      'plan.speeed: unknown key (known: scale, mode, window, duration, speed, seed, ramp, shard, day, shape)',
      'plan.seed: expected a non-negative integer, got 1.5',
      'backoff: expected an object with base, cap, got "1s"',
      'headers.X-Tenant: expected a string ("env:VAR" reads $VAR), got number',
    ]);
  });

  it('prefixes the file name in the error message, and names docs/config.md', () => {
    expect(() => parseRunConfig('{"version": 1, "plan": {"scale": "five"}}', 'rehearse.json')).toThrow(
      'rehearse.json: plan.scale: expected a positive number, got "five"\nSee docs/config.md.',
    );
  });

  it('requires the version, refuses non-objects and says where JSON is broken', () => {
    expect(problemsOf('{"target": "http://127.0.0.1:8080"}')).toEqual(['version: required; write "version": 1']);
    expect(problemsOf('[1]')).toEqual([expect.stringContaining('expected a JSON object')]);
    expect(problemsOf('{"version": 1,}')).toEqual([expect.stringMatching(/^not valid JSON \(.+\)$/)]);
  });

  it('refuses a secret in the file: literal credential headers, URLs with credentials, secret-looking target options', () => {
    const problems = problemsOf(
      JSON.stringify({
        version: 1,
        target: 'http://user:hunter2@127.0.0.1:8080',
        scrape: 'http://127.0.0.1:8080/metrics?token=abc',
        headers: { Authorization: 'Bearer abc', Cookie: 'sid=1', 'X-Api-Key': 'k', 'X-Auth-Token': 'env:', 'X-Client-Secret': 'env:SECRET' },
        targetOptions: { apiKey: 'k', subPath: '/sub' },
      }),
    );
    expect(problems).toHaveLength(7);
    expect(problems.join('\n')).not.toMatch(/hunter2|Bearer abc|sid=1|token=abc/);
    expect(problems).toEqual([
      expect.stringMatching(/^target: the URL holds a credential/),
      expect.stringMatching(/^scrape: the URL holds a credential/),
      expect.stringMatching(/^targetOptions\.apiKey: looks like a secret/),
      expect.stringMatching(/^headers\.Authorization: a credential never goes in a run configuration; write "env:VAR"/),
      expect.stringMatching(/^headers\.Cookie: a credential/),
      expect.stringMatching(/^headers\.X-Api-Key: a credential/),
      expect.stringMatching(/^headers\.X-Auth-Token: a credential/),
    ]);
  });

  it('knows which header names carry credentials', () => {
    for (const name of ['Authorization', 'proxy-authorization', 'Cookie', 'X-Api-Key', 'X-Auth-Token', 'Client-Secret']) expect(isCredentialHeader(name), name).toBe(true);
    for (const name of ['X-Tenant', 'Accept', 'X-Rehearsal', 'Keep-Alive']) expect(isCredentialHeader(name), name).toBe(false);
  });
});

describe('mergeRunConfig', () => {
  const config: RunConfig = parseRunConfig(JSON.stringify(complete), 'rehearse.json');

  it('fills in what the command line did not give; what it gave wins', () => {
    const cli = { scale: '9', speed: '1', window: 'peak', header: [], targetOption: [] };
    const sources: Record<string, string> = { scale: 'cli', speed: 'default', window: 'default', header: 'default', targetOption: 'default' };
    const applied = mergeRunConfig(cli, config, 'replay', (a) => sources[a], '/work');
    expect(applied.flags.scale).toBe('9');
    expect(applied.flags.speed).toBe('2');
    expect(applied.flags.window).toBe('08:00-08:30');
    expect(applied.flags.target).toBe('http://127.0.0.1:8080');
    expect(applied.flags.header).toEqual(['Authorization: env:BUS_TOKEN', 'X-Rehearsal: surge']);
    expect(applied.record).toEqual({ path: path.resolve('/work', 'rehearse.json'), sha256: config.sha256 });
  });

  it('merges repeatable flags by name: a --header or --target-option given replaces the file\'s entry of that name only', () => {
    const cli = { header: ['authorization: env:OTHER_TOKEN'], targetOption: ['subPath=/events/sub'] };
    const applied = mergeRunConfig(cli, config, 'replay', () => 'cli');
    expect(applied.flags.header).toEqual(['X-Rehearsal: surge', 'authorization: env:OTHER_TOKEN']);
    expect(applied.flags.targetOption).toEqual(['pubPath=/pub', 'subPath=/events/sub']);
  });

  it('gives each command only the keys whose flags it has', () => {
    const plan = mergeRunConfig({}, config, 'plan', () => undefined);
    expect(Object.keys(plan.flags).sort()).toEqual(['day', 'db', 'duration', 'mode', 'ramp', 'scale', 'seed', 'shape', 'shard', 'speed', 'window']);
    const demo = mergeRunConfig({}, config, 'demo', () => undefined);
    expect(Object.keys(demo.flags).sort()).toEqual(['duration', 'protocol', 'scale', 'shape', 'speed', 'target', 'targetOption']);
  });

  it('says which key of the file a problem is about', () => {
    const applied = mergeRunConfig({ scale: '3' }, config, 'replay', (a) => (a === 'scale' ? 'cli' : 'default'));
    expect(applied.attribute("--speed: expected a positive number, got '0'")).toBe("rehearse.json: plan.speed (--speed): expected a positive number, got '0'");
    expect(applied.attribute('--header Authorization: environment variable BUS_TOKEN is not set')).toBe(
      'rehearse.json: headers.Authorization (--header): environment variable BUS_TOKEN is not set',
    );
    expect(applied.attribute("  --speed: expected a positive number, got '0'")).toBe("  rehearse.json: plan.speed (--speed): expected a positive number, got '0'");
    // From the command line: left as it is.
    expect(applied.attribute("--scale: expected a positive number, got 'x'")).toBe("--scale: expected a positive number, got 'x'");
    // A flag that only shares a prefix is not mistaken for another.
    expect(applied.attribute('--scrape-interval: bad')).toBe('rehearse.json: scrape.interval (--scrape-interval): bad');
  });
});

describe('--config on the command line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-run-config-'));
  const run = async (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    let code = 0;
    const io = {
      stdout: { write: (s: string) => ((stdout += s), true), isTTY: false },
      stderr: { write: (s: string) => ((stderr += s), true), isTTY: false },
      env,
      signals: { on: () => undefined, off: () => undefined },
    } as unknown as CliIO;
    const program = createProgram({ io, setExitCode: (c) => (code = c) });
    try {
      await program.parseAsync(['node', 'rehearse', ...argv]);
    } catch (err) {
      return { code: (err as { exitCode?: number }).exitCode ?? -1, stdout, stderr: `${stderr}${(err as Error).message}` };
    }
    return { code, stdout, stderr };
  };
  const write = (name: string, doc: unknown): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(doc));
    return file;
  };

  it('replay: every problem of the file and the flags in one usage error, values from the file named by key', async () => {
    const file = write('bad.json', { version: 1, db: path.join(dir, 'none.db'), target: 'http://127.0.0.1:1', plan: { scale: 0 }, headers: { Authorization: 'env:NO_SUCH_VAR' } });
    const r = await run(['replay', '--config', file, '--speed', 'fast']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: plan.scale (--scale): expected a positive number, got '0'`);
    expect(r.stderr).toContain(`${file}: headers.Authorization (--header): environment variable NO_SUCH_VAR is not set`);
    expect(r.stderr).toContain("--speed: expected a positive number, got 'fast'");
    expect(r.stderr).not.toContain(`${file}: plan.speed`);
  });

  it('replay without --db anywhere: says where it may come from', async () => {
    const file = write('no-db.json', { version: 1, target: 'http://127.0.0.1:1' });
    const r = await run(['replay', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`required option '--db <file>' not specified (neither on the command line nor as "db" in ${file})`);
  });

  it('plan: the file\'s plan keys are validated by the plan\'s own rules and named by key', async () => {
    const file = write('plan.json', { version: 1, db: path.join(dir, 'none.db'), plan: { window: '25:00-26:00', mode: 'copy' } });
    const r = await run(['plan', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: plan.mode (--mode): expected 'sample' or 'clone', got 'copy'`);
    expect(r.stderr).toContain(`${file}: plan.window (--window):`);
  });

  it('replay: a bad duration from the file is named by key', async () => {
    const file = write('lag.json', { version: 1, db: path.join(dir, 'none.db'), target: 'http://127.0.0.1:1', maxLag: 'soon' });
    const r = await run(['replay', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: maxLag (--max-lag): expected a duration like 500ms, 1s or 2m, got 'soon'`);
  });

  it('a file that cannot be read is a usage error naming it', async () => {
    const r = await run(['plan', '--config', path.join(dir, 'missing.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--config: cannot read ${path.join(dir, 'missing.json')} (ENOENT)`);
  });
});
