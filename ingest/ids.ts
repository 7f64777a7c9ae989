// Privacy at the edge: actor, session and topic ids become keyed pseudonyms (HMAC-SHA256 with the
// pseudonym key, which lives outside the database: core/pseudonym-key.ts) before anything is
// stored, user agents a client family, and client IPs are dropped. --keep-ids stores the ids as
// they are. The database keeps only the key's one-way id, so it refuses a different key.

import crypto from 'node:crypto';
import { RehearseError } from '../core/errors.js';
import type { PseudonymKey } from '../core/pseudonym-key.js';
import type { Db } from '../db/open.js';
import { idsTable } from '../db/model-store.js';

export const IdKind = { actor: 1, session: 2, topic: 3, client: 4 } as const;
export type IdKindCode = (typeof IdKind)[keyof typeof IdKind];

const keyIdKey = 'ids.key_id';
const modeKey = 'ids.mode';

const familyCache = new Map<string, string>();

/** A coarse client family: enough to tell browsers from scripts, never a fingerprint. */
export function clientFamily(userAgent: string): string {
  let family = familyCache.get(userAgent);
  if (family === undefined) {
    family = classifyUserAgent(userAgent);
    if (familyCache.size > 10_000) familyCache.clear();
    familyCache.set(userAgent, family);
  }
  return family;
}

function classifyUserAgent(userAgent: string): string {
  if (/bot|crawl|spider/i.test(userAgent)) return 'bot';
  if (/^curl\//i.test(userAgent)) return 'curl';
  if (/python|requests\//i.test(userAgent)) return 'python';
  if (/okhttp/i.test(userAgent)) return 'okhttp';
  if (/undici|node|axios|rehearse/i.test(userAgent)) return 'node';
  if (/Edg\//.test(userAgent)) return 'Edge';
  if (/Firefox\//.test(userAgent)) return 'Firefox';
  if (/Chrome\/|CriOS\//.test(userAgent)) return 'Chrome';
  if (/Safari\//.test(userAgent)) return 'Safari';
  return 'other';
}

/**
 * Interns ids into the `ids` table, through the pseudonymiser, with in-memory caches from the
 * raw value. After a rolled-back file, call reload() so no cache names a vanished row.
 */
export class IdStore {
  readonly keepIds: boolean;
  private readonly secret: Buffer;
  private readonly byValue = new Map<number, Map<string, number>>();
  private readonly byRaw = new Map<number, Map<string, number>>();
  private readonly insert;
  private readonly setRole;
  private overrides: Array<{ role: 'proctor' | 'learner'; pattern: RegExp }> = [];

  constructor(private readonly db: Db, options: { keepIds: boolean; create: boolean; key?: PseudonymKey }) {
    const mode = idsTable.meta(db, modeKey);
    const wanted = options.keepIds ? 'kept' : 'pseudonymous';
    if (mode !== undefined && mode !== wanted) {
      throw new RehearseError(
        'REHEARSE_USAGE',
        `${db.name}: holds ${mode === 'kept' ? 'real ids (ingested with --keep-ids)' : 'pseudonymous ids'}; ingest ${mode === 'kept' ? 'with' : 'without'} --keep-ids into it, or use another --db.`,
      );
    }
    if (!options.keepIds && options.key === undefined) {
      throw new RehearseError('REHEARSE_INTERNAL', 'IdStore: pseudonymous ids need the pseudonym key (core/pseudonym-key.ts loadPseudonymKey)');
    }
    const keyId = idsTable.meta(db, keyIdKey);
    if (!options.keepIds && keyId !== undefined && keyId !== options.key!.keyId) {
      throw new RehearseError(
        'REHEARSE_USAGE',
        `${db.name}: its pseudonyms were made with another pseudonym key (key id ${keyId}; ${options.key!.source} has ${options.key!.keyId}), ` +
          'so the same person would become two actors. Ingest with the --key-file (or REHEARSE_PSEUDONYM_KEY) used before, or use another --db.',
      );
    }
    if (options.create && (mode === undefined || (!options.keepIds && keyId === undefined))) {
      idsTable.putMeta(db, modeKey, wanted);
      if (!options.keepIds) idsTable.putMeta(db, keyIdKey, options.key!.keyId);
    }
    this.keepIds = options.keepIds;
    this.secret = options.key?.key ?? Buffer.alloc(0);
    this.insert = idsTable.inserter(db);
    this.setRole = idsTable.roleSetter(db);
    this.reload();
  }

  /** --role-override patterns, matched against the raw actor id as each new actor is seen. */
  setRoleOverrides(overrides: Array<{ role: 'proctor' | 'learner'; pattern: RegExp }>): void {
    this.overrides = overrides;
  }

  reload(): void {
    this.byValue.clear();
    this.byRaw.clear();
    for (const [id, kind, value] of idsTable.all(this.db)) {
      this.mapOf(this.byValue, kind).set(value, id);
    }
  }

  private mapOf(maps: Map<number, Map<string, number>>, kind: number): Map<string, number> {
    let m = maps.get(kind);
    if (!m) maps.set(kind, (m = new Map()));
    return m;
  }

  /** The stored value for a raw id: a 16-hex-digit keyed pseudonym, or the id itself with --keep-ids. */
  pseudonym(kind: IdKindCode, raw: string): string {
    if (this.keepIds) return raw;
    return crypto.createHmac('sha256', this.secret).update(`${kind}:${raw}`).digest('hex').slice(0, 16);
  }

  /** The ids row for a raw value, created on first sight. */
  id(kind: IdKindCode, raw: string): number {
    const cache = this.mapOf(this.byRaw, kind);
    const hit = cache.get(raw);
    if (hit !== undefined) return hit;
    const value = kind === IdKind.client && !this.keepIds ? raw : this.pseudonym(kind, raw);
    const stored = this.mapOf(this.byValue, kind);
    let id = stored.get(value);
    if (id === undefined) {
      id = this.insert(kind, value);
      stored.set(value, id);
    }
    if (kind === IdKind.actor) {
      for (const o of this.overrides) {
        if (o.pattern.test(raw)) {
          this.setRole(id, o.role);
          break;
        }
      }
    }
    cache.set(raw, id);
    return id;
  }
}
