// `rehearse ingest`: parses flags, shows progress on a TTY and a one-screen summary; the work
// is ingest/ingest.ts (ingestFiles, dryRun).

import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { dryRun, ingestFilesInWorker, rebuildModelIn, parseMaxErrors, type DryRunResult, type FileSummary, type IngestProgress, type IngestSummary } from '../ingest/ingest.js';
import { parseRoleOverride } from '../ingest/mapping.js';
import { formatInZone } from '../ingest/time.js';
import { zoneLabel } from '../core/zone.js';
import type { CommandContext } from './program.js';

interface IngestFlags {
  db?: string;
  mapping?: string;
  force?: boolean;
  keepRequests?: boolean;
  rebuild?: boolean;
  keepIds?: boolean;
  keyFile?: string;
  maxErrors?: string;
  dryRun?: boolean;
  lines: string;
  roleOverride: string[];
  json?: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function formatProgress(p: IngestProgress): string {
  if (p.filesTotal !== undefined && p.filesTotal > 1) {
    // A season: where we are over all files, and when all of them will be done.
    const s = (p.allElapsedMs ?? 0) / 1000;
    const fraction = p.allTotalBytes ? (p.allBytes ?? 0) / p.allTotalBytes : 0;
    const eta = fraction > 0.01 ? Math.max(0, s / fraction - s) : Number.NaN;
    const rate = s > 0 ? (p.allLines ?? 0) / s : 0;
    return `${p.filesDone ?? 0}/${p.filesTotal} files done, now ${p.file}: ${mb(p.allBytes ?? 0)} / ${mb(p.allTotalBytes ?? 0)} (${(fraction * 100).toFixed(0)}%)  ${p.allLines ?? 0} lines  ${Math.round(rate)} lines/s  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '-'}`;
  }
  const s = p.elapsedMs / 1000;
  const rate = s > 0 ? p.lines / s : 0;
  const fraction = p.totalBytes > 0 ? p.bytes / p.totalBytes : 0;
  const eta = fraction > 0.01 ? Math.max(0, s / fraction - s) : Number.NaN;
  return `${p.file}: ${mb(p.bytes)} / ${mb(p.totalBytes)} (${(fraction * 100).toFixed(0)}%)  ${p.lines} lines  ${Math.round(rate)} lines/s  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '-'}`;
}

function fileLine(f: FileSummary): string {
  if (f.status === 'skipped') return `${f.path}: already ingested (same content, sha256 ${f.sha256.slice(0, 12)}); skipped. --force re-ingests it.`;
  const rate = f.elapsedMs > 0 ? Math.round(f.lines / (f.elapsedMs / 1000)) : f.lines;
  const out = [
    `${f.path} (${f.format}${f.gzip ? ', gzip' : ''}): ${f.lines} lines, ${f.accepted} accepted, ${f.rejected} rejected in ${(f.elapsedMs / 1000).toFixed(1)} s (${rate} lines/s)`,
  ];
  for (const [reason, n] of Object.entries(f.reasons).sort((a, b) => b[1] - a[1])) out.push(`  rejected ${n}: ${reason}`);
  for (const e of f.examples) out.push(`    ${e}`);
  for (const w of f.warnings ?? []) out.push(`  warning: ${w}`);
  return out.join('\n');
}

export function formatIngestSummary(s: IngestSummary, db: string): string {
  // Many files (a season): one line for the files read cleanly, every file with something to say.
  const many = s.files.length > 5;
  const quiet = (f: FileSummary): boolean => f.status === 'ingested' && f.rejected === 0 && !(f.warnings?.length);
  const shown = many ? s.files.filter((f) => !quiet(f)) : s.files;
  const lines = shown.map(fileLine);
  if (many) {
    const ok = s.files.filter(quiet);
    const total = ok.reduce((n, f) => n + f.lines, 0);
    const secs = s.elapsedMs / 1000;
    lines.unshift(`${ok.length} of ${s.files.length} files ingested cleanly: ${total} lines in ${secs.toFixed(1)} s (${Math.round(total / Math.max(secs, 1e-3))} lines/s)`);
  }
  if (s.zone) {
    // The zone as people read it, and where it came from (the mapping, or inferred from the offsets).
    lines.push(`zone ${s.zone.label ?? s.zone.timezone}: ${s.zone.note}`);
    if (s.zone.warning) lines.push(`  warning: ${s.zone.warning}`);
  }
  return (
    lines.join('\n') +
    `\n${db}: ${s.requests} requests in the model; model updated in ${(s.rebuildMs / 1000).toFixed(1)} s. \`rehearse model --db ${db}\` shows it.\n`
  );
}

/** The first and last times a dry run shows (the zone is labelled over them). */
function shownSpan(r: DryRunResult): [number, number] {
  const starts = r.lines.flatMap((l) => (l.record ? [l.record.startMs] : []));
  return starts.length > 0 ? [Math.min(...starts), Math.max(...starts)] : [Date.now(), Date.now()];
}

function formatDryRun(results: DryRunResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`${r.path} (${r.format}), times shown in ${zoneLabel(r.timezone, ...shownSpan(r))}:`);
    for (const l of r.lines) {
      if (l.reject !== undefined) {
        out.push(`  ${r.path}:${l.line}: REJECTED ${l.reject}`);
        continue;
      }
      const x = l.record!;
      out.push(
        `  ${l.line}: ${formatInZone(x.startMs, r.timezone)} actor=${x.actor} op=${x.op} endpoint=${x.endpoint} topics=[${x.topics.join(', ')}] status=${x.status} duration=${x.durationMs}ms messages=${x.messages}` +
          `${x.session !== undefined ? ` session=${x.session}` : ''}${x.bytes !== undefined ? ` bytes=${x.bytes}` : ''}`,
      );
    }
  }
  out.push('(dry run: nothing was written)');
  return out.join('\n') + '\n';
}

