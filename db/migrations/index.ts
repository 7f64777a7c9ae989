// Numbered migrations: the array index + 1 is the PRAGMA user_version a database reaches
// after applying it. Append only; never edit a migration that has been released.
import { modelSchema } from './001-model.js';
import { runsSchema } from './002-runs.js';
import { movePseudonymSecretOut, pseudonymKeySchema, type MigrationContext } from './003-pseudonym-key.js';
import { runProcessSchema } from './004-run-process.js';
import { sourceWarningsSchema } from './005-source-warnings.js';
import { secondHistogramsSchema } from './006-second-histograms.js';
import { compactModelSchema } from './007-compact-model.js';
import { capacitySchema } from './008-capacity.js';
import { runShardsSchema } from './009-run-shards.js';
import type Database from 'better-sqlite3';

export type { MigrationContext };

export interface Migration {
  name: string;
  /** Work SQL cannot do (files, hashing), run in the migration's transaction before `sql`; returns notices for the user. */
  before?: (db: Database.Database, ctx: MigrationContext) => string[];
  sql: string;
}

export const migrations: readonly Migration[] = [
  { name: '001-model', sql: modelSchema },
  { name: '002-runs', sql: runsSchema },
  { name: '003-pseudonym-key', before: movePseudonymSecretOut, sql: pseudonymKeySchema },
  { name: '004-run-process', sql: runProcessSchema },
  { name: '005-source-warnings', sql: sourceWarningsSchema },
  { name: '006-second-histograms', sql: secondHistogramsSchema },
  { name: '007-compact-model', sql: compactModelSchema },
  { name: '008-capacity', sql: capacitySchema },
  { name: '009-run-shards', sql: runShardsSchema },
];
