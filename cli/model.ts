// `rehearse model`: shows the model a database holds (readable, or one JSON object with --json).

import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { zoneLabel } from '../core/zone.js';
import { openDatabase } from '../db/open.js';
import { describeModel, formatModelDescription } from '../ingest/describe.js';
import type { CommandContext } from './program.js';

export function addModelCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('model')
    .description('Summarise the behaviour model in a database (--json: one object, docs/model.md).')
    .option('--db <model.db>', 'the model database written by `rehearse ingest`')
    .option('--json', 'print one JSON object')
    .action((flags: { db?: string; json?: boolean }) => {
      if (!flags.db) throw new UsageError('required: the model database (e.g. --db model.db)', '--db');
      const db = openDatabase(flags.db, { mustExist: true, readonly: true });
      try {
        const d = describeModel(db);
        // --json keeps the zone luxon reads (Etc/GMT-2); the text shows it as people read it (UTC+2).
        const forPeople = { ...d, timezone: zoneLabel(d.timezone, Date.parse(d.span.start)) };
        ctx.io.stdout.write(flags.json ? JSON.stringify(d, null, 2) + '\n' : formatModelDescription(forPeople));
      } finally {
        db.close();
      }
    });
}
