// Declarative target profiles, the pure half: a profile (FILE.json, docs/targets.md "Profiles") is
// validated once, every problem collected with its JSON path, and compiled into a plan that renders
// the exact requests of a publish or a poll and reads a poll's answer. No I/O here: profile.ts
// loads the file and runs the plan over the shared HTTP layer.

import { InputError } from '../../core/errors.js';
import { encodePayload, payloadValue } from './payload.js';
import type { OutgoingMessage } from './types.js';
import {
  describe,
  parseText,
  parseValue,
  renderText,
  renderValue,
  templateUses,
  type RenderScope,
  type TemplatePlace,
  type TextTemplate,
  type ValueTemplate,
} from './profile-template.js';

export const profileVersion = 1;

/** A profile that cannot be used: every problem, each with its JSON path. */
export class ProfileError extends InputError {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`invalid target profile (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee docs/targets.md, "Profiles".`, { file });
    this.problems = problems;
  }
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
const methods: readonly Method[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** A request as the plan renders it: what TargetHttp.request takes, minus step/signal/dispatcher. */
export interface RenderedRequest {
  method: Method;
  /** Path and query string, appended to the target URL. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** How a status is read; 'default' means the shared policy (http.ts statusFailure). */
export type StatusClass = 'success' | 'empty' | 'retry' | 'fatal' | 'default';

/** A session's cursors: per topic (by rehearse topic) and per poll (by cursor value name). */
export interface CursorState {
  topic: Map<string, unknown>;
  poll: Record<string, unknown>;
}

/** One message item found in a poll answer, before its payload is decoded. */
export interface AnswerItem {
  payload: unknown;
  /** The bus's channel name for the item when the profile says where it is ('' when the item lacks it). */
  channel?: string;
}

export type PollRead = { ok: true; items: AnswerItem[]; cursors: CursorState } | { ok: false; why: string };

export interface AnswerView {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface CompiledProfile {
  name: string;
  maxTopicsPerPoll: number;
  channel(topic: string): string;
  /** The requests of one publish, in order, each with how many messages it carries. */
  publishRequests(actor: string, messages: readonly OutgoingMessage[]): Array<{ request: RenderedRequest; count: number }>;
  publishStatus(status: number): StatusClass;
  initialCursors(topics: readonly string[]): CursorState;
  pollRequest(actor: string, topics: readonly string[], cursors: CursorState, timeoutS: number): RenderedRequest;
  pollStatus(status: number): StatusClass;
  /** Reads a success answer: its message items and the cursors to send next (kept where the answer has none). */
  readPoll(answer: AnswerView, topics: readonly string[], cursors: CursorState): PollRead;
  /** Reads only the cursors (an empty answer); unchanged where the answer has none. */
  readCursors(answer: AnswerView, topics: readonly string[], cursors: CursorState): CursorState;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers: each records problems and returns undefined for a wrong value.

class Check {
  readonly problems: string[] = [];
  add(at: string, message: string): void {
    this.problems.push(`${at}: ${message}`);
  }
  object(v: unknown, at: string, known: readonly string[]): Record<string, unknown> | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.add(at, `expected an object, got ${describe(v)}`);
      return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!known.includes(key)) this.add(join(at, key), `unknown key (known: ${known.filter((k) => !k.startsWith('$')).join(', ')})`);
    }
    return o;
  }
  /** An object whose keys are the user's own (headers, query parameters, names). */
  map(v: unknown, at: string): Record<string, unknown> | undefined {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    this.add(at, `expected an object, got ${describe(v)}`);
    return undefined;
  }
  oneOf<T extends string>(v: unknown, at: string, options: readonly T[]): T | undefined {
    if (typeof v === 'string' && (options as readonly string[]).includes(v)) return v as T;
    this.add(at, `expected ${options.map((o) => JSON.stringify(o)).join(' or ')}, got ${describe(v)}`);
    return undefined;
  }
  string(v: unknown, at: string): string | undefined {
    if (typeof v === 'string') return v;
    this.add(at, `expected a string, got ${describe(v)}`);
    return undefined;
  }
}

function join(at: string, key: string): string {
  return at ? `${at}.${key}` : key;
}

// ---------------------------------------------------------------------------------------------
// Channel naming: prefix + topic with single characters replaced + suffix, kept one-to-one.

/** Characters a rehearse topic may contain. */
const topicAlphabet = /^[A-Za-z0-9._-]$/;

function compileChannel(v: unknown, check: Check): (topic: string) => string {
  if (v === undefined) return (topic) => topic;
  const o = check.object(v, 'channel', ['prefix', 'suffix', 'replace']);
  if (!o) return (topic) => topic;
  const prefix = o.prefix === undefined ? '' : (check.string(o.prefix, 'channel.prefix') ?? '');
  const suffix = o.suffix === undefined ? '' : (check.string(o.suffix, 'channel.suffix') ?? '');
  const replace = new Map<string, string>();
  if (o.replace !== undefined) {
    const r = check.map(o.replace, 'channel.replace');
    if (r) {
      const targets = new Set<string>();
      for (const [from, to] of Object.entries(r)) {
        const at = `channel.replace.${from}`;
        if (from.length !== 1 || !topicAlphabet.test(from)) check.add(at, 'only single characters of a rehearse topic (A-Z a-z 0-9 . _ -) can be replaced');
        else if (typeof to !== 'string' || [...to].length !== 1) check.add(at, `expected one character, got ${describe(to)}`);
        else if (topicAlphabet.test(to) && !(to in r)) check.add(at, `${JSON.stringify(to)} can itself appear in a topic, so two topics could get one channel name; pick a character outside A-Z a-z 0-9 . _ -`);
        else if (targets.has(to)) check.add(at, `${JSON.stringify(to)} already replaces another character, so two topics could get one channel name`);
        else {
          targets.add(to);
          replace.set(from, to);
        }
      }
    }
  }
  return (topic) => {
    let name = '';
    for (const c of topic) name += replace.get(c) ?? c;
    return prefix + name + suffix;
  };
}

// ---------------------------------------------------------------------------------------------
// Statuses.

interface StatusLists {
  lists: Array<[Exclude<StatusClass, 'default'>, Array<number | string>]>;
}

function compileStatus(v: unknown, at: string, classes: ReadonlyArray<Exclude<StatusClass, 'default'>>, defaults: Partial<Record<StatusClass, Array<number | string>>>, check: Check): StatusLists {
  const o = v === undefined ? {} : check.object(v, at, classes);
  const lists: StatusLists['lists'] = [];
  const seen = new Map<number | string, string>();
  for (const cls of classes) {
    const given = o?.[cls];
    let list: Array<number | string> = defaults[cls] ?? [];
    if (given !== undefined) {
      if (!Array.isArray(given)) {
        check.add(`${at}.${cls}`, `expected a list of statuses (200, "2xx"), got ${describe(given)}`);
        continue;
      }
      list = [];
      given.forEach((s, i) => {
        if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) list.push(s);
        else if (typeof s === 'string' && /^[1-5]xx$/.test(s)) list.push(s);
        else check.add(`${at}.${cls}[${i}]`, `expected a status 100-599 or a class like "4xx", got ${describe(s)}`);
      });
    }
    for (const s of list) {
      const before = seen.get(s);
      if (before) check.add(`${at}.${cls}`, `${JSON.stringify(s)} is also in ${at}.${before}`);
      seen.set(s, cls);
    }
    lists.push([cls, list]);
  }
  return { lists };
}

