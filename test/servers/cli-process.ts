// The built CLI (`dist/cli/bin.js`, `npm run build` first) as a child process that a test watches
// while it runs: its output so far, and its exit. Shared by the tests that signal, kill or wait on
// a running rehearse.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const bin = path.resolve('dist/cli/bin.js');

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

/** Starts `rehearse args...` with `env` added to this process's; `children` collects it for cleanup. */
export function spawnCli(args: string[], children: ChildProcess[], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, atMs: Date.now() })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Polls `condition` every 50 ms for at most `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < end && i < 10_000; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
