// What the generator benchmarks share about processes: starting the embedded bus in a process of
// its own, reading a process's CPU and memory from /proc (the same way for rehearse, Locust and
// the bus), following a child's output line by line, and reading Locust's --csv statistics.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user+system CPU seconds of a live process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Resident memory now (VmRSS) and at its peak (VmHWM), in KB. */
export function memoryKb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Open file descriptors of a process (sockets included): what RLIMIT_NOFILE bounds. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/**
 * A process and every live descendant (a CLI with its --workers children), found through the
 * parent pid in /proc/<pid>/stat: a process tree's CPU is the sum of its members'.
 */
export function processTree(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  return tree;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Lines of a child's stream, delivered as they come. */
export function onLines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      each(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** `rehearse bus` (the built CLI) in a process of its own, on a free port; resolves once it listens. */
export async function startBusProcess(): Promise<{ url: string; child: ChildProcess }> {
  const bin = path.resolve('dist/cli/bin.js');
  const child = spawn(process.execPath, [bin, 'bus', '--port', '0', '--poll-timeout', '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bus did not say where it listens within 15 s')), 15_000);
    onLines(child.stdout!, (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`bus exited with ${code}`)));
  });
  return { url, child };
}

/** Stops a child (SIGKILL after 5 s) and waits for it to exit. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

export interface LocustRow {
  count: number;
  failures: number;
  p50: number;
  p95: number;
  p99: number;
}

/** `<prefix>_stats.csv` as written by Locust's --csv: "Type Name" -> counts and percentiles (ms). */
export function readLocustStats(file: string): Map<string, LocustRow> {
  const rows = parseCsv(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
  const out = new Map<string, LocustRow>();
  for (const r of rows) {
    out.set(`${r['Type']} ${r['Name']}`, {
      count: Number(r['Request Count']),
      failures: Number(r['Failure Count']),
      p50: Number(r['50%']),
      p95: Number(r['95%']),
      p99: Number(r['99%']),
    });
  }
  return out;
}
