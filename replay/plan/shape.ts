// Shape: what-if traffic from the same logs. Parses `--shape` terms (docs/shape.md) into a typed
// Shape the plan applies to the model before drawing from it (replay/plan/shaped-model.ts).
// Pure: no model, no I/O; every bad term is collected, each named with what is wrong.

import { UsageError } from '../../core/errors.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { distributionNames, type DistributionName } from '../../db/model-types.js';

/** Distributions a shape may change; retryGap follows from the client's backoff, not from the model. */
export const shapeableDistributions = distributionNames.filter((n) => n !== 'retryGap') as Exclude<DistributionName, 'retryGap'>[];
export type ShapeableDistribution = (typeof shapeableDistributions)[number];

/** Count-valued distributions take plain numbers; the others (ms) take durations. */
const countDistributions: ReadonlySet<string> = new Set(['messagesPerPublish', 'controlTargets', 'rosterSize']);
/** Every name a term may start with, in the order errors list them. */
export const shapeNames: readonly string[] = [...shapeableDistributions, 'arrivals', 'pollTimeout', 'backoff'];

export type Replacement =
  | { kind: 'constant'; value: number }
  | { kind: 'lognormal'; median: number; p90: number }
  | { kind: 'exponential'; mean: number }
  | { kind: 'uniform'; min: number; max: number };

export type DistributionEdit = { kind: 'multiply'; factor: number } | { kind: 'offset'; by: number } | { kind: 'replace'; with: Replacement };

/** Clock times are minutes after midnight in the model's zone. */
export type ShapeTerm =
  | { text: string; kind: 'distribution'; name: ShapeableDistribution; edit: DistributionEdit }
  | { text: string; kind: 'surge'; atMinute: number; lengthMs: number }
  | { text: string; kind: 'arrivals'; factor: number; fromMinute: number; toMinute: number }
  | { text: string; kind: 'pollTimeout'; ms: number }
  | { text: string; kind: 'backoff'; baseMs?: number; capMs?: number };

export interface Shape {
  /** In the order given: distribution edits compose (`sessionDuration*2` then `sessionDuration+5m`). */
  terms: ShapeTerm[];
}

export const emptyShape: Shape = { terms: [] };

/** One UsageError for every bad term; `problems` has one line per term. */
export class ShapeError extends UsageError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} shape terms are invalid:\n  ${problems.join('\n  ')}`, '--shape');
    this.problems = problems;
  }
}

export function isCountDistribution(name: DistributionName): boolean {
  return countDistributions.has(name);
}

/**
 * Parses every --shape value (each may hold several terms separated by ';'). Throws one ShapeError
 * listing every bad term, each with the known names when the name itself is unknown.
 */
export function parseShape(values: readonly string[] | undefined): Shape {
  const terms: ShapeTerm[] = [];
  const problems: string[] = [];
  for (const value of values ?? []) {
    for (const raw of value.split(';')) {
      const text = raw.trim();
      if (text === '') continue;
      const parsed = parseTerm(text);
      if (typeof parsed === 'string') problems.push(`'${text}': ${parsed}`);
      else terms.push(parsed);
    }
  }
  for (const kind of ['pollTimeout', 'backoff'] as const) {
    const given = terms.filter((t) => t.kind === kind);
    if (given.length > 1) problems.push(`${kind} is given ${given.length} times (${given.map((t) => `'${t.text}'`).join(', ')}); give it once`);
  }
  if (problems.length > 0) throw new ShapeError(problems);
  return { terms };
}

/** The terms as given, normalised (no spaces): what a run stores and `runs`, `report`, `compare` show. */
export function shapeTexts(shape: Shape): string[] {
  return shape.terms.map((t) => t.text);
}

/** Two shapes are the same what-if when their normalised terms are equal, in order. */
export function sameShape(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

const termPattern = /^([A-Za-z]+)\s*([*=+-])\s*(.+)$/;

function parseTerm(input: string): ShapeTerm | string {
  const text = input.replace(/\s+/g, '');
  const m = termPattern.exec(text);
  if (!m) return `expected NAME*FACTOR, NAME+VALUE, NAME-VALUE or NAME=VALUE (e.g. learnerPublishInterval*0.5); known names: ${shapeNames.join(', ')}`;
  const [, name, op, value] = m as unknown as [string, string, '*' | '=' | '+' | '-', string];
  if (name === 'arrivals') return arrivalsTerm(text, op, value);
  if (name === 'pollTimeout') {
    if (op !== '=') return `pollTimeout takes '=' and a duration (pollTimeout=10s)`;
    const ms = parseDuration(value);
    if (ms === null || ms < 1000 || ms > 300_000) return `expected a duration from 1s to 300s, got '${value}'`;
    return { text, kind: 'pollTimeout', ms };
  }
  if (name === 'backoff') return backoffTerm(text, op, value);
  if (name === 'retryGap') return `retryGap follows from the client's backoff; shape it with backoff=base:2s,cap:60s`;
  if (!(shapeableDistributions as readonly string[]).includes(name)) {
    const near = closest(name, shapeNames);
    return `unknown name '${name}'${near ? ` (did you mean ${near}?)` : ''}; known names: ${shapeNames.join(', ')}`;
  }
  const dist = name as ShapeableDistribution;
  const counts = countDistributions.has(dist);
  const amount = (v: string): number | null => (counts ? plainNumber(v) : parseDuration(v));
  const what = counts ? 'a number (it counts)' : 'a duration like 10s or 40m';
  if (op === '*') {
    const factor = plainNumber(value);
    if (factor === null || !(factor > 0)) return `expected a positive factor after '*', got '${value}'`;
    return { text, kind: 'distribution', name: dist, edit: { kind: 'multiply', factor } };
  }
  if (op === '+' || op === '-') {
    const by = amount(value);
    if (by === null) return `expected ${what} after '${op}', got '${value}'`;
    return { text, kind: 'distribution', name: dist, edit: { kind: 'offset', by: op === '-' ? -by : by } };
  }
  const replacement = parseReplacement(value, amount, what, dist === 'proctorLeadTime');
  if (typeof replacement === 'string') return replacement;
  return { text, kind: 'distribution', name: dist, edit: { kind: 'replace', with: replacement } };
}

