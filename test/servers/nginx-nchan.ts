// A real nginx + Nchan (Debian's nginx and libnginx-mod-nchan) for the nchan target's tests: its
// own conf, pid, logs and temp paths in a temp dir, in the foreground as one process (master_process
// off), on 127.0.0.1 and a free port. The conf is the one docs/targets.md ("## nchan") asks for.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { freePort, killChild } from './process.js';
import type { TargetServer } from './types.js';

export const nginxBinary = '/usr/sbin/nginx';
export const nchanModule = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/** Whether this machine can run the Nchan tests (CI installs both packages: .ci/run). */
export const nchanAvailable = fs.existsSync(nginxBinary) && fs.existsSync(nchanModule);

export interface NchanServerOptions {
  /** nchan_subscriber_first_message; Nchan's default is oldest. */
  firstMessage?: 'oldest' | 'newest';
  /** nchan_subscriber_timeout in seconds: a long-poll with nothing gets 408 after this long. */
  timeoutS?: number;
  /** nchan_message_buffer_length: messages kept per channel. */
  bufferLength?: number;
}

const startLimitMs = 10_000;

/** Starts nginx with Nchan; `stop()` it in afterEach/afterAll. */
export async function startNchan(opts: NchanServerOptions = {}): Promise<TargetServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-nchan-'));
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nchanConf(dir, port, opts));
  const origin = `http://127.0.0.1:${port}`;
  let child = await launch(dir, conf, origin);

  const server: TargetServer = {
    url: origin,
    protocol: 'nchan',
    targetOptions: { pubPath: '/pub', subPath: '/sub' },
    pid: child.pid!,
    async restart() {
      await kill(child);
      child = await launch(dir, conf, origin);
      server.pid = child.pid!;
    },
    async stop() {
      await kill(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async publishedCount() {
      const res = await request(`${origin}/nchan_stub_status`);
      const text = await res.body.text();
      const m = /^total published messages: (\d+)$/m.exec(text);
      if (res.statusCode !== 200 || !m) throw new Error(`nchan_stub_status answered ${res.statusCode}: ${text.slice(0, 200)}`);
      return Number(m[1]);
    },
  };
  return server;
}

/**
 * The conf rehearse expects of an Nchan target (docs/targets.md), with everything nginx writes
 * kept inside `dir`. One process (master_process off; Nchan supports single-process mode) so
 * that killing the pid leaves nothing behind: no orphaned worker holding the port.
 */
export function nchanConf(dir: string, port: number, opts: NchanServerOptions = {}): string {
  const temp = (name: string) => path.join(dir, 'temp', name);
  for (const name of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(temp(name), { recursive: true });
  return `load_module ${nchanModule};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;

events {
  worker_connections 25000;
}

http {
  access_log ${path.join(dir, 'access.log')};
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  keepalive_requests 100000;
  # A poll of 255 channels carries them all in its URL and a 255-tag Etag.
  large_client_header_buffers 4 32k;

  server {
    listen 127.0.0.1:${port};

    location ~ ^/pub/([^/]+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length ${opts.bufferLength ?? 1000};
      nchan_message_timeout 5m;
    }

    location ~ ^/sub/([^/]+)$ {
      nchan_subscriber longpoll;
      nchan_channel_id $1;
      nchan_channel_id_split_delimiter ",";
      nchan_max_channel_id_length 32768;
      nchan_subscriber_first_message ${opts.firstMessage ?? 'oldest'};
      nchan_subscriber_timeout ${opts.timeoutS ?? 30};
    }

    location = /nchan_stub_status {
      nchan_stub_status;
    }
  }
}
`;
}

async function launch(dir: string, conf: string, origin: string): Promise<ChildProcess> {
  // -e: nginx opens its error log before reading the conf; keep even that one inside dir.
  const child = spawn(nginxBinary, ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  // nginx outlives a test process that dies without stop() (it is not tied to its parent): kill it
  // on the way out too ('exit' runs on a normal exit and on an uncaught exception).
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  child.once('exit', () => process.removeListener('exit', onExit));
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + startLimitMs;
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const res = await request(`${origin}/nchan_stub_status`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.text();
      if (res.statusCode === 200) return child;
    } catch {
      // not listening yet
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
  }
  await kill(child);
  const log = readIfExists(path.join(dir, 'error.log'));
  throw new Error(`nginx with Nchan did not answer on ${origin} within ${startLimitMs} ms (conf ${conf}):\n${stderr}${log}`);
}

function kill(child: ChildProcess): Promise<void> {
  return killChild('nginx', child);
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}
