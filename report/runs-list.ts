// `rehearse runs`: one line per stored run, as a typed list (the --json shape) and as a table.

import { readableZones } from '../core/zone.js';
import type { Db } from '../db/open.js';
import type { RunSettings } from '../db/run-types.js';
import { listRuns } from '../db/run-queries.js';
import { capacityByRun } from '../db/capacity-store.js';
import { redactStoredRun } from './redact-run.js';
import { loadRunData, type RunFigures } from './run-figures.js';
import { formatRunShape, runShape } from './run-shape.js';
import { formatMs, formatPercent, formatTable, terminalSafe } from './format.js';

export interface RunListEntry extends Omit<RunSettings, 'seed'> {
  id: number;
  startedAt: string;
  durationS: number;
  p95Ms: number | null;
  /** Fraction 0..1; null for a run that did not finish. */
  withinTarget: number | null;
  lost: number;
  duplicates: number;
  status: string;
  verdict: RunFigures['verdict'];
  /** A capacity search (`rehearse capacity`): the highest multiplier that passed (null: none) and whether the generator bounded it; absent for a replay. */
  capacity?: { multiplier: number | null; generatorBound: boolean };
  /** The --shape terms the run replayed (docs/shape.md); [] for the recorded model. */
  shape: string[];
  /** A run split into shards: `i/N` for one shard's own run, `N merged` for the whole (--workers or `rehearse merge`); absent for a one-process run. */
  shards?: { groupId: string | null; index: number | null; count: number };
}

export function listRunEntries(db: Db): RunListEntry[] {
  const capacities = capacityByRun(db);
  return listRuns(db).map((stored) => {
    const run = redactStoredRun(stored);
    const { figures } = loadRunData(db, run);
    const { id, startedAt, release, target, scale, mode, window, speed } = run;
    return {
      id,
      startedAt,
      ...{ release, target, scale, mode, window, speed },
      durationS: figures.durationS,
      p95Ms: figures.latency.all?.p95 ?? null,
      withinTarget: figures.withinTarget,
      lost: figures.lost,
      duplicates: figures.duplicates,
      status: run.status,
      verdict: figures.verdict,
      ...(capacities.has(id) ? { capacity: { multiplier: capacities.get(id)!.capacity, generatorBound: capacities.get(id)!.generatorBound } } : {}),
      shape: runShape(run),
      ...((stored.shardCount ?? 1) > 1 ? { shards: { groupId: stored.groupId ?? null, index: stored.shardIndex ?? null, count: stored.shardCount ?? 1 } } : {}),
    };
  });
}

export function formatRunsTable(entries: RunListEntry[]): string {
  if (entries.length === 0) return 'No runs stored yet.\n';
  const header = ['id', 'date', 'release', 'target', 'scale', 'mode', 'window', 'duration', 'p95', 'within 2s', 'lost', 'dup', 'verdict'];
  const rows = entries.map((e) => [
    String(e.id),
    e.startedAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, '').slice(0, 16),
    terminalSafe(e.release ?? '-'),
    terminalSafe(e.target),
    `${e.scale}x`,
    terminalSafe(e.mode),
    // Runs stored before window labels were readable say Etc/GMT-2 for UTC+2.
    terminalSafe(readableZones(e.window)),
    `${Math.round(e.durationS)}s`,
    e.p95Ms === null ? '-' : formatMs(e.p95Ms),
    e.withinTarget === null ? '-' : formatPercent(e.withinTarget),
    String(e.lost),
    String(e.duplicates),
    e.verdict.toUpperCase(),
  ]);
  // The shape column appears once any run was a what-if, so plain rehearsals keep their table.
  if (entries.some((e) => e.shape.length > 0)) {
    header.push('shape');
    rows.forEach((r, i) => r.push(terminalSafe(formatRunShape(entries[i]!.shape))));
  }
  // The shards column appears once any run was split (--workers, --shard, merge).
  if (entries.some((e) => e.shards)) {
    header.push('shards');
    rows.forEach((r, i) => r.push(formatShards(entries[i]!.shards)));
  }
  // The capacity column appears once any run was a capacity search; its verdict is the search's answer.
  if (entries.some((e) => e.capacity)) {
    header.push('capacity');
    rows.forEach((r, i) => r.push(formatCapacity(entries[i]!.capacity)));
  }
  return formatTable(header, rows, new Set([0, 4, 7, 8, 9, 10, 11]));
}

/** '2 merged' for a whole split run, '1/4' for one shard's own run, '-' for a one-process run. */
export function formatShards(s: RunListEntry['shards']): string {
  if (!s) return '-';
  return s.index === null ? `${s.count} merged` : `${s.index}/${s.count}`;
}

/** '6.5x', '>= 4x (generator-bound)', 'none', or '-' for a replay. */
export function formatCapacity(c: RunListEntry['capacity']): string {
  if (!c) return '-';
  if (c.multiplier === null) return c.generatorBound ? 'none (generator-bound)' : 'none';
  return c.generatorBound ? `>= ${c.multiplier}x (generator-bound)` : `${c.multiplier}x`;
}