function parseReplacement(value: string, amount: (v: string) => number | null, what: string, signed: boolean): Replacement | string {
  const call = /^([a-z]+)\((.*)\)$/.exec(value);
  if (!call) {
    const v = amount(value.replace(/^-/, ''));
    if (v === null) return `expected ${what}, or lognormal(median=..,p90=..), exponential(mean=..), uniform(min=..,max=..); got '${value}'`;
    const sign = value.startsWith('-') ? -1 : 1;
    if (sign < 0 && !signed) return `expected a value of at least 0, got '${value}'`;
    return { kind: 'constant', value: sign * v };
  }
  const [, family, args] = call as unknown as [string, string, string];
  const params = new Map<string, number>();
  for (const part of args.split(',')) {
    const kv = /^([a-z0-9]+)=(.+)$/.exec(part);
    const v = kv ? amount(kv[2]!) : null;
    if (!kv || v === null) return `${family}(...): expected key=value pairs with ${what} as values, got '${part}'`;
    params.set(kv[1]!, v);
  }
  const need = (keys: string[]): string | null => {
    const missing = keys.filter((k) => !params.has(k));
    const extra = [...params.keys()].filter((k) => !keys.includes(k));
    if (missing.length === 0 && extra.length === 0) return null;
    return `${family}(...) takes ${keys.map((k) => `${k}=`).join(', ')}${missing.length > 0 ? `; missing ${missing.join(', ')}` : ''}${extra.length > 0 ? `; unknown ${extra.join(', ')}` : ''}`;
  };
  switch (family) {
    case 'lognormal': {
      const p = need(['median', 'p90']);
      if (p) return p;
      const median = params.get('median')!;
      const p90 = params.get('p90')!;
      if (!(median > 0) || !(p90 > median)) return `lognormal needs 0 < median < p90, got median ${median}, p90 ${p90}`;
      return { kind: 'lognormal', median, p90 };
    }
    case 'exponential': {
      const p = need(['mean']);
      if (p) return p;
      const mean = params.get('mean')!;
      if (!(mean > 0)) return `exponential needs a mean above 0`;
      return { kind: 'exponential', mean };
    }
    case 'uniform': {
      const p = need(['min', 'max']);
      if (p) return p;
      const min = params.get('min')!;
      const max = params.get('max')!;
      if (!(max > min)) return `uniform needs min < max, got ${min} and ${max}`;
      return { kind: 'uniform', min, max };
    }
    default:
      return `unknown distribution '${family}'; known: lognormal(median=..,p90=..), exponential(mean=..), uniform(min=..,max=..), or a constant`;
  }
}

