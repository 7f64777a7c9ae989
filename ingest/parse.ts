// Maps one parsed line (CSV/TSV fields, a JSON object, or an nginx log line) to a request with
// canonical fields, or to the reason it is rejected. Pure: no I/O, no ids pseudonymised yet.

import type { Op } from './record.js';
import { defaultColumns, requiredFields, MappingError, type CanonicalField, type Format, type ResolvedMapping } from './mapping.js';
import { compileLogFormat, parseRequestLine, queryValues, splitTarget } from './nginx.js';
import { makeTimeParser } from './time.js';
import { offsetMinutesOf } from './zone.js';

/** A request as read from a log, before ids are pseudonymised. */
export interface ParsedRequest {
  startMs: number;
  durationMs: number;
  actor: string;
  endpoint: string;
  op: Op;
  topics: string[];
  status: number;
  messages: number;
  session: string | undefined;
  bytes: number | undefined;
  userAgent: string | undefined;
  /** The instant the log wrote (epoch ms; the end when times are end times) and the UTC offset it was written with (minutes), if any: the model's zone is inferred from them. */
  timeMs?: number;
  offsetMin?: number | undefined;
}

/** A line is accepted (a request), skipped (blank) or rejected with a short reason. */
export type LineResult = ParsedRequest | { reject: string } | null;

export const opCode: Record<Op, number> = { other: 0, publish: 1, subscribe: 2 };
export const opNames: readonly Op[] = ['other', 'publish', 'subscribe'];

type Getter<Row> = (row: Row) => unknown;

interface FieldGetters<Row> {
  get: Partial<Record<CanonicalField, Getter<Row>>>;
  /** Where the time's UTC offset is written when the time itself has none (nginx $msec beside $time_local). */
  zoneTime?: Getter<Row>;
}

const optionalWithDefault: readonly CanonicalField[] = ['duration', 'messages', 'session', 'bytes', 'userAgent', 'clientIp'];

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === '-';
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return Number.NaN;
}

/** The conversion shared by every format, once fields have been located. */
function makeConverter<Row>(mapping: ResolvedMapping, getters: FieldGetters<Row>, defaultDurationUnit: 'ms' | 's', defaultTimeIs: 'start' | 'end') {
  const g = getters.get;
  const parseTime = makeTimeParser(mapping.timeFormat, mapping.timezone);
  const durationFactor = (mapping.durationUnit ?? defaultDurationUnit) === 's' ? 1000 : 1;
  const timeIsEnd = (mapping.timeIs ?? defaultTimeIs) === 'end';
  const sep = mapping.topicSeparator;
  const { publish, subscribe } = mapping.ops;
  const getTime = g.time!;
  const getActor = g.actor!;
  const getEndpoint = g.endpoint!;
  const getTopics = g.topics!;
  const getStatus = g.status!;
  const { duration: getDuration, messages: getMessages, session: getSession, bytes: getBytes, userAgent: getUserAgent } = g;
  // The mapping's zone wins: then offsets need not be read at all.
  const readOffsets = !mapping.timezoneGiven;
  const getZoneTime = getters.zoneTime;

  return (row: Row): ParsedRequest | { reject: string } => {
    const timeValue = getTime(row);
    if (isEmpty(timeValue)) return { reject: 'missing time' };
    const time = parseTime(timeValue);
    if (!Number.isFinite(time)) return { reject: 'unreadable time' };
    const actorValue = getActor(row);
    if (isEmpty(actorValue)) return { reject: 'missing actor' };
    const endpointValue = getEndpoint(row);
    if (isEmpty(endpointValue)) return { reject: 'missing endpoint' };
    const endpoint = String(endpointValue);
    const status = toNumber(getStatus(row));
    if (!Number.isInteger(status) || status < 100 || status > 599) return { reject: 'bad status' };
    let durationMs = 0;
    if (getDuration) {
      const d = getDuration(row);
      if (!isEmpty(d)) {
        durationMs = toNumber(d) * durationFactor;
        if (!Number.isFinite(durationMs) || durationMs < 0) return { reject: 'bad duration' };
      }
    }
    const topicsValue = getTopics(row);
    let topics: string[];
    if (Array.isArray(topicsValue)) topics = topicsValue.filter((t) => !isEmpty(t)).map(String);
    else if (isEmpty(topicsValue)) topics = [];
    else {
      const text = String(topicsValue);
      topics = text.includes(sep) ? text.split(sep).filter((t) => t !== '') : [text];
    }
    const op: Op = publish.test(endpoint) ? 'publish' : subscribe.test(endpoint) ? 'subscribe' : 'other';
    let messages = op === 'publish' ? 1 : 0;
    if (getMessages) {
      const mv = getMessages(row);
      if (!isEmpty(mv)) {
        messages = toNumber(mv);
        if (!Number.isInteger(messages) || messages < 0) return { reject: 'bad messages' };
      }
    }
    let bytes: number | undefined;
    if (getBytes) {
      const b = getBytes(row);
      if (!isEmpty(b)) {
        bytes = toNumber(b);
        if (!Number.isFinite(bytes) || bytes < 0) return { reject: 'bad bytes' };
      }
    }
    const sessionValue = getSession?.(row);
    const ua = getUserAgent?.(row);
    return {
      startMs: Math.round(timeIsEnd ? time - durationMs : time),
      durationMs: Math.round(durationMs),
      actor: String(actorValue),
      endpoint,
      op,
      topics,
      status,
      messages,
      session: isEmpty(sessionValue) ? undefined : String(sessionValue),
      bytes,
      userAgent: isEmpty(ua) ? undefined : String(ua),
      timeMs: time,
      offsetMin: readOffsets ? offsetMinutesOf(getZoneTime ? getZoneTime(row) : timeValue) : undefined,
    };
  };
}

