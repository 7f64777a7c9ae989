// The mapping file: how one log format's columns, keys or log_format variables become the
// canonical record. Validated once here, at the edge, collecting every problem; the rest of
// ingest only sees a ResolvedMapping. The contract is documented in docs/mapping.md.

import fs from 'node:fs';
import { RehearseError } from '../core/errors.js';
import { canonicalColumns } from './record.js';

export const mappingVersion = 1;

export type Format = 'csv' | 'tsv' | 'jsonl' | 'nginx';
export const formats: readonly Format[] = ['csv', 'tsv', 'jsonl', 'nginx'];

export const canonicalFields = [
  'time',
  'actor',
  'endpoint',
  'topics',
  'status',
  'duration',
  'messages',
  'session',
  'bytes',
  'userAgent',
  'clientIp',
] as const;
export type CanonicalField = (typeof canonicalFields)[number];

/** Without these a record cannot be placed in the model. */
export const requiredFields: readonly CanonicalField[] = ['time', 'actor', 'endpoint', 'topics', 'status'];

/** The mapping file as a user writes it (docs/mapping.md). */
export interface MappingFile {
  version?: 1;
  format?: Format;
  logFormat?: string;
  fields?: Partial<Record<CanonicalField, string>>;
  topicSeparator?: string;
  timeFormat?: string;
  timezone?: string;
  durationUnit?: 'ms' | 's';
  timeIs?: 'start' | 'end';
  ops?: { publish?: string; subscribe?: string };
  roles?: { proctor?: string; learner?: string };
}

/** A validated mapping with defaults merged in; `fields` holds only what the user named. */
export interface ResolvedMapping {
  version: 1;
  format: Format | undefined;
  logFormat: string | undefined;
  fields: Partial<Record<CanonicalField, string>>;
  topicSeparator: string;
  /** 'auto' unless the user said. */
  timeFormat: string;
  timezone: string;
  /** False when `timezone` is the default, so ingest may take the zone from the times' offsets. */
  timezoneGiven: boolean;
  durationUnit: 'ms' | 's' | undefined;
  timeIs: 'start' | 'end' | undefined;
  ops: { publish: RegExp; subscribe: RegExp };
  roles: { proctor?: RegExp; learner?: RegExp };
}

export const defaultOps = { publish: /publish/i, subscribe: /subscribe|poll/i };

/** Column / key names of the canonical CSV and JSON lines, per canonical field. */
export const defaultColumns: Record<CanonicalField, string> = {
  time: 'time',
  actor: 'actor',
  endpoint: 'endpoint',
  topics: 'topics',
  status: 'status',
  duration: 'duration_ms',
  messages: 'messages',
  session: 'session',
  bytes: 'bytes',
  userAgent: 'user_agent',
  clientIp: 'client_ip',
};
// Keeps canonicalColumns and the defaults in step at compile time.
void (canonicalColumns satisfies readonly string[]);

const knownKeys = new Set([
  'version', 'format', 'logFormat', 'fields', 'topicSeparator', 'timeFormat', 'timezone', 'durationUnit', 'timeIs', 'ops', 'roles', '$schema', 'description',
]);
const namedTimeFormats = new Set(['auto', 'iso', 'epoch_s', 'epoch_ms', 'clf']);

export class MappingError extends RehearseError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super('REHEARSE_MAPPING', `${source}: invalid mapping (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee docs/mapping.md.`);
    this.problems = problems;
  }
}

function isValidZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function compileRegex(text: unknown, where: string, problems: string[]): RegExp | undefined {
  if (typeof text !== 'string' || text === '') {
    problems.push(`${where}: must be a non-empty regular expression string`);
    return undefined;
  }
  try {
    return new RegExp(text, 'i');
  } catch (err) {
    problems.push(`${where}: not a valid regular expression (${(err as Error).message})`);
    return undefined;
  }
}

