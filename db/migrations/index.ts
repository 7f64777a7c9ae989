// Numbered migrations: the array index + 1 is the PRAGMA user_version a database reaches
// after applying it. Append only; never edit a migration that has been released.
import { modelSchema } from './001-model.js';
import { runsSchema } from './002-runs.js';

export interface Migration {
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  { name: '001-model', sql: modelSchema },
  { name: '002-runs', sql: runsSchema },
];
