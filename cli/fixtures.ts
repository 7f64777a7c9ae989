// `rehearse fixtures`: writes a synthetic school day (every format, gzipped copies, mappings and
// ground truth) for tests, demos and benchmarks. Parses flags and calls fixtures/write-day.ts.

import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { schoolDayPresets, type SchoolDayOptions, type SchoolDayPreset } from '../fixtures/school-day.js';
import { writeSchoolDay, type DayFormat } from '../fixtures/write-day.js';
import type { CommandContext } from './program.js';

interface FixturesFlags {
  out: string;
  preset: string;
  seed?: string;
  classes?: string;
  lines?: string;
  days?: string;
  date?: string;
  timezone?: string;
  gzipLevel?: string;
  formats: string;
  gzip: boolean;
}

function integerFlag(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < min) throw new UsageError(`expected an integer >= ${min}, got '${value}'`, flag);
  return n;
}

export function addFixturesCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('fixtures')
    .description('Write a synthetic school day (CSV, JSON lines, nginx log, .gz copies, mappings, truth.json).')
    .requiredOption('--out <dir>', 'directory to write into (created if missing)')
    .option('--preset <name>', `starting point: ${Object.keys(schoolDayPresets).join(' or ')}`, 'small')
    .option('--seed <n>', 'random seed (same seed, same bytes)')
    .option('--classes <n>', 'classes per day')
    .option('--days <n>', 'consecutive days to simulate')
    .option('--lines <n>', 'stop after this many lines, repeating the day on following dates as needed')
    .option('--date <YYYY-MM-DD>', 'first local date')
    .option('--timezone <zone>', 'IANA zone of the school, e.g. Europe/Paris')
    .option('--formats <list>', 'comma-separated formats to write: csv, jsonl, nginx', 'csv,jsonl,nginx')
    .option('--gzip-level <0-9>', 'zlib level of the .gz copies', '1')
    .option('--no-gzip', 'do not write the .gz copies')
    .action(async (flags: FixturesFlags) => {
      if (!(flags.preset in schoolDayPresets))
        throw new UsageError(`unknown preset '${flags.preset}' (use ${Object.keys(schoolDayPresets).join(' or ')})`, '--preset');
      const options: Partial<SchoolDayOptions> = { ...schoolDayPresets[flags.preset as SchoolDayPreset] };
      const seed = integerFlag(flags.seed, '--seed', 0);
      const classes = integerFlag(flags.classes, '--classes', 1);
      const days = integerFlag(flags.days, '--days', 1);
      const lines = integerFlag(flags.lines, '--lines', 1);
      const gzipLevel = integerFlag(flags.gzipLevel, '--gzip-level', 0)!;
      if (gzipLevel > 9) throw new UsageError(`expected 0-9, got '${flags.gzipLevel}'`, '--gzip-level');
      const formats = flags.formats.split(',').map((f) => f.trim()).filter((f) => f.length > 0);
      const unknown = formats.filter((f) => !['csv', 'jsonl', 'nginx'].includes(f));
      if (formats.length === 0 || unknown.length > 0)
        throw new UsageError(`expected some of csv, jsonl, nginx, got '${flags.formats}'`, '--formats');
      if (seed !== undefined) options.seed = seed;
      if (classes !== undefined) options.classes = classes;
      if (days !== undefined) options.days = days;
      if (lines !== undefined) options.maxLines = lines;
      if (flags.date !== undefined) options.date = flags.date;
      if (flags.timezone !== undefined) options.timezone = flags.timezone;

      const started = performance.now();
      const day = await writeSchoolDay(flags.out, options, { gzipLevel, gzip: flags.gzip, formats: formats as DayFormat[] });
      const seconds = (performance.now() - started) / 1000;
      const t = day.truth;
      const fmt = (n: number) => n.toLocaleString('en-US');
      const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      const min = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;
      const out = [
        `Wrote ${fmt(day.lines)} lines x ${day.formats.length} format(s) (${day.formats.join(', ')}${day.gzip ? ', + .gz' : ''}) to ${day.dir} in ${seconds.toFixed(1)} s (${fmt(Math.round(day.lines / Math.max(seconds, 1e-3)))} lines/s)`,
        `  preset ${flags.preset}, seed ${day.options.seed}, ${day.stats.days} day(s) from ${day.options.date} ${day.options.timezone}, ${day.options.classes} classes/day`,
        `  span         ${new Date(t.span.startMs).toISOString()} .. ${new Date(t.span.endMs).toISOString()}`,
        `  actors       ${fmt(t.learners)} learners, ${fmt(t.proctors)} proctors; sessions ${fmt(t.learnerSessions)} learner, ${fmt(t.proctorSessions)} proctor`,
        `  requests     ${fmt(t.publishes)} publishes (${fmt(t.messages)} messages), ${fmt(t.controls)} controls, ${fmt(t.polls)} polls, ${fmt(t.failed)} failed (5xx)`,
        `  publish gap  p50 ${sec(t.learnerPublishInterval.p50)}, p99 ${sec(t.learnerPublishInterval.p99)}; poll p50 ${sec(t.pollDuration.p50)}, max ${sec(t.pollDuration.max)}`,
        `  sessions     p50 ${min(t.sessionDuration.p50)}; roster p50 ${t.rosterSize.p50}, max ${t.rosterSize.max}; retry gap p50 ${sec(t.retryGap.p50)}`,
        `  peak         ${fmt(t.peakConcurrentLearners)} concurrent learners; ${fmt(t.arrivals.peak)} arrivals in the minute of ${new Date(t.arrivals.peakAtMs).toISOString()}`,
        `  files        ${day.formats.map((f) => ({ csv: 'day.csv', jsonl: 'day.jsonl (mapping.jsonl.json)', nginx: 'day.nginx.log (mapping.nginx.json)' })[f]).join(', ')}${day.gzip ? ', .gz of each' : ''}, truth.json`,
      ];
      ctx.io.stdout.write(out.join('\n') + '\n');
    });
}
