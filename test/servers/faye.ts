// A real Faye 1.4 Bayeux server (test/servers/faye-server.mjs) for the bayeux target's tests: a
// child process of this Node, on 127.0.0.1 and a free port, mounted at /faye. restart() kills it
// and starts a fresh one on the same port: every client and subscription it held is gone.

import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { TargetServer } from './types.js';

export interface FayeServerOptions {
  /** Faye's `timeout` (seconds): how long it holds a /meta/connect; it drops a client silent for twice that. */
  timeoutS?: number;
  /** Refuse publishes from unknown clients (`401::Unknown client`), as CometD does. */
  strictPublish?: boolean;
}

const script = fileURLToPath(new URL('./faye-server.mjs', import.meta.url));
const startLimitMs = 10_000;
const stopLimitMs = 5_000;

/** Starts Faye; `stop()` it in afterEach/afterAll. */
export async function startFaye(opts: FayeServerOptions = {}): Promise<TargetServer> {
  const port = await freePort();
  const args = [script, '--port', String(port), '--timeout', String(opts.timeoutS ?? 25), ...(opts.strictPublish ? ['--strict-publish'] : [])];
  const origin = `http://127.0.0.1:${port}`;
  let child = await launch(args);

  const server: TargetServer = {
    url: `${origin}/faye`,
    protocol: 'bayeux',
    targetOptions: {},
    pid: child.pid!,
    async restart() {
      await kill(child);
      child = await launch(args);
      server.pid = child.pid!;
    },
    async stop() {
      await kill(child);
    },
    async publishedCount() {
      const res = await request(`${origin}/stats`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const text = await res.body.text();
      const v = res.statusCode === 200 ? (JSON.parse(text) as { published?: unknown }) : undefined;
      if (typeof v?.published !== 'number') throw new Error(`faye /stats answered ${res.statusCode}: ${text.slice(0, 200)}`);
      return v.published;
    },
  };
  return server;
}

/** Spawns the script and resolves once it prints its listening line (bounded by startLimitMs). */
function launch(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`faye (${process.execPath} ${args.join(' ')}) ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no listening line within ${startLimitMs} ms`), startLimitMs);
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('faye listening on ')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('exit', (code, signal) => {
      if (!stdout.includes('faye listening on ')) fail(`exited (code ${code}, signal ${signal}) before listening`);
    });
    child.once('error', (err) => fail(`could not start: ${err.message}`));
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGKILL, as a crash would: restart() must lose every client Faye held.
  process.kill(child.pid!, 'SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), stopLimitMs)));
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (outcome === 'late') throw new Error(`faye pid ${child.pid} did not exit within ${stopLimitMs} ms of SIGKILL`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
