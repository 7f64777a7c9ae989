// `rehearse runs`: the stored runs, one line each (or --json).

import type { Command } from 'commander';
import { formatRunsTable, listRunEntries } from '../report/runs-list.js';
import { openResults } from '../report/results-db.js';
import type { CommandContext } from './program.js';

export function addRunsCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('runs')
    .description('List the stored rehearsal runs: id, date, release, target, scale, mode, window, duration, p95, within-target %, lost, duplicates, verdict.')
    .option('--results <file>', 'database the runs are stored in (default: --db)')
    .option('--db <file>', 'model database; holds the runs too when --results is not given')
    .option('--json', 'print the list as JSON (see docs/report.md)')
    .action((opts: { results?: string; db?: string; json?: boolean }) => {
      const results = openResults(opts);
      try {
        const entries = listRunEntries(results.db);
        ctx.io.stdout.write(opts.json ? `${JSON.stringify({ runs: entries }, null, 2)}\n` : formatRunsTable(entries));
      } finally {
        results.close();
      }
    });
}
