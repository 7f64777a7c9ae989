// `rehearse report <run> [--vs <run>] [-o file]`: one self-contained HTML file.

import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { formatWarnings } from '../report/compare.js';
import { writeReport } from '../report/write-report.js';
import type { CommandContext } from './program.js';

export function addReportCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('report')
    .description('Write one self-contained HTML report (works offline) of a run, optionally overlaid with another.')
    .argument('<run>', 'the run: id, release label, latest or previous')
    .option('--vs <run>', 'a second run to overlay and compare with')
    .option('-o, --out <file>', 'HTML file to write (default: rehearse-run-<id>.html)')
    .option('--results <file>', 'database the runs are stored in (default: --db)')
    .option('--db <file>', 'model database (for fidelity); holds the runs too when --results is not given')
    .action((run: string, opts: { vs?: string; out?: string; results?: string; db?: string }) => {
      const written = writeReport({
        run,
        vs: opts.vs,
        out: opts.out,
        results: opts.results,
        db: opts.db,
        now: new Date(systemClock.nowMs()),
      });
      const comparison = written.data.comparison;
      if (comparison) ctx.io.stderr.write(formatWarnings(comparison, { color: Boolean(ctx.io.stderr.isTTY) && !ctx.io.env.NO_COLOR }));
      ctx.io.stdout.write(`${written.summary}\nWrote ${written.path}\n`);
    });
}