/** CSV/TSV: locates every mapped column in the header (a mapped column the header lacks is an error). */
export function csvRecordMapper(mapping: ResolvedMapping, header: string[], file: string): (fields: string[]) => LineResult {
  const problems: string[] = [];
  const index = new Map<string, number>();
  header.forEach((h, i) => {
    const name = h.trim();
    if (!index.has(name)) index.set(name, i);
  });
  const get: Partial<Record<CanonicalField, Getter<string[]>>> = {};
  for (const field of Object.keys(defaultColumns) as CanonicalField[]) {
    const named = mapping.fields[field];
    const column = named ?? defaultColumns[field];
    const i = index.get(column);
    if (i === undefined) {
      if (named !== undefined) problems.push(`fields.${field}: column "${named}" is not in the header of ${file} (columns: ${header.join(', ')})`);
      else if (requiredFields.includes(field)) problems.push(`fields.${field}: not mapped, and the header of ${file} has no "${column}" column (columns: ${header.join(', ')})`);
      continue;
    }
    get[field] = (row) => row[i];
  }
  if (problems.length > 0) throw new MappingError(file, problems);
  const convert = makeConverter(mapping, { get }, 'ms', 'start');
  const width = header.length;
  return (fields) => {
    if (fields.length === 1 && fields[0] === '') return null;
    if (fields.length !== width) return { reject: `expected ${width} columns, got ${fields.length}` };
    return convert(fields);
  };
}

function keyGetter(key: string): Getter<Record<string, unknown>> {
  if (!key.includes('.')) return (row) => row[key];
  const parts = key.split('.');
  return (row) => {
    if (key in row) return row[key];
    let v: unknown = row;
    for (const p of parts) {
      if (typeof v !== 'object' || v === null) return undefined;
      v = (v as Record<string, unknown>)[p];
    }
    return v;
  };
}

/**
 * JSON lines: keys cannot be checked against a header, so the first object read stands in for
 * one: a mapped key it lacks is an error, not a million rejected lines.
 */
export function jsonRecordMapper(mapping: ResolvedMapping, first: Record<string, unknown>, file: string): (line: string) => LineResult {
  const problems: string[] = [];
  const get: Partial<Record<CanonicalField, Getter<Record<string, unknown>>>> = {};
  for (const field of Object.keys(defaultColumns) as CanonicalField[]) {
    const named = mapping.fields[field];
    const key = named ?? defaultColumns[field];
    const getter = keyGetter(key);
    if (getter(first) === undefined) {
      if (named !== undefined && !optionalWithDefault.includes(field)) problems.push(`fields.${field}: key "${named}" is not in the first record of ${file} (keys: ${Object.keys(first).join(', ')})`);
      else if (named === undefined && requiredFields.includes(field)) problems.push(`fields.${field}: not mapped, and the first record of ${file} has no "${key}" key (keys: ${Object.keys(first).join(', ')})`);
      if (named === undefined) continue;
    }
    get[field] = getter;
  }
  if (problems.length > 0) throw new MappingError(file, problems);
  const convert = makeConverter(mapping, { get }, 'ms', 'start');
  return (line) => {
    if (line.trim() === '') return null;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return { reject: 'not valid JSON' };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { reject: 'not a JSON object' };
    return convert(value as Record<string, unknown>);
  };
}

interface NginxRow {
  groups: RegExpExecArray;
  request: { path: string; query: string } | undefined;
}

