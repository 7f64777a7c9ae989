// The scale-out flags of `replay` (docs/scale-out.md): --workers N|auto, --shard auto/N (the index
// from JOB_COMPLETION_INDEX, as Kubernetes Indexed Jobs set it), --start-at and --out.

import fs from 'node:fs';
import path from 'node:path';
import { DateTime } from 'luxon';
import { UsageError } from '../core/errors.js';
import { forTransport, type RunResult } from '../replay/result.js';
import type { Output } from './io.js';

/** `--shard auto/N` with the index from the environment; any other value unchanged. */
export function resolveShardFlag(value: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*auto\s*\/\s*(\d+)\s*$/.exec(value);
  if (!m) return value;
  const raw = env.JOB_COMPLETION_INDEX;
  if (raw === undefined || raw.trim() === '') {
    throw new UsageError(`${value} takes the shard index from JOB_COMPLETION_INDEX, which is not set (Kubernetes sets it in Indexed Jobs); outside one give the index, e.g. --shard 0/${m[1]}`, '--shard');
  }
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`JOB_COMPLETION_INDEX is '${raw}', not a shard index (0, 1, 2...)`, '--shard');
  return `${raw.trim()}/${m[1]}`;
}

/** --start-at: an ISO time with its zone (Z or an offset), so every machine reads the same instant. */
export function parseStartAt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/(?:Z|[+-]\d{2}:?\d{2})$/i.test(value.trim())) {
    throw new UsageError(`'${value}' has no zone: give an ISO time with Z or an offset, e.g. ${DateTime.utc().plus({ minutes: 5 }).startOf('minute').toISO({ suppressMilliseconds: true })}`, '--start-at');
  }
  const t = DateTime.fromISO(value.trim(), { setZone: true });
  if (!t.isValid) throw new UsageError(`'${value}' is not an ISO 8601 time (${t.invalidExplanation ?? t.invalidReason}), e.g. 2026-12-01T18:00:00Z`, '--start-at');
  return t.toMillis();
}

export type WorkersFlag = number | 'auto' | undefined;

export function parseWorkersFlag(value: string | undefined): WorkersFlag {
  if (value === undefined) return undefined;
  if (value.trim() === 'auto') return 'auto';
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < 1 || n > 64) throw new UsageError(`expected a number of processes from 1 to 64, or auto, got '${value}'`, '--workers');
  return n;
}

/** --out must be writable before any load is sent: a result that cannot be saved is a rehearsal lost. */
export function checkOutPath(out: string | undefined): void {
  if (out === undefined || out === '-') return;
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir)) throw new UsageError(`${dir} does not exist`, '--out');
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new UsageError(`${dir} is not writable`, '--out');
  }
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`${out} is a directory; name a file, e.g. ${path.join(out, 'shard-0.json')}`, '--out');
}

/**
 * Writes a result where --out says: one JSON line on stdout ('-'), or a file written whole
 * (a temporary file renamed over it), so a merge never reads half a result.
 */
export function writeResult(out: string, result: RunResult, stdout: Output): string {
  const line = `${JSON.stringify(forTransport(result))}\n`;
  if (out === '-') {
    stdout.write(line);
    return 'stdout';
  }
  const tmp = `${out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, line);
  fs.renameSync(tmp, out);
  return out;
}
