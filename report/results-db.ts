// Which database holds the runs: --results when given, else --db (replay stores into the
// same one). The model, for fidelity, lives in --db, or in the results file when it has one.

import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { hasModel, openModelReader } from '../db/model-store.js';
import type { ModelReader } from '../db/model-types.js';
import { openDatabase, type Db } from '../db/open.js';

export interface ResultsLocation {
  results?: string | undefined;
  db?: string | undefined;
}

export interface OpenedResults {
  db: Db;
  /** The file name, for messages. */
  label: string;
  close(): void;
}

export function resultsPath(where: ResultsLocation): string {
  const file = where.results ?? where.db;
  if (!file) {
    throw new UsageError('name the database that holds the runs: --results <file> (or --db <file> when runs share the model database).', '--results');
  }
  return file;
}

export function openResults(where: ResultsLocation): OpenedResults {
  const label = resultsPath(where);
  const db = openDatabase(label, { mustExist: true });
  return { db, label, close: () => db.close() };
}

/**
 * The model for fidelity, when one is at hand: --db if given (and different from the results
 * file), else the results file itself. Returns null when neither holds a model.
 */
export function openModelForReport(where: ResultsLocation, results: OpenedResults): { model: ModelReader; label: string; close(): void } | null {
  if (where.db && path.resolve(where.db) !== path.resolve(results.label)) {
    const db = openDatabase(where.db, { mustExist: true });
    if (!hasModel(db)) {
      db.close();
      return null;
    }
    return { model: openModelReader(db), label: where.db, close: () => db.close() };
  }
  if (!hasModel(results.db)) return null;
  return { model: openModelReader(results.db), label: results.label, close: () => undefined };
}
