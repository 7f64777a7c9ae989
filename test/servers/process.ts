// What every real-server harness needs: a free port on 127.0.0.1, a child started in the
// foreground and awaited until it says it listens, and a kill by pid that waits for the exit.

import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';

const startLimitMs = 10_000;
const stopLimitMs = 5_000;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Spawns `command args` and resolves once its stdout contains `ready` (bounded by startLimitMs). */
export function launchUntilLine(name: string, command: string, args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} (${command} ${args.join(' ')}) ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no "${ready}" line within ${startLimitMs} ms`), startLimitMs);
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes(ready)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('exit', (code, signal) => {
      if (!stdout.includes(ready)) fail(`exited (code ${code}, signal ${signal}) before listening`);
    });
    child.once('error', (err) => fail(`could not start: ${err.message}`));
  });
}

/** SIGKILL, as a crash would (a restart must lose everything the server held), then waits for the exit. */
export async function killChild(name: string, child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), stopLimitMs)));
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (outcome === 'late') throw new Error(`${name} pid ${child.pid} did not exit within ${stopLimitMs} ms of SIGKILL`);
}
