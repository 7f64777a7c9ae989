// The pseudonym key: the secret behind the keyed pseudonyms ingest stores instead of real ids.
// It lives outside every model database (a 0600 key file, or REHEARSE_PSEUDONYM_KEY), so a
// model can be handed to a colleague without the means to re-identify anyone. Shared by ingest
// (which pseudonymises with it) and db (whose migration moves an old in-database secret out).

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { RehearseError } from './errors.js';

export const pseudonymKeyEnv = 'REHEARSE_PSEUDONYM_KEY';

/** 32 random bytes, written as 64 hex digits (what `openssl rand -hex 32` prints). */
const keyPattern = /^[0-9a-fA-F]{64}$/;

export interface PseudonymKey {
  key: Buffer;
  /** Where it came from, for messages: a file path or the environment variable's name. */
  source: string;
  /** A one-way fingerprint stored with the model, so a database refuses the wrong key; never the key. */
  keyId: string;
}

/** `$XDG_CONFIG_HOME/rehearse/pseudonym.key`, else `~/.config/rehearse/pseudonym.key`. */
export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME && nodePath.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : nodePath.join(env.HOME || os.homedir(), '.config');
  return nodePath.join(config, 'rehearse', 'pseudonym.key');
}

export function keyIdOf(key: Buffer): string {
  return crypto.createHmac('sha256', key).update('rehearse pseudonym key id').digest('hex').slice(0, 16);
}

function fromHex(text: string, source: string): PseudonymKey {
  const hex = text.trim();
  if (!keyPattern.test(hex)) {
    throw new RehearseError(
      'REHEARSE_USAGE',
      `${source}: not a pseudonym key (expected 64 hex digits, e.g. from \`openssl rand -hex 32\`).`,
    );
  }
  const key = Buffer.from(hex, 'hex');
  return { key, source, keyId: keyIdOf(key) };
}

/** Reads a key file, or undefined when it does not exist. */
export function readKeyFile(file: string): PseudonymKey | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RehearseError('REHEARSE_USAGE', `${file}: cannot read the pseudonym key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, { cause: err });
  }
  return fromHex(text, file);
}

/**
 * Writes `hex` to `file` with mode 0600 unless the file exists; returns false when it did.
 * Atomic (written aside, then hard-linked into place), so two ingests starting at once agree
 * on one key and nobody reads a half-written file.
 */
export function writeKeyFileIfAbsent(file: string, hex: string): boolean {
  fs.mkdirSync(nodePath.dirname(file), { recursive: true, mode: 0o700 });
  const aside = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(aside, `${hex}\n`, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(aside, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new RehearseError('REHEARSE_USAGE', `${file}: cannot write the pseudonym key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, { cause: err });
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

/**
 * The key to pseudonymise with: `--key-file` if given (created when missing), else
 * REHEARSE_PSEUDONYM_KEY, else the default key file (created with a random key when missing).
 */
export function loadPseudonymKey(options: { keyFile?: string | undefined; env?: NodeJS.ProcessEnv } = {}): PseudonymKey {
  const env = options.env ?? process.env;
  if (options.keyFile === undefined && env[pseudonymKeyEnv] !== undefined && env[pseudonymKeyEnv] !== '') {
    return fromHex(env[pseudonymKeyEnv]!, pseudonymKeyEnv);
  }
  const file = options.keyFile ?? defaultKeyFile(env);
  const existing = readKeyFile(file);
  if (existing) return existing;
  writeKeyFileIfAbsent(file, crypto.randomBytes(32).toString('hex'));
  return readKeyFile(file)!;
}