/** Validates a parsed mapping (unknown JSON) and merges defaults. `source` names it in errors. */
export function resolveMapping(input: unknown, source = 'mapping'): ResolvedMapping {
  const problems: string[] = [];
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new MappingError(source, ['the mapping must be a JSON object']);
  const m = input as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!knownKeys.has(key)) problems.push(`${key}: unknown key (known: ${[...knownKeys].filter((k) => !k.startsWith('$') && k !== 'description').join(', ')})`);
  }
  if (m.version !== undefined && m.version !== mappingVersion) {
    problems.push(`version: ${JSON.stringify(m.version)} is not supported; this rehearse reads mapping version ${mappingVersion}`);
  }
  let format: Format | undefined;
  if (m.format !== undefined) {
    if (typeof m.format === 'string' && (formats as readonly string[]).includes(m.format)) format = m.format as Format;
    else problems.push(`format: ${JSON.stringify(m.format)} is not one of ${formats.join(', ')}`);
  }
  let logFormat: string | undefined;
  if (m.logFormat !== undefined) {
    if (typeof m.logFormat === 'string' && m.logFormat.includes('$')) logFormat = m.logFormat;
    else problems.push('logFormat: must be the nginx/Apache log_format string, with $variables');
  }
  if (format === 'nginx' && logFormat === undefined && m.logFormat === undefined) {
    problems.push('logFormat: required when format is "nginx" (paste the log_format from your nginx.conf)');
  }
  if (logFormat !== undefined && format !== undefined && format !== 'nginx') {
    problems.push(`logFormat: only used with format "nginx", but format is "${format}"`);
  }
  const fields: Partial<Record<CanonicalField, string>> = {};
  if (m.fields !== undefined) {
    if (typeof m.fields !== 'object' || m.fields === null || Array.isArray(m.fields)) {
      problems.push('fields: must be an object of canonical field -> column, key or variable');
    } else {
      for (const [key, value] of Object.entries(m.fields as Record<string, unknown>)) {
        if (!(canonicalFields as readonly string[]).includes(key)) {
          problems.push(`fields.${key}: not a canonical field (known: ${canonicalFields.join(', ')})`);
        } else if (typeof value !== 'string' || value === '') {
          problems.push(`fields.${key}: must be a non-empty string naming a column, key or variable`);
        } else {
          fields[key as CanonicalField] = value;
        }
      }
    }
  }
  let topicSeparator = ';';
  if (m.topicSeparator !== undefined) {
    if (typeof m.topicSeparator === 'string' && m.topicSeparator.length > 0) topicSeparator = m.topicSeparator;
    else problems.push('topicSeparator: must be a non-empty string');
  }
  let timeFormat = 'auto';
  if (m.timeFormat !== undefined) {
    if (typeof m.timeFormat !== 'string' || m.timeFormat === '') problems.push('timeFormat: must be iso, epoch_s, epoch_ms, clf or a luxon format');
    else {
      timeFormat = m.timeFormat;
      if (!namedTimeFormats.has(timeFormat) && !/[yMdHhms]/.test(timeFormat)) {
        problems.push(`timeFormat: "${timeFormat}" is neither iso, epoch_s, epoch_ms, clf nor a luxon format (e.g. "yyyy-MM-dd HH:mm:ss")`);
      }
    }
  }
  let timezone = 'UTC';
  if (m.timezone !== undefined) {
    if (typeof m.timezone === 'string' && isValidZone(m.timezone)) timezone = m.timezone;
    else problems.push(`timezone: ${JSON.stringify(m.timezone)} is not an IANA time zone (e.g. "Europe/Paris")`);
  }
  let durationUnit: 'ms' | 's' | undefined;
  if (m.durationUnit !== undefined) {
    if (m.durationUnit === 'ms' || m.durationUnit === 's') durationUnit = m.durationUnit;
    else problems.push(`durationUnit: ${JSON.stringify(m.durationUnit)} is not "ms" or "s"`);
  }
  let timeIs: 'start' | 'end' | undefined;
  if (m.timeIs !== undefined) {
    if (m.timeIs === 'start' || m.timeIs === 'end') timeIs = m.timeIs;
    else problems.push(`timeIs: ${JSON.stringify(m.timeIs)} is not "start" or "end"`);
  }
  const ops = { ...defaultOps };
  if (m.ops !== undefined) {
    if (typeof m.ops !== 'object' || m.ops === null || Array.isArray(m.ops)) problems.push('ops: must be an object {"publish": "<regex>", "subscribe": "<regex>"}');
    else {
      for (const [key, value] of Object.entries(m.ops as Record<string, unknown>)) {
        if (key !== 'publish' && key !== 'subscribe') problems.push(`ops.${key}: unknown operation (publish, subscribe)`);
        else {
          const re = compileRegex(value, `ops.${key}`, problems);
          if (re) ops[key] = re;
        }
      }
    }
  }
  const roles: ResolvedMapping['roles'] = {};
  if (m.roles !== undefined) {
    if (typeof m.roles !== 'object' || m.roles === null || Array.isArray(m.roles)) problems.push('roles: must be an object {"proctor": "<regex>", "learner": "<regex>"}');
    else {
      for (const [key, value] of Object.entries(m.roles as Record<string, unknown>)) {
        if (key !== 'proctor' && key !== 'learner') problems.push(`roles.${key}: unknown role (proctor, learner)`);
        else {
          const re = compileRegex(value, `roles.${key}`, problems);
          if (re) roles[key] = re;
        }
      }
    }
  }
  if (problems.length > 0) throw new MappingError(source, problems);
  return { version: 1, format, logFormat, fields, topicSeparator, timeFormat, timezone, timezoneGiven: m.timezone !== undefined, durationUnit, timeIs, ops, roles };
}

/** Reads and validates a mapping file. */
export function readMappingFile(path: string): ResolvedMapping {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new RehearseError('REHEARSE_MAPPING', `${path}: cannot read the mapping file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RehearseError('REHEARSE_MAPPING', `${path}: not valid JSON (${(err as Error).message}).`);
  }
  return resolveMapping(json, path);
}

/** `proctor=<regex>` / `learner=<regex>` from --role-override. */
export function parseRoleOverride(text: string): { role: 'proctor' | 'learner'; pattern: RegExp } {
  const eq = text.indexOf('=');
  const role = text.slice(0, eq);
  if (eq < 0 || (role !== 'proctor' && role !== 'learner')) {
    throw new RehearseError('REHEARSE_USAGE', `--role-override: "${text}" is not proctor=<regex> or learner=<regex>`);
  }
  try {
    return { role, pattern: new RegExp(text.slice(eq + 1)) };
  } catch (err) {
    throw new RehearseError('REHEARSE_USAGE', `--role-override: ${(err as Error).message}`);
  }
}
