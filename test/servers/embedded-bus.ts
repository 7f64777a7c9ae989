// The embedded bus (protocol v1) as a real server of its own: `rehearse bus` from the built CLI
// in a child process, so restart() loses everything it held, as nginx and Faye do in their harnesses.

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, killChild, launchUntilLine } from './process.js';
import type { TargetServer } from './types.js';

const bin = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));

/** Starts `rehearse bus` (run `npm run build` first: the tests' `npm test` does). */
export async function startEmbeddedBus(opts: { faults?: string[] } = {}): Promise<TargetServer> {
  const port = await freePort();
  const args = [bin, 'bus', '--port', String(port), ...(opts.faults ?? []).flatMap((f) => ['--fault', f])];
  const origin = `http://127.0.0.1:${port}`;
  let child: ChildProcess = await launchUntilLine('rehearse bus', process.execPath, args, 'listening on');
  const server: TargetServer = {
    url: origin,
    protocol: 'v1',
    targetOptions: {},
    pid: child.pid!,
    async restart() {
      await killChild('rehearse bus', child);
      child = await launchUntilLine('rehearse bus', process.execPath, args, 'listening on');
      server.pid = child.pid!;
    },
    async stop() {
      await killChild('rehearse bus', child);
    },
    async publishedCount() {
      const res = await request(`${origin}/metrics`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const text = await res.body.text();
      const m = /^rehearse_bus_published_messages_total (\d+)$/m.exec(text);
      if (res.statusCode !== 200 || !m) throw new Error(`/metrics answered ${res.statusCode} without rehearse_bus_published_messages_total`);
      return Number(m[1]);
    },
  };
  return server;
}
