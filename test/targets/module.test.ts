import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { RehearseError, UsageError } from '../../core/errors.js';
import type { ProbeReport } from '../../replay/probe.js';
import { createTarget, loadProtocol, type TargetSpec } from '../../replay/target/index.js';

// The protocol-module example (examples/signed-bus/) as a user would run it: through
// `rehearse probe --protocol FILE.mjs`, and at the Target API level, against its
// signature-checking proxy in front of the embedded bus.

const moduleFile = 'examples/signed-bus/signed-bus.mjs';
const secretEnv = 'REHEARSE_TEST_SIGNING_SECRET';
const secret = 'let-me-in-7f3a';

interface SignedProxy {
  url: string;
  close(): Promise<void>;
}
type StartSignedProxy = (o: { upstream: string; keys: Record<string, string> }) => Promise<SignedProxy>;

let bus: RunningBus;
let proxy: SignedProxy;
let dir: string;

beforeAll(async () => {
  bus = await startBus({ port: 0 });
  // The example is plain JavaScript outside the TypeScript project: imported by URL, typed here.
  const server = (await import(pathToFileURL(path.resolve('examples/signed-bus/server.mjs')).href)) as { startSignedProxy: StartSignedProxy };
  proxy = await server.startSignedProxy({ upstream: bus.url, keys: { rehearse: secret } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-module-'));
});
afterAll(async () => {
  await proxy.close();
  await bus.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[secretEnv];
});

function spec(over: Partial<TargetSpec> = {}): TargetSpec {
  return { protocol: moduleFile, url: proxy.url, headers: {}, pollTimeoutS: 2, requestTimeoutMs: 5000, publishConnections: 1, options: { 'secret-env': secretEnv }, ...over };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
  const code = await main(['node', 'rehearse', ...args], io);
  return { code, out: io.stdout.text(), err: io.stderr.text() };
}

describe('examples/signed-bus through rehearse probe', () => {
  it('passes with the right secret, and the proxy really checks signatures (v1 unsigned gets 401)', async () => {
    process.env[secretEnv] = secret;
    const r = await cli(['probe', '--target', proxy.url, '--protocol', moduleFile, '--target-option', `secret-env=${secretEnv}`, '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as ProbeReport;
    expect(report).toMatchObject({ ok: true, protocol: 'signed-v1' });
    expect(report.steps.map((s) => s.trace[0]?.status)).toEqual([undefined, 200, 200]);
    expect(r.out).not.toContain(secret);

    const unsigned = await cli(['probe', '--target', proxy.url, '--protocol', 'v1', '--timeout', '2s']);
    expect(unsigned.code).toBe(1);
    expect(unsigned.out).toContain('HTTP 401');
  });

  it('a wrong secret: 403, the auth hint naming the module, exit 1', async () => {
    process.env[secretEnv] = 'not-the-secret';
    const r = await cli(['probe', '--target', proxy.url, '--protocol', moduleFile, '--target-option', `secret-env=${secretEnv}`]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('HTTP 403');
    expect(r.out).toContain(`hint: the bus refused signed-v1's requests: check the credentials the module ${moduleFile} sends`);
  });

  it('an unset secret variable or an unknown option stops before anything is sent (exit 2)', async () => {
    const unset = await cli(['probe', '--target', proxy.url, '--protocol', moduleFile, '--target-option', `secret-env=${secretEnv}`]);
    expect(unset.code).toBe(2);
    expect(unset.err).toContain(`environment variable ${secretEnv} is not set`);
    const typo = await cli(['probe', '--target', proxy.url, '--protocol', moduleFile, '--target-option', 'secret=x']);
    expect(typo.code).toBe(2);
    expect(typo.err).toContain("protocol module:signed-v1 has no option 'secret' (known: secret-env, key-id)");
  });
});

describe('examples/signed-bus at the Target API level', () => {
  it('round trip: published message comes back identified, on its topic', async () => {
    process.env[secretEnv] = secret;
    const target = await createTarget(spec());
    try {
      expect(target.protocol).toBe('signed-v1');
      const topic = 'mod1.c1.l1.events';
      const session = target.subscribe('proctor-1', [topic]);
      const signal = new AbortController().signal;
      expect(await session.open(signal)).toEqual({ kind: 'ok' });
      expect(await target.publish('learner-1', [{ id: 41, topic, sentMs: 1, from: 'learner-1' }, { id: 42, topic, sentMs: 2, from: 'learner-1' }], signal)).toEqual({ kind: 'ok' });
      const got = await session.poll(signal);
      expect(got).toEqual({
        kind: 'messages',
        messages: [
          { id: 41, topic, deliveredOn: topic },
          { id: 42, topic, deliveredOn: topic },
        ],
        unidentified: 0,
      });
      await session.close();
    } finally {
      await target.close();
    }
  });

  it('a wrong secret: publish and poll are fatal 403 outcomes, never thrown', async () => {
    process.env[secretEnv] = 'wrong';
    const target = await createTarget(spec());
    try {
      const signal = new AbortController().signal;
      const published = await target.publish('learner-1', [{ id: 1, topic: 'mod2.events', sentMs: 1, from: 'learner-1' }], signal);
      expect(published).toMatchObject({ kind: 'fatal', status: 403, stored: 0 });
      const polled = await target.subscribe('proctor-1', ['mod2.events']).poll(signal);
      expect(polled).toMatchObject({ kind: 'fatal', status: 403 });
    } finally {
      await target.close();
    }
  });

  it('an unset secret variable: REHEARSE_TARGET naming the variable', async () => {
    const err = await createTarget(spec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RehearseError);
    expect((err as RehearseError).code).toBe('REHEARSE_TARGET');
    expect((err as RehearseError).message).toContain(`environment variable ${secretEnv} is not set`);
  });
});

describe('a module file that exports nothing usable', () => {
  it('gets one UsageError naming the file, from the library and from the CLI', async () => {
    const file = path.join(dir, 'not-a-protocol.mjs');
    fs.writeFileSync(file, 'export const greeting = "hello";\n');
    const err = await loadProtocol(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain(`${file} must export default { protocol, create(ctx) }`);
    expect((err as UsageError).message).toContain('it exports greeting');

    const r = await cli(['probe', '--target', proxy.url, '--protocol', file]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(file);
  });
});
