// Ends every test run with one plain line, 'tests: N passed, N failed[, N skipped]', that
// any CI log reader understands without knowing vitest's own summary format.
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

function count(tasks: readonly Task[], totals: { passed: number; failed: number; skipped: number }): void {
  for (const task of tasks) {
    if (task.type === 'suite' || task.tasks) {
      count(task.tasks ?? [], totals);
      if (task.type === 'suite' && task.result?.state === 'fail' && !(task.tasks ?? []).length) totals.failed++;
      continue;
    }
    const state = task.result?.state;
    if (state === 'pass') totals.passed++;
    else if (state === 'fail') totals.failed++;
    else totals.skipped++;
  }
}

export default class PlainSummaryReporter implements Reporter {
  onFinished(files: readonly Task[] = [], errors: readonly unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    count(files, totals);
    // Errors outside tests (a file that fails to load, an unhandled rejection) are failures too.
    totals.failed += errors.length;
    const skipped = totals.skipped ? `, ${totals.skipped} skipped` : '';
    process.stdout.write(`\ntests: ${totals.passed} passed, ${totals.failed} failed${skipped}\n`);
  }
}