/** nginx/Apache: fields name log_format variables (`$status` or `status`), `request_path` or `arg_NAME`. */
export function nginxRecordMapper(mapping: ResolvedMapping, file: string): (line: string) => LineResult {
  const logFormat = mapping.logFormat;
  if (!logFormat) throw new MappingError(file, ['logFormat: required for nginx logs (paste the log_format from your nginx.conf)']);
  const compiled = compileLogFormat(logFormat);
  const position = new Map<string, number>();
  compiled.variables.forEach((v, i) => {
    if (!position.has(v)) position.set(v, i + 1);
  });
  const requestVar = ['request', 'request_uri', 'uri'].find((v) => position.has(v));
  const has = (v: string): boolean => position.has(v);
  const defaults: Partial<Record<CanonicalField, string>> = {
    time: ['msec', 'time_iso8601', 'time_local'].find(has),
    actor: ['remote_user'].find(has),
    endpoint: requestVar ? 'request_path' : undefined,
    topics: requestVar ? 'arg_topics' : undefined,
    status: has('status') ? 'status' : undefined,
    duration: has('request_time') ? 'request_time' : undefined,
    bytes: ['body_bytes_sent', 'bytes_sent'].find(has),
    userAgent: has('http_user_agent') ? 'http_user_agent' : undefined,
  };
  const problems: string[] = [];
  const get: Partial<Record<CanonicalField, Getter<NginxRow>>> = {};
  for (const field of Object.keys(defaultColumns) as CanonicalField[]) {
    const named = mapping.fields[field];
    const name = (named ?? defaults[field])?.replace(/^\$/, '');
    if (name === undefined) {
      if (requiredFields.includes(field)) problems.push(`fields.${field}: not mapped, and no default applies to this log_format (variables: ${compiled.variables.map((v) => `$${v}`).join(' ')})`);
      continue;
    }
    const pos = position.get(name);
    if (pos !== undefined) {
      get[field] = (row) => {
        const v = row.groups[pos];
        return v !== undefined && v.includes('\\x') ? unescapeNginx(v) : v;
      };
    } else if (name === 'request_path' || name.startsWith('arg_')) {
      if (!requestVar) {
        problems.push(`fields.${field}: "${name}" needs $request (or $request_uri) in logFormat`);
        continue;
      }
      if (name === 'request_path') get[field] = (row) => row.request?.path;
      else {
        const arg = name.slice(4);
        get[field] = (row) => {
          const values = row.request ? queryValues(row.request.query, arg) : [];
          return values.length === 0 ? undefined : values.length === 1 ? values[0] : values.join(mapping.topicSeparator);
        };
      }
    } else {
      problems.push(`fields.${field}: "$${name}" is not a variable of logFormat (variables: ${compiled.variables.map((v) => `$${v}`).join(' ')})`);
    }
  }
  if (problems.length > 0) throw new MappingError(file, problems);
  const timeVar = (mapping.fields.time ?? defaults.time)?.replace(/^\$/, '');
  // nginx writes $time_local/$time_iso8601/$msec when the request finishes.
  const defaultTimeIs = timeVar === 'msec' || timeVar === 'time_local' || timeVar === 'time_iso8601' ? 'end' : 'start';
  const mappingForNginx: ResolvedMapping =
    mapping.timeFormat === 'auto' && timeVar === 'msec' ? { ...mapping, timeFormat: 'epoch_s' } : mapping;
  // $msec carries no zone; $time_local or $time_iso8601 beside it does.
  const zonePos = timeVar === 'msec' ? (position.get('time_local') ?? position.get('time_iso8601')) : undefined;
  const zoneTime: Getter<NginxRow> | undefined = zonePos === undefined ? undefined : (row) => row.groups[zonePos];
  const convert = makeConverter(mappingForNginx, { get, ...(zoneTime ? { zoneTime } : {}) }, 's', defaultTimeIs);
  const requestPos = requestVar ? position.get(requestVar)! : 0;
  const fullRequest = requestVar === 'request';
  return (line) => {
    if (line.trim() === '') return null;
    const groups = compiled.regex.exec(line);
    if (!groups) return { reject: 'does not match logFormat' };
    let request: NginxRow['request'];
    if (requestPos) {
      const text = groups[requestPos] ?? '';
      request = fullRequest ? parseRequestLine(text) : splitTarget('', text);
    }
    return convert({ groups, request });
  };
}

/** nginx writes '"', '\\', control and non-ASCII bytes of quoted variables as \\xHH. */
export function unescapeNginx(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) === 92 && value[i + 1] === 'x' && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 2, i + 4))) {
      bytes.push(parseInt(value.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      for (const b of Buffer.from(value[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function isFormat(text: string): text is Format {
  return text === 'csv' || text === 'tsv' || text === 'jsonl' || text === 'nginx';
}