export function addIngestCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('ingest')
    .description('Turn access logs (CSV, TSV, JSON lines, nginx log_format; .gz too) into a behaviour model in SQLite.')
    .argument('[files...]', "log files, directories of them or a quoted glob ('logs/*.csv.gz'), ingested in time order (rotated or daily files give one model)")
    .option('--db <model.db>', 'the model database (created if missing)')
    .option('--mapping <file.json>', 'how the logs map to canonical fields (docs/mapping.md); not needed for rehearse\'s own CSV')
    .option('--force', 're-ingest files whose content was ingested before (needs a database ingested with --keep-requests)')
    .option('--keep-requests', 'also store one row per request (about 5x the size): lets --force replace a file and --rebuild start over')
    .option('--rebuild', 'rebuild the model from the requests the database already holds (after an interrupted ingest); no files needed')
    .option('--keep-ids', 'store actor, session and topic ids as they are instead of keyed pseudonyms')
    .option('--key-file <file>', 'the pseudonym key, kept outside the database (default: $REHEARSE_PSEUDONYM_KEY, else ~/.config/rehearse/pseudonym.key, created with mode 0600)')
    .option('--max-errors <n|p%>', 'rejected lines allowed per file before it is aborted', '1%')
    .option('--role-override <role=regex>', 'assign a role by actor id: proctor=<regex> or learner=<regex> (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--dry-run', 'parse the first lines with the mapping and show each record; write nothing')
    .option('--lines <n>', 'lines a dry run shows', '20')
    .option('--json', 'print the summary as JSON')
    .action(async (files: string[], flags: IngestFlags) => {
      parseMaxErrors(flags.maxErrors);
      if (flags.rebuild && files.length === 0) {
        if (!flags.db) throw new UsageError('required: the model database to rebuild (e.g. --db model.db)', '--db');
        const r = rebuildModelIn(flags.db);
        ctx.io.stdout.write(
          flags.json ? JSON.stringify({ requests: r.requests, rebuildMs: r.ms }, null, 2) + '\n' : `${flags.db}: model rebuilt from ${r.requests} requests in ${(r.ms / 1000).toFixed(1)} s.\n`,
        );
        return;
      }
      if (files.length === 0) throw new UsageError('name one or more log files to ingest (or --rebuild to rebuild the model a database holds)', '<files...>');
      const roleOverrides = flags.roleOverride.map(parseRoleOverride);
      if (flags.dryRun) {
        const lines = Number(flags.lines);
        if (!Number.isInteger(lines) || lines < 1) throw new UsageError(`"${flags.lines}" is not a positive whole number`, '--lines');
        const results = await dryRun({ files, mapping: flags.mapping, lines });
        ctx.io.stdout.write(flags.json ? JSON.stringify(results, null, 2) + '\n' : formatDryRun(results));
        return;
      }
      if (!flags.db) throw new UsageError('required: where to write the model (e.g. --db model.db)', '--db');
      const tty = ctx.io.stderr.isTTY === true && !flags.json;
      let drawn = false;
      const summary = await ingestFilesInWorker({
        files,
        db: flags.db,
        mapping: flags.mapping,
        force: flags.force ?? false,
        keepRequests: flags.keepRequests ?? false,
        keepIds: flags.keepIds ?? false,
        ...(flags.keyFile !== undefined ? { keyFile: flags.keyFile } : {}),
        maxErrors: flags.maxErrors,
        roleOverrides,
        ...(tty
          ? {
              onProgress: (p: IngestProgress) => {
                drawn = true;
                ctx.io.stderr.write(`\r\x1b[K${formatProgress(p)}`);
              },
            }
          : {}),
      }).finally(() => {
        if (drawn) ctx.io.stderr.write('\r\x1b[K');
      });
      ctx.io.stdout.write(flags.json ? JSON.stringify(summary, null, 2) + '\n' : formatIngestSummary(summary, flags.db));
    });
}
