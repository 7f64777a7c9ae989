// `rehearse model`: shows the model a database holds (readable, or one JSON object with --json).

import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { zoneLabel } from '../core/zone.js';
import { exportDatabase, openDatabase } from '../db/open.js';
import { describeModel, formatModelDescription } from '../ingest/describe.js';
import type { CommandContext } from './program.js';

export function addModelCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('model')
    .description('Summarise the behaviour model in a database (--json: one object, docs/model.md).')
    .option('--db <model.db>', 'the model database written by `rehearse ingest`')
    .option('--json', 'print one JSON object')
    .option('--export <file>', 'write a compact copy that opens on a read-only volume (a Kubernetes model volume, docs/scale-out.md)')
    .action((flags: { db?: string; json?: boolean; export?: string }) => {
      if (!flags.db) throw new UsageError('required: the model database (e.g. --db model.db)', '--db');
      if (flags.export !== undefined) {
        const source = openDatabase(flags.db, { mustExist: true });
        try {
          describeModel(source); // refuses a database with no model before anything is written
          exportDatabase(source, flags.export);
        } finally {
          source.close();
        }
        ctx.io.stderr.write(`rehearse: model of ${flags.db} written to ${flags.export} (opens read-only; mount it with readOnly: true)\n`);
        return;
      }
      const db = openDatabase(flags.db, { mustExist: true, readonly: true });
      try {
        const d = describeModel(db);
        // --json keeps the zone luxon reads (Etc/GMT-2); the text shows it as people read it over
        // the model's span (UTC+02:00; Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00)).
        const forPeople = { ...d, timezone: zoneLabel(d.timezone, Date.parse(d.span.start), Date.parse(d.span.end)) };
        ctx.io.stdout.write(flags.json ? JSON.stringify(d, null, 2) + '\n' : formatModelDescription(forPeople));
      } finally {
        db.close();
      }
    });
}
