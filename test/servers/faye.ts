// A real Faye 1.4 Bayeux server (test/servers/faye-server.mjs) for the bayeux target's tests: a
// child process of this Node, on 127.0.0.1 and a free port, mounted at /faye. restart() kills it
// and starts a fresh one on the same port: every client and subscription it held is gone.

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, killChild, launchUntilLine } from './process.js';
import type { TargetServer } from './types.js';

export interface FayeServerOptions {
  /** Faye's `timeout` (seconds): how long it holds a /meta/connect; it drops a client silent for twice that. */
  timeoutS?: number;
  /** Refuse publishes from unknown clients (`401::Unknown client`), as CometD does. */
  strictPublish?: boolean;
}

const script = fileURLToPath(new URL('./faye-server.mjs', import.meta.url));

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

function launch(args: string[]): Promise<ChildProcess> {
  return launchUntilLine('faye', process.execPath, args, 'faye listening on ');
}

function kill(child: ChildProcess): Promise<void> {
  return killChild('faye', child);
}
