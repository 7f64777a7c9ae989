// Databases written before the pseudonym key moved out of the model held the secret in
// `meta.ids.secret`: anyone with the file could re-identify every actor. This migration moves
// that secret into a key file (the default one if none exists yet, else one beside it named by
// the key's id, so the old pseudonyms stay reproducible) and deletes it from the database.

import nodePath from 'node:path';
import type Database from 'better-sqlite3';
import { defaultKeyFile, keyIdOf, readKeyFile, writeKeyFileIfAbsent } from '../../core/pseudonym-key.js';

export interface MigrationContext {
  /** The database file, for messages. */
  path: string;
  /** Where the pseudonym key lives for this user (--key-file, else the default). */
  keyFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Writes the old secret to a key file and records its id; returns what to tell the user. */
export function movePseudonymSecretOut(db: Database.Database, ctx: MigrationContext): string[] {
  const secret = db.prepare("SELECT value FROM meta WHERE key = 'ids.secret'").pluck().get() as string | undefined;
  if (secret === undefined) return [];
  const hex = secret.trim();
  const keyId = keyIdOf(Buffer.from(hex, 'hex'));
  const target = ctx.keyFile ?? defaultKeyFile(ctx.env);
  let where = target;
  const existing = readKeyFile(target);
  if (existing === undefined ? !writeKeyFileIfAbsent(target, hex) || readKeyFile(target)!.keyId !== keyId : existing.keyId !== keyId) {
    // Another key is already in use here: keep this database's own beside it.
    where = nodePath.join(nodePath.dirname(target), `pseudonym-${keyId}.key`);
    writeKeyFileIfAbsent(where, hex);
  }
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('ids.key_id', ?)").run(keyId);
  // The DELETE below must not leave the secret's bytes in a freed page of the file.
  db.pragma('secure_delete = ON');
  const hint = where === target ? '' : ` Ingest into it with \`--key-file ${where}\` to keep its pseudonyms.`;
  return [`${ctx.path}: moved the pseudonym secret out of the database into ${where} (mode 0600); the database no longer holds it.${hint}`];
}

export const pseudonymKeySchema = `DELETE FROM meta WHERE key = 'ids.secret';`;
