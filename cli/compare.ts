// `rehearse compare <runA> <runB>`: side by side, changes and directions, --fail-on exit code.

import type { Command } from 'commander';
import { ExitCode, UsageError } from '../core/errors.js';
import { compareRunsByName, formatComparison, formatWarnings } from '../report/compare.js';
import { defaultLatencyFloorMs } from '../report/noise.js';
import { openResults } from '../report/results-db.js';
import type { CommandContext } from './program.js';

const failOnHelp = `
Runs are named by id (7 or #7), release label (its latest run), release:<label>, latest or previous.

--fail-on rules: comma-separated clauses <metric><+|-><amount>[unit], each limiting how far a
metric may move from run A to run B; any clause exceeded makes the exit code 1.
  +N / -N     limits a rise / a fall
  N%          relative to run A's value (from 0, any rise exceeds it)
  Npt         percentage points, for fractions (withinTarget)
  Nms, Ns     for latencies (a bare number is ms); a bare number is absolute for counts
Examples: "p95+10%, lost+0, withinTarget-1pt", "control.p99+250ms, errors+5%"

Noise: latency percentiles are over all expected pairs (a lost pair ranks last). Two runs of the
same release differ by chance, so compare estimates each latency change's 95% interval from the
runs' per-second histograms (a moving-block bootstrap, seeded: the same runs give the same answer).
A latency clause fails only when the whole interval breaks it (for "p95+10%": the interval's low
end is above +10%) and the change is at least --latency-floor (default 5 ms). Counts (lost,
duplicates, errors) are exact and judged as they are. Runs stored before per-second histograms
are compared plainly, with a warning that their noise is unknown. See docs/report.md.
Metrics: requests.publish requests.subscribe published expected delivered p50 p95 p99 max
  learner.p50 learner.p95 learner.p99 control.p50 control.p95 control.p99 withinTarget lost
  duplicates errors retries scheduleLag.p99 scheduleLag.max
`;

export function addCompareCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('compare')
    .description('Compare two stored runs metric by metric; with --fail-on, exit 1 on a regression.')
    .argument('<runA>', 'the baseline run (id, release, latest or previous)')
    .argument('<runB>', 'the run to judge against it')
    .option('--results <file>', 'database the runs are stored in (default: --db)')
    .option('--db <file>', 'model database; holds the runs too when --results is not given')
    .option('--fail-on <rules>', 'regression rules, e.g. "p95+10%, lost+0, withinTarget-1pt" (see below)')
    .option('--latency-floor <ms>', 'latency changes smaller than this (ms) never fail --fail-on', String(defaultLatencyFloorMs))
    .option('--json', 'print the comparison as JSON (see docs/report.md)')
    .addHelpText('after', failOnHelp)
    .action((runA: string, runB: string, opts: { results?: string; db?: string; failOn?: string; latencyFloor: string; json?: boolean }) => {
      const latencyFloorMs = Number(opts.latencyFloor);
      if (opts.latencyFloor.trim() === '' || !Number.isFinite(latencyFloorMs) || latencyFloorMs < 0) {
        throw new UsageError(`"${opts.latencyFloor}" is not a number of milliseconds >= 0, e.g. --latency-floor 1 or 0.5`, '--latency-floor');
      }
      const results = openResults(opts);
      try {
        const comparison = compareRunsByName(results.db, runA, runB, {
          ...(opts.failOn === undefined ? {} : { failOn: opts.failOn }),
          dbLabel: results.label,
          latencyFloorMs,
        });
        const color = Boolean(ctx.io.stdout.isTTY) && !ctx.io.env.NO_COLOR;
        const stderrColor = Boolean(ctx.io.stderr.isTTY) && !ctx.io.env.NO_COLOR;
        ctx.io.stderr.write(formatWarnings(comparison, { color: stderrColor }));
        ctx.io.stdout.write(opts.json ? `${JSON.stringify(comparison, null, 2)}\n` : formatComparison(comparison, { color }));
        if (comparison.failOn && !comparison.failOn.pass) ctx.setExitCode(ExitCode.failed);
      } finally {
        results.close();
      }
    });
}
