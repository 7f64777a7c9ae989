// `rehearse merge`: the shard results of one rehearsal (replay --shard i/N --out) into one stored
// run with one verdict, printed and exited on exactly as `replay` does (docs/scale-out.md).

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { expandInputs } from '../ingest/inputs.js';
import { ExitCode, InputError, UsageError } from '../core/errors.js';
import { openDatabase } from '../db/open.js';
import { formatSummary } from '../replay/display.js';
import { mergeResults, type LabeledResult } from '../replay/merge-results.js';
import { parseRunResult } from '../replay/result.js';
import { storeRunResult } from '../replay/result-store.js';
import { defaultStartLateLimitMs, summarizeResult } from '../replay/verdict.js';
import type { CommandContext } from './program.js';

/** Files named on the command line; a directory stands for its .json, .jsonl, .log and .txt files. */
export function resultFiles(args: readonly string[]): string[] {
  const files = expandInputs(args, { accept: (name) => /\.(json|jsonl|log|txt)$/.test(name), emptyDirectory: 'no .json or .log files in this directory' });
  for (const file of files) if (!fs.existsSync(file)) throw new InputError('no such file', { file });
  return files;
}

export function addMergeCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('merge')
    .description('Merge the shard results of one rehearsal (replay --shard i/N --out) into one run and one verdict; exit 1 when the SLO fails.')
    .argument('<results...>', "shard result files (replay --out), or logs holding one result line each (kubectl logs), or a directory of them")
    .option('--db <runs.db>', 'database to store the merged run in (created if missing; can be the model database)')
    .option('--max-late <duration>', 'a shard that started its load later than this after --start-at fails the verdict', `${defaultStartLateLimitMs / 1000}s`)
    .option('--json', 'print the RunSummary as one JSON object on stdout, as replay --json does')
    .action((args: string[], flags: { db?: string; maxLate: string; json?: boolean }) => {
      if (!flags.db) throw new UsageError('required: where to store the merged run (e.g. --db runs.db)', '--db');
      const startLateLimitMs = parseDuration(flags.maxLate);
      if (startLateLimitMs === null) throw new UsageError(`expected a duration like 500ms, 2s or 1m, got '${flags.maxLate}'`, '--max-late');
      const inputs: LabeledResult[] = resultFiles(args).map((file) => {
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new InputError(`cannot be read (${(err as Error).message})`, { file });
        }
        return { source: file, result: parseRunResult(text, file) };
      });
      // Every check happens before the database is touched: a refused merge writes nothing.
      const merged = mergeResults(inputs);
      const err = ctx.io.stderr;
      const n = merged.shards.length;
      err.write(`rehearse: merging ${n} shard${n === 1 ? '' : 's'} of one rehearsal (settings ${merged.fingerprint})${merged.startAt ? `, common start ${merged.startAt}` : ''}\n`);
      for (const s of merged.shards.filter((x) => x.startLateMs >= 1000)) {
        err.write(`rehearse: shard ${s.index}/${s.count} (${s.host}) started its load ${(s.startLateMs / 1000).toFixed(1)} s after the common start\n`);
      }
      const db = openDatabase(flags.db);
      try {
        const summary = storeRunResult(db, merged, (run) => summarizeResult(merged, { run, startLateLimitMs }), {
          groupId: `m${merged.fingerprint}${merged.startAt ? `@${merged.startAt}` : ''}`,
          options: { mergedFrom: inputs.map((i) => path.basename(i.source)), settings: merged.settings, startAt: merged.startAt, maxLateMs: startLateLimitMs },
        });
        if (flags.json) ctx.io.stdout.write(`${JSON.stringify(summary)}\n`);
        else ctx.io.stdout.write(formatSummary(summary, `run ${summary.run} in ${flags.db}`));
        if (!summary.pass) ctx.setExitCode(ExitCode.failed);
      } finally {
        db.close();
      }
    });
}