/** Exact statuses win over classes ("4xx"); otherwise lists are tried in order. */
function classify(lists: StatusLists, status: number): StatusClass {
  for (const [cls, list] of lists.lists) if (list.includes(status)) return cls;
  const family = `${Math.floor(status / 100)}xx`;
  for (const [cls, list] of lists.lists) if (list.includes(family)) return cls;
  return 'default';
}

// ---------------------------------------------------------------------------------------------
// Requests.

interface RequestTemplate {
  method: Method;
  path: TextTemplate;
  query: Array<[string, ValueTemplate]>;
  headers: Array<[string, TextTemplate]>;
  body?: ValueTemplate;
}

const requestKeys = ['method', 'path', 'query', 'headers', 'body'] as const;
const headerName = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

function compileRequest(o: Record<string, unknown>, at: string, place: Omit<TemplatePlace, 'at'>, check: Check): RequestTemplate | undefined {
  const problemsBefore = check.problems.length;
  const method = o.method === undefined ? 'POST' : check.oneOf(o.method, join(at, 'method'), methods);
  let path: TextTemplate | undefined;
  if (typeof o.path !== 'string' || !o.path.startsWith('/')) check.add(join(at, 'path'), `expected a path starting with "/", got ${describe(o.path)}`);
  else if (o.path.includes('?') || o.path.includes('#')) check.add(join(at, 'path'), 'a path holds no "?" or "#": put parameters in "query"');
  else path = parseText(o.path, join(at, 'path'), place.names, check.problems);
  const query: Array<[string, ValueTemplate]> = [];
  if (o.query !== undefined) {
    const q = check.map(o.query, join(at, 'query'));
    for (const [name, value] of Object.entries(q ?? {})) {
      const v = parseValue(value, { ...place, at: `${join(at, 'query')}.${name}` }, check.problems, false, true);
      if (v) query.push([name, v]);
    }
  }
  const headers: Array<[string, TextTemplate]> = [];
  if (o.headers !== undefined) {
    const h = check.map(o.headers, join(at, 'headers'));
    for (const [name, value] of Object.entries(h ?? {})) {
      if (!headerName.test(name)) check.add(`${join(at, 'headers')}.${name}`, 'not a valid HTTP header name');
      const t = parseText(value, `${join(at, 'headers')}.${name}`, place.names, check.problems);
      if (t) headers.push([name.toLowerCase(), t]);
    }
  }
  let body: ValueTemplate | undefined;
  if (o.body !== undefined) {
    if (method === 'GET') check.add(join(at, 'body'), 'a GET request has no body');
    body = parseValue(o.body, { ...place, at: join(at, 'body') }, check.problems);
  }
  // A JSON body says so unless the profile names its own content type.
  if (body && body.kind !== 'text' && !headers.some(([n]) => n === 'content-type')) headers.push(['content-type', { parts: ['application/json'], whole: false }]);
  if (check.problems.length > problemsBefore || !method || !path) return undefined;
  return body ? { method, path, query, headers, body } : { method, path, query, headers };
}