function arrivalsTerm(text: string, op: string, value: string): ShapeTerm | string {
  if (op === '=') {
    const surge = /^surge\((\d{1,2}:\d{2}),([^)]+)\)$/.exec(value);
    if (!surge) return `expected arrivals=surge(HH:MM,DURATION), e.g. arrivals=surge(09:00,5m)`;
    const atMinute = clockMinute(surge[1]!);
    if (atMinute === null) return `'${surge[1]}' is not a time of day (HH:MM)`;
    const lengthMs = parseDuration(surge[2]!);
    if (lengthMs === null || lengthMs < 60_000 || lengthMs > 24 * 3_600_000) return `the surge lasts a duration from 1m to 24h, got '${surge[2]}'`;
    return { text, kind: 'surge', atMinute, lengthMs };
  }
  if (op === '*') {
    const m = /^([0-9.]+)(?:@(\d{1,2}:\d{2})-(\d{1,2}:\d{2}))?$/.exec(value);
    const factor = m ? plainNumber(m[1]!) : null;
    if (!m || factor === null || factor < 0) return `expected arrivals*FACTOR or arrivals*FACTOR@HH:MM-HH:MM, e.g. arrivals*1.5@09:00-10:00`;
    const fromMinute = m[2] === undefined ? 0 : clockMinute(m[2]);
    const toMinute = m[3] === undefined ? 24 * 60 : clockMinute(m[3], true);
    if (fromMinute === null || toMinute === null) return `'${m[2]}-${m[3]}' is not a range of times of day (HH:MM-HH:MM)`;
    if (!(toMinute > fromMinute)) return `the range ${m[2]}-${m[3]} must end after it starts`;
    return { text, kind: 'arrivals', factor, fromMinute, toMinute };
  }
  return `arrivals takes '=surge(HH:MM,DURATION)' or '*FACTOR[@HH:MM-HH:MM]'`;
}

function backoffTerm(text: string, op: string, value: string): ShapeTerm | string {
  if (op !== '=') return `expected backoff=base:DURATION,cap:DURATION (e.g. backoff=base:2s,cap:60s)`;
  const term: Extract<ShapeTerm, { kind: 'backoff' }> = { text, kind: 'backoff' };
  for (const part of value.split(',')) {
    const kv = /^(base|cap):(.+)$/.exec(part);
    const ms = kv ? parseDuration(kv[2]!) : null;
    if (!kv || ms === null || !(ms > 0)) return `expected base:DURATION and/or cap:DURATION (e.g. backoff=base:2s,cap:60s), got '${part}'`;
    if (kv[1] === 'base') term.baseMs = ms;
    else term.capMs = ms;
  }
  if (term.baseMs !== undefined && term.capMs !== undefined && term.capMs < term.baseMs) return `the cap (${formatDuration(term.capMs)}) is below the base (${formatDuration(term.baseMs)})`;
  return term;
}

function plainNumber(v: string): number | null {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(v)) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function clockMinute(hhmm: string, allowEndOfDay = false): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && (min > 0 || !allowEndOfDay))) return null;
  return h * 60 + min;
}

/** The known name within two edits of a misspelt one, for "did you mean". */
function closest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The distributions a shape changes (pollTimeout caps pollDuration). */
export function shapedDistributions(shape: Shape): Set<DistributionName> {
  const names = new Set<DistributionName>();
  for (const t of shape.terms) {
    if (t.kind === 'distribution') names.add(t.name);
    if (t.kind === 'pollTimeout') names.add('pollDuration');
  }
  return names;
}

/** What a shape asks of the virtual users' client behaviour (the runtime's options), if anything. */
export function shapeClient(shape: Shape): { pollTimeoutS?: number; backoff?: { baseMs?: number; capMs?: number } } {
  const out: { pollTimeoutS?: number; backoff?: { baseMs?: number; capMs?: number } } = {};
  for (const t of shape.terms) {
    if (t.kind === 'pollTimeout') out.pollTimeoutS = t.ms / 1000;
    if (t.kind === 'backoff') {
      out.backoff = {};
      if (t.baseMs !== undefined) out.backoff.baseMs = t.baseMs;
      if (t.capMs !== undefined) out.backoff.capMs = t.capMs;
    }
  }
  return out;
}
