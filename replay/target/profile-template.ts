// The template language of declarative target profiles (docs/targets.md, "Profiles"): strings with
// `{placeholder}`s, JSON values built from them, and one construct, `$each`, that repeats a
// template over the messages of a publish or the topics of a poll. Small and total on purpose:
// every placeholder is checked against the ones its place defines when the profile is loaded, so
// rendering never meets an unknown name, and nothing is ever evaluated. Pure.

/** One piece of a string template: literal text, or a placeholder (`text` when written `{name:text}`). */
export type TextPart = string | { name: string; text: boolean };

export interface TextTemplate {
  parts: TextPart[];
  /** The whole string is one placeholder: in a JSON body it keeps the value's own type (unless `:text`). */
  whole: boolean;
}

export type ValueTemplate =
  | { kind: 'text'; t: TextTemplate }
  | { kind: 'literal'; value: number | boolean | null }
  | { kind: 'array'; items: ValueTemplate[] }
  | { kind: 'object'; entries: Array<[string, ValueTemplate]> }
  /** `{"$each": "messages"|"topics", "template": T}` -> a list; with `"key"`, an object key -> T. */
  | { kind: 'each'; over: EachList; template: ValueTemplate; key?: TextTemplate };

export type EachList = 'messages' | 'topics';

/** What a template is checked against: the placeholders defined here, and the list `$each` may walk. */
export interface TemplatePlace {
  /** JSON path of the template in the profile file, for problems. */
  at: string;
  names: ReadonlySet<string>;
  /** The list `$each` may repeat over here (publish: messages; poll: topics); none in headers' values. */
  each?: EachList;
  /** Placeholders defined inside `$each` (the item's own: channel, id, cursor...). */
  eachNames?: ReadonlySet<string>;
}

const placeholderPattern = /^([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)?)(?::(text))?$/;