function uses(r: RequestTemplate, name: string | { each: true }): boolean {
  return templateUses(r.path, name) || r.query.some(([, v]) => templateUses(v, name)) || r.headers.some(([, t]) => templateUses(t, name)) || templateUses(r.body, name);
}

function render(r: RequestTemplate, scope: RenderScope, separator: string): RenderedRequest {
  // Path placeholders are percent-encoded; {channels} is encoded channel by channel around its literal separator.
  const path = renderText(r.path, scope.values, (name, text) =>
    name === 'channels' ? text.split(separator).map(encodeURIComponent).join(separator) : encodeURIComponent(text),
  );
  const params = new URLSearchParams();
  for (const [name, v] of r.query) {
    const value = renderValue(v, scope);
    for (const one of Array.isArray(value) ? value : [value]) {
      const text = typeof one === 'string' ? one : one === null || one === undefined ? '' : String(one);
      // An empty value (no cursor yet) leaves the parameter out.
      if (text !== '') params.append(name, text);
    }
  }
  const qs = params.toString();
  const headers: Record<string, string> = {};
  for (const [name, t] of r.headers) {
    const text = renderText(t, scope.values);
    if (text !== '') headers[name] = text;
  }
  const out: RenderedRequest = { method: r.method, path: qs ? `${path}?${qs}` : path, headers };
  if (r.body) {
    const value = renderValue(r.body, scope);
    out.body = r.body.kind === 'text' ? (typeof value === 'string' ? value : JSON.stringify(value)) : JSON.stringify(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cursors.

interface CursorValue {
  /** Placeholder name: "cursor" or "cursor.NAME". */
  placeholder: string;
  from: 'body' | 'header';
  path?: string[];
  header?: string;
  initial: unknown;
}

type CursorPlan = { scope: 'none' } | { scope: 'topic'; path: string[]; initial: unknown } | { scope: 'poll'; values: CursorValue[] };

const cursorValueKeys = ['from', 'path', 'header', 'initial'];

function compileCursorValue(o: Record<string, unknown>, at: string, placeholder: string, check: Check): CursorValue | undefined {
  const from = check.oneOf(o.from, join(at, 'from'), ['body', 'header'] as const);
  const initial = compileInitial(o.initial, join(at, 'initial'), check);
  if (from === 'body') {
    if (o.header !== undefined) check.add(join(at, 'header'), 'only with "from": "header"');
    const path = compilePath(o.path, join(at, 'path'), check);
    return path && { placeholder, from, path, initial };
  }
  if (from === 'header') {
    if (o.path !== undefined) check.add(join(at, 'path'), 'only with "from": "body"');
    if (typeof o.header !== 'string' || !headerName.test(o.header)) {
      check.add(join(at, 'header'), `expected a header name, got ${describe(o.header)}`);
      return undefined;
    }
    return { placeholder, from, header: o.header.toLowerCase(), initial };
  }
  return undefined;
}

function compileInitial(v: unknown, at: string, check: Check): unknown {
  if (v === undefined) return null;
  if (v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  check.add(at, `expected a string, a number or null, got ${describe(v)}`);
  return null;
}

/** "a.b.0" -> ["a", "b", "0"]; "" is the whole body. */
function compilePath(v: unknown, at: string, check: Check): string[] | undefined {
  if (typeof v !== 'string') {
    check.add(at, `expected a path into the answer such as "data.cursor" ("" for the whole body), got ${describe(v)}`);
    return undefined;
  }
  if (v === '') return [];
  const parts = v.split('.');
  if (parts.some((p) => p === '')) {
    check.add(at, `${JSON.stringify(v)} has an empty step`);
    return undefined;
  }
  return parts;
}

function compileCursor(v: unknown, check: Check): CursorPlan {
  if (v === undefined) return { scope: 'none' };
  const o = check.object(v, 'poll.cursor', ['scope', 'values', ...cursorValueKeys]);
  if (!o) return { scope: 'none' };
  const scope = check.oneOf(o.scope, 'poll.cursor.scope', ['topic', 'poll'] as const);
  if (scope === 'topic') {
    if (o.values !== undefined) check.add('poll.cursor.values', 'only with "scope": "poll" (one cursor per topic is read from one object)');
    if (o.from !== 'body') check.add('poll.cursor.from', `expected "body" (per-topic cursors are read from an object topic -> cursor in the answer), got ${describe(o.from)}`);
    if (o.header !== undefined) check.add('poll.cursor.header', 'only with "scope": "poll"');
    const path = compilePath(o.path, 'poll.cursor.path', check);
    const initial = compileInitial(o.initial, 'poll.cursor.initial', check);
    return path ? { scope, path, initial } : { scope: 'none' };
  }
  if (scope === 'poll') {
    if (o.values !== undefined) {
      for (const key of cursorValueKeys) if (o[key] !== undefined) check.add(`poll.cursor.${key}`, 'give either "values" or one cursor (from, path/header, initial), not both');
      const vs = check.map(o.values, 'poll.cursor.values');
      const values: CursorValue[] = [];
      for (const [name, spec] of Object.entries(vs ?? {})) {
        const at = `poll.cursor.values.${name}`;
        if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) check.add(at, 'a cursor value name is letters and digits, starting with a letter');
        const so = check.object(spec, at, cursorValueKeys);
        // A broken value still defines its placeholder, so its uses are not reported a second time.
        values.push((so && compileCursorValue(so, at, `cursor.${name}`, check)) ?? brokenCursor(`cursor.${name}`));
      }
      if (vs && Object.keys(vs).length === 0) check.add('poll.cursor.values', 'names no value');
      return { scope, values };
    }
    return { scope, values: [compileCursorValue(o, 'poll.cursor', 'cursor', check) ?? brokenCursor('cursor')] };
  }
  return { scope: 'none' };
}

/** Stands in for a cursor value with problems (the profile is refused anyway). */
function brokenCursor(placeholder: string): CursorValue {
  return { placeholder, from: 'header', header: '', initial: null };
}

function at(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const step of path) {
    if (Array.isArray(v) && /^\d+$/.test(step)) v = v[Number(step)];
    else if (typeof v === 'object' && v !== null && !Array.isArray(v)) v = (v as Record<string, unknown>)[step];
    else return undefined;
  }
  return v;
}

function headerValue(headers: AnswerView['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A cursor as the answer gives it: strings and numbers are kept as they are; anything else means "none here". */
function cursorOf(v: unknown): string | number | undefined {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Messages in a poll answer.

type MessagesPlan = { from: 'body' } | { from: 'list'; path: string[]; payload: string[]; channel?: string[] };

function compileMessages(v: unknown, check: Check): MessagesPlan | undefined {
  const o = check.object(v, 'poll.messages', ['from', 'path', 'payload', 'channel']);
  if (!o) return undefined;
  const from = check.oneOf(o.from, 'poll.messages.from', ['list', 'body'] as const);
  if (from === 'body') {
    for (const key of ['path', 'payload', 'channel']) if (o[key] !== undefined) check.add(`poll.messages.${key}`, 'only with "from": "list" (with "body" the whole answer body is one message)');
    return { from };
  }
  if (from === 'list') {
    const path = compilePath(o.path, 'poll.messages.path', check);
    const payload = o.payload === undefined ? [] : compilePath(o.payload, 'poll.messages.payload', check);
    const channel = o.channel === undefined ? undefined : compilePath(o.channel, 'poll.messages.channel', check);
    if (!path || !payload || (o.channel !== undefined && !channel)) return undefined;
    return channel ? { from, path, payload, channel } : { from, path, payload };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The profile.

const topKeys = ['version', 'name', 'description', '$schema', 'maxTopicsPerPoll', 'channel', 'publish', 'poll'];
const publishKeys = ['batch', ...requestKeys, 'status'];
const pollKeys = [...requestKeys, 'separator', 'cursor', 'status', 'messages'];
const messageNames = ['channel', 'topic', 'id', 'sentMs', 'payload', 'payloadValue'];

/** Validates and compiles a parsed profile; throws ProfileError listing every problem. `file` names it. */
export function compileProfile(input: unknown, file: string): CompiledProfile {
  const check = new Check();
  const o = check.object(input, '', topKeys);
  if (!o) throw new ProfileError(file, ['the profile must be a JSON object']);

  if (o.version !== undefined && o.version !== profileVersion) {
    check.add('version', `${JSON.stringify(o.version)} is not supported; this rehearse reads profile version ${profileVersion}`);
  }
  let name = file.replace(/^.*[\\/]/, '').replace(/\.json$/i, '');
  if (o.name !== undefined) {
    if (typeof o.name === 'string' && /^[A-Za-z0-9._-]+$/.test(o.name)) name = o.name;
    else check.add('name', `expected a name of letters, digits, ".", "_" or "-", got ${describe(o.name)}`);
  }
  if (o.description !== undefined && typeof o.description !== 'string') check.add('description', `expected a string, got ${describe(o.description)}`);
  let maxTopicsPerPoll = 1;
  if (o.maxTopicsPerPoll === undefined) check.add('maxTopicsPerPoll', 'missing: the most topics one long-poll may carry (1 if a poll names a single channel)');
  else if (typeof o.maxTopicsPerPoll === 'number' && Number.isInteger(o.maxTopicsPerPoll) && o.maxTopicsPerPoll >= 1 && o.maxTopicsPerPoll <= 100_000) maxTopicsPerPoll = o.maxTopicsPerPoll;
  else check.add('maxTopicsPerPoll', `expected an integer from 1 to 100000, got ${describe(o.maxTopicsPerPoll)}`);
  const channel = compileChannel(o.channel, check);

  // Publish.
  let publish: RequestTemplate | undefined;
  let batch: 'request' | 'message' | 'topic' = 'request';
  let publishStatus: StatusLists = { lists: [] };
  const p = o.publish === undefined ? (check.add('publish', 'missing: how to publish'), undefined) : check.object(o.publish, 'publish', publishKeys);
  if (p) {
    if (p.batch !== undefined) batch = check.oneOf(p.batch, 'publish.batch', ['request', 'message', 'topic'] as const) ?? 'request';
    const top = new Set(['actor', 'count', ...(batch === 'message' ? messageNames : batch === 'topic' ? ['channel', 'topic'] : [])]);
    const each = new Set(['actor', 'count', ...messageNames]);
    publish = compileRequest(p, 'publish', { names: top, each: 'messages', eachNames: each }, check);
    publishStatus = compileStatus(p.status, 'publish.status', ['success', 'retry', 'fatal'], { success: ['2xx'] }, check);
    if (publish) {
      if (batch !== 'message' && !uses(publish, { each: true })) check.add('publish', `with "batch": ${JSON.stringify(batch)} a request carries several messages: repeat them with {"$each": "messages", "template": ...} (or use "batch": "message")`);
      if (!uses(publish, 'payload') && !uses(publish, 'payloadValue')) check.add('publish', "no template sends {payload} or {payloadValue}: rehearse's message identity must travel in what the bus delivers");
    }
  }

  // Poll.
  let poll: RequestTemplate | undefined;
  let separator = ',';
  let cursor: CursorPlan = { scope: 'none' };
  let pollStatus: StatusLists = { lists: [] };
  let messages: MessagesPlan | undefined;
  const q = o.poll === undefined ? (check.add('poll', 'missing: how to long-poll'), undefined) : check.object(o.poll, 'poll', pollKeys);
  if (q) {
    if (q.separator !== undefined) {
      if (typeof q.separator === 'string' && q.separator.length > 0) separator = q.separator;
      else check.add('poll.separator', `expected a non-empty string, got ${describe(q.separator)}`);
    }
    cursor = compileCursor(q.cursor, check);
    const single = maxTopicsPerPoll === 1;
    const top = new Set(['actor', 'timeoutS', 'channels']);
    if (cursor.scope === 'poll') for (const v of cursor.values) top.add(v.placeholder);
    const each = new Set([...top, 'channel', 'topic']);
    if (cursor.scope === 'topic') each.add('cursor');
    if (single) for (const n of each) top.add(n);
    poll = compileRequest(q, 'poll', { names: top, each: 'topics', eachNames: each }, check);
    pollStatus = compileStatus(q.status, 'poll.status', ['success', 'empty', 'retry', 'fatal'], { success: ['2xx'], empty: [204] }, check);
    messages = q.messages === undefined ? (check.add('poll.messages', 'missing: where the messages are in an answer'), undefined) : compileMessages(q.messages, check);
    if (poll) {
      const namesTopics = uses(poll, 'channels') || uses(poll, { each: true }) || (single && (uses(poll, 'channel') || uses(poll, 'topic')));
      if (!namesTopics) check.add('poll', `nothing in the request names the topics: use {channels} or {"$each": "topics", ...}${single ? ' or {channel}' : ' (or set maxTopicsPerPoll to 1 and use {channel})'}`);
      if (cursor.scope === 'poll') for (const v of cursor.values) if (!uses(poll, v.placeholder)) check.add('poll.cursor', `{${v.placeholder}} is read from answers but never sent back: use it in the poll's path, query, headers or body`);
      if (cursor.scope === 'topic' && !uses(poll, 'cursor')) check.add('poll.cursor', '{cursor} is read from answers but never sent back: use it inside {"$each": "topics", ...}');
    }
  }

  if (check.problems.length > 0 || !publish || !poll || !messages) throw new ProfileError(file, check.problems.length ? check.problems : ['the profile is incomplete']);
  const publishT = publish;
  const pollT = poll;
  const messagesPlan = messages;
  const cursorPlan = cursor;

  const messageValues = (actor: string, count: number, m: OutgoingMessage): Record<string, unknown> => ({
    actor,
    count,
    channel: channel(m.topic),
    topic: m.topic,
    id: m.id,
    sentMs: m.sentMs,
    payload: encodePayload(m),
    payloadValue: payloadValue(m),
  });

  const pollValues = (actor: string, topics: readonly string[], cursors: CursorState, timeoutS: number): Record<string, unknown> => {
    const values: Record<string, unknown> = { actor, timeoutS, channels: topics.map(channel).join(separator) };
    if (cursorPlan.scope === 'poll') for (const v of cursorPlan.values) values[v.placeholder] = cursors.poll[v.placeholder] ?? null;
    if (maxTopicsPerPoll === 1 && topics.length === 1) Object.assign(values, topicValues(topics[0]!, cursors));
    return values;
  };

  const topicValues = (topic: string, cursors: CursorState): Record<string, unknown> => {
    const values: Record<string, unknown> = { channel: channel(topic), topic };
    if (cursorPlan.scope === 'topic') values.cursor = cursors.topic.get(topic) ?? null;
    return values;
  };

  const readCursors = (answer: AnswerView, body: unknown, topics: readonly string[], cursors: CursorState): CursorState => {
    const next: CursorState = { topic: new Map(cursors.topic), poll: { ...cursors.poll } };
    if (cursorPlan.scope === 'topic') {
      const byChannel = at(body, cursorPlan.path);
      if (typeof byChannel === 'object' && byChannel !== null) {
        for (const topic of topics) {
          const c = cursorOf((byChannel as Record<string, unknown>)[channel(topic)]);
          if (c !== undefined) next.topic.set(topic, c);
        }
      }
    } else if (cursorPlan.scope === 'poll') {
      for (const v of cursorPlan.values) {
        const c = v.from === 'header' ? headerValue(answer.headers, v.header!) : cursorOf(at(body, v.path!));
        if (c !== undefined && c !== '') next.poll[v.placeholder] = c;
      }
    }
    return next;
  };

  const bodyCursors = cursorPlan.scope === 'topic' || (cursorPlan.scope === 'poll' && cursorPlan.values.some((v) => v.from === 'body'));
  const parseJson = (text: string): { ok: true; value: unknown } | { ok: false } => {
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch {
      return { ok: false };
    }
  };

  return {
    name,
    maxTopicsPerPoll,
    channel,
    publishRequests(actor, msgs) {
      const parts: OutgoingMessage[][] = [];
      if (batch === 'request') parts.push([...msgs]);
      else if (batch === 'message') for (const m of msgs) parts.push([m]);
      else {
        // Runs of one topic, in order, so "the leading messages were stored" stays exact on a failure.
        for (const m of msgs) {
          const last = parts[parts.length - 1];
          if (last && last[0]!.topic === m.topic) last.push(m);
          else parts.push([m]);
        }
      }
      return parts
        .filter((part) => part.length > 0 || batch === 'request')
        .map((part) => {
          const items = part.map((m) => messageValues(actor, part.length, m));
          const values: Record<string, unknown> = { actor, count: part.length };
          if (batch === 'message') Object.assign(values, items[0]);
          if (batch === 'topic') Object.assign(values, { channel: channel(part[0]!.topic), topic: part[0]!.topic });
          return { request: render(publishT, { values, items }, separator), count: part.length };
        });
    },
    publishStatus: (status) => classify(publishStatus, status),
    initialCursors(topics) {
      const state: CursorState = { topic: new Map(), poll: {} };
      if (cursorPlan.scope === 'topic') for (const t of topics) state.topic.set(t, cursorPlan.initial);
      if (cursorPlan.scope === 'poll') for (const v of cursorPlan.values) state.poll[v.placeholder] = v.initial;
      return state;
    },
    pollRequest(actor, topics, cursors, timeoutS) {
      const values = pollValues(actor, topics, cursors, timeoutS);
      return render(pollT, { values, items: topics.map((t) => topicValues(t, cursors)) }, separator);
    },
    pollStatus: (status) => classify(pollStatus, status),
    readPoll(answer, topics, cursors) {
      if (messagesPlan.from === 'body') {
        let body: unknown;
        if (bodyCursors) {
          const parsed = parseJson(answer.text);
          body = parsed.ok ? parsed.value : undefined;
        }
        const items: AnswerItem[] = answer.text === '' ? [] : [{ payload: answer.text }];
        return { ok: true, items, cursors: readCursors(answer, body, topics, cursors) };
      }
      // An empty body on a success status is an answer with nothing in it.
      if (answer.text.trim() === '') return { ok: true, items: [], cursors: readCursors(answer, undefined, topics, cursors) };
      const parsed = parseJson(answer.text);
      if (!parsed.ok) return { ok: false, why: 'poll answer is not JSON' };
      const list = at(parsed.value, messagesPlan.path);
      if (!Array.isArray(list)) return { ok: false, why: `poll answer has no list at ${JSON.stringify(messagesPlan.path.join('.'))}` };
      const items = list.map((item): AnswerItem => {
        const payload = at(item, messagesPlan.payload);
        if (!messagesPlan.channel) return { payload };
        const on = at(item, messagesPlan.channel);
        return { payload, channel: typeof on === 'string' ? on : '' };
      });
      return { ok: true, items, cursors: readCursors(answer, parsed.value, topics, cursors) };
    },
    readCursors(answer, topics, cursors) {
      let body: unknown;
      if (bodyCursors && answer.text.trim() !== '') {
        const parsed = parseJson(answer.text);
        if (parsed.ok) body = parsed.value;
      }
      return readCursors(answer, body, topics, cursors);
    },
  };
}