/** Parses `a {name} b`; `{{` and `}}` are literal braces. Undefined (with problems) when it is wrong. */
export function parseText(source: unknown, at: string, names: ReadonlySet<string>, problems: string[]): TextTemplate | undefined {
  if (typeof source !== 'string') {
    problems.push(`${at}: expected a string template, got ${describe(source)}`);
    return undefined;
  }
  const parts: TextPart[] = [];
  let literal = '';
  let ok = true;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '{' && source[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (c === '}' && source[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (c === '}') {
      problems.push(`${at}: a lone "}" at character ${i + 1} of ${JSON.stringify(source)} (write "}}" for a literal brace)`);
      ok = false;
    } else if (c === '{') {
      const end = source.indexOf('}', i + 1);
      if (end < 0) {
        problems.push(`${at}: "{" at character ${i + 1} of ${JSON.stringify(source)} is never closed (write "{{" for a literal brace)`);
        ok = false;
        break;
      }
      const inside = source.slice(i + 1, end);
      const m = placeholderPattern.exec(inside);
      if (!m) {
        problems.push(`${at}: "{${inside}}" is not a placeholder (write {name} or {name:text})`);
        ok = false;
      } else if (!names.has(m[1]!)) {
        problems.push(`${at}: unknown placeholder {${m[1]}} (known here: ${[...names].sort().map((n) => `{${n}}`).join(', ')})`);
        ok = false;
      } else {
        if (literal) parts.push(literal);
        literal = '';
        parts.push({ name: m[1]!, text: m[2] === 'text' });
      }
      i = end;
    } else {
      literal += c;
    }
  }
  if (literal) parts.push(literal);
  if (!ok) return undefined;
  return { parts, whole: parts.length === 1 && typeof parts[0] !== 'string' };
}

/** Parses a JSON value template (a body, or a query value when `scalarOnly`). */
export function parseValue(source: unknown, place: TemplatePlace, problems: string[], inEach = false, scalarOnly = false): ValueTemplate | undefined {
  const at = place.at;
  if (typeof source === 'string') {
    const t = parseText(source, at, inEach && place.eachNames ? place.eachNames : place.names, problems);
    return t && { kind: 'text', t };
  }
  if (scalarOnly && !isEachObject(source)) {
    problems.push(`${at}: expected a string template or {"$each": ..., "template": "..."}, got ${describe(source)}`);
    return undefined;
  }
  if (typeof source === 'number' || typeof source === 'boolean' || source === null) return { kind: 'literal', value: source };
  if (Array.isArray(source)) {
    const items: ValueTemplate[] = [];
    let ok = true;
    source.forEach((item, i) => {
      const v = parseValue(item, { ...place, at: `${at}[${i}]` }, problems, inEach);
      if (v) items.push(v);
      else ok = false;
    });
    return ok ? { kind: 'array', items } : undefined;
  }
  if (typeof source !== 'object') {
    problems.push(`${at}: expected a JSON value template, got ${describe(source)}`);
    return undefined;
  }
  const o = source as Record<string, unknown>;
  if ('$each' in o) return parseEach(o, place, problems, inEach, scalarOnly);
  const entries: Array<[string, ValueTemplate]> = [];
  let ok = true;
  for (const [key, value] of Object.entries(o)) {
    if (key.startsWith('$')) {
      problems.push(`${at}.${key}: unknown construct (the only one is "$each"; a key starting with "$" is reserved)`);
      ok = false;
      continue;
    }
    const v = parseValue(value, { ...place, at: `${at}.${key}` }, problems, inEach);
    if (v) entries.push([key, v]);
    else ok = false;
  }
  return ok ? { kind: 'object', entries } : undefined;
}

function parseEach(o: Record<string, unknown>, place: TemplatePlace, problems: string[], inEach: boolean, scalarOnly: boolean): ValueTemplate | undefined {
  const at = place.at;
  let ok = true;
  for (const key of Object.keys(o)) {
    if (key !== '$each' && key !== 'template' && key !== 'key') {
      problems.push(`${at}.${key}: unknown key in "$each" (known: $each, template, key)`);
      ok = false;
    }
  }
  if (inEach) {
    problems.push(`${at}: "$each" cannot be nested in another "$each"`);
    return undefined;
  }
  if (!place.each || !place.eachNames) {
    problems.push(`${at}.$each: not allowed here`);
    return undefined;
  }
  if (o.$each !== place.each) {
    problems.push(`${at}.$each: expected ${JSON.stringify(place.each)} here, got ${describe(o.$each)}`);
    ok = false;
  }
  if (!('template' in o)) {
    problems.push(`${at}.template: missing (the template repeated for each of the ${place.each})`);
    return undefined;
  }
  const template = parseValue(o.template, { ...place, at: `${at}.template` }, problems, true, scalarOnly);
  let key: TextTemplate | undefined;
  if ('key' in o) {
    if (scalarOnly) {
      problems.push(`${at}.key: not allowed in a query value (a repeated parameter is a list)`);
      ok = false;
    } else {
      key = parseText(o.key, `${at}.key`, place.eachNames, problems);
      if (!key) ok = false;
    }
  }
  if (!ok || !template) return undefined;
  return key ? { kind: 'each', over: place.each, template, key } : { kind: 'each', over: place.each, template };
}

function isEachObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && '$each' in v;
}

/** The values of one rendering: top-level placeholders, and one scope per item for `$each`. */
export interface RenderScope {
  values: Readonly<Record<string, unknown>>;
  /** The items `$each` walks (each item's own placeholders, merged over `values`). */
  items?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

/** A value as text: strings as they are, null/undefined as "", objects as JSON. */
export function valueText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Renders a string template; `encode` is applied to each placeholder's text (paths percent-encode). */
export function renderText(t: TextTemplate, values: Readonly<Record<string, unknown>>, encode: (name: string, text: string) => string = (_n, s) => s): string {
  let out = '';
  for (const p of t.parts) out += typeof p === 'string' ? p : encode(p.name, valueText(values[p.name]));
  return out;
}

/** Renders a JSON value template. A string that is one placeholder keeps the value's type (`{id:text}` forces text). */
export function renderValue(v: ValueTemplate, scope: RenderScope, values: Readonly<Record<string, unknown>> = scope.values): unknown {
  switch (v.kind) {
    case 'literal':
      return v.value;
    case 'text': {
      const only = v.t.whole ? v.t.parts[0] : undefined;
      if (only !== undefined && typeof only !== 'string' && !only.text) {
        const value = values[only.name];
        return value === undefined ? null : value;
      }
      return renderText(v.t, values);
    }
    case 'array':
      return v.items.map((item) => renderValue(item, scope, values));
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [key, value] of v.entries) o[key] = renderValue(value, scope, values);
      return o;
    }
    case 'each': {
      const items = (scope.items ?? []).map((item) => ({ ...values, ...item }));
      if (!v.key) return items.map((item) => renderValue(v.template, scope, item));
      const o: Record<string, unknown> = {};
      for (const item of items) o[renderText(v.key, item)] = renderValue(v.template, scope, item);
      return o;
    }
  }
}

/** Whether a template uses a placeholder (anywhere, `$each` included) or a `$each`. */
export function templateUses(v: ValueTemplate | TextTemplate | undefined, name: string | { each: true }): boolean {
  if (!v) return false;
  if ('parts' in v) return typeof name === 'string' && v.parts.some((p) => typeof p !== 'string' && p.name === name);
  switch (v.kind) {
    case 'literal':
      return false;
    case 'text':
      return templateUses(v.t, name);
    case 'array':
      return v.items.some((i) => templateUses(i, name));
    case 'object':
      return v.entries.some(([, e]) => templateUses(e, name));
    case 'each':
      return typeof name !== 'string' || templateUses(v.template, name) || templateUses(v.key, name);
  }
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}
