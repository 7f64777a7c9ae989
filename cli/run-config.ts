// The run configuration file (`--config rehearse.json`, docs/config.md): a rehearsal written down,
// reviewed and versioned like code. This module only turns the file into the raw flag values the
// command line would have given (strings and repeatable lines); replay, plan and demo validate
// those exactly as they validate typed flags, so there is one validation path. Flags given on the
// command line win over the file. Parsing and merging are pure; readRunConfig is the only I/O.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RehearseError, UsageError } from '../core/errors.js';
import { isSecretName, redactUrl } from '../core/redact.js';

export const runConfigVersion = 1;

/** The commands that read a run configuration, each taking the keys whose flags it has. */
export type RunConfigCommand = 'replay' | 'plan' | 'demo';

/** One value the file gives, as the flag it stands for. */
export interface ConfigFlag {
  /** commander's attribute name, e.g. `pollTimeout`. */
  attribute: string;
  /** How a user spells the flag, e.g. `--poll-timeout`. */
  flag: string;
  /** The raw value, as typed on a command line; repeatable flags are lists of lines. */
  value: string | string[];
  /** Where it is in the file, e.g. `plan.scale` or `headers.Authorization`. */
  path: string;
  commands: readonly RunConfigCommand[];
}

export interface RunConfig {
  /** The file as the user named it; errors start with it. */
  source: string;
  /** Hex sha256 of the file's bytes: stored with the run, so a run says exactly which file it came from. */
  sha256: string;
  flags: ConfigFlag[];
}

/** Every problem of a run configuration at once, each starting with the file and the JSON path. */
export class RunConfigError extends RehearseError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    const lines = problems.map((p) => `${source}: ${p}`);
    super('REHEARSE_USAGE', `${lines.length === 1 ? lines[0] : `${lines.length} problems in the run configuration:\n  ${lines.join('\n  ')}`}\nSee docs/config.md.`);
    this.problems = problems;
  }
}

const all: readonly RunConfigCommand[] = ['replay', 'plan', 'demo'];
const replayOnly: readonly RunConfigCommand[] = ['replay'];
const replayAndPlan: readonly RunConfigCommand[] = ['replay', 'plan'];
const replayAndDemo: readonly RunConfigCommand[] = ['replay', 'demo'];

type Kind = 'string' | 'number' | 'integer' | 'duration' | 'url' | 'lines';

interface Field {
  attribute: string;
  flag: string;
  kind: Kind;
  /** What the value should be, as an error says it ("expected a positive number"). */
  expected: string;
  commands: readonly RunConfigCommand[];
}

const field = (attribute: string, flag: string, kind: Kind, expected: string, commands: readonly RunConfigCommand[]): Field => ({ attribute, flag, kind, expected, commands });

/** Top-level keys that stand for one flag each. */
const topFields: Record<string, Field> = {
  db: field('db', '--db', 'string', 'the model database path', replayAndPlan),
  results: field('results', '--results', 'string', 'a database path', replayOnly),
  target: field('target', '--target', 'url', 'the base URL of the bus, e.g. "http://127.0.0.1:8080"', replayAndDemo),
  protocol: field('protocol', '--protocol', 'string', 'v1, nchan, bayeux, a profile FILE.json or a module FILE.mjs', replayAndDemo),
  slo: field('slo', '--slo', 'string', 'an SLO like "p95<=2s, lost>15s, duplicates=0"', replayOnly),
  release: field('release', '--release', 'string', 'a release label like "2.4"', replayOnly),
  pollTimeout: field('pollTimeout', '--poll-timeout', 'number', 'a number of seconds', replayOnly),
  publishConnections: field('publishConnections', '--publish-connections', 'integer', 'a positive integer', replayOnly),
  maxLag: field('maxLag', '--max-lag', 'duration', 'a duration like "200ms"', replayOnly),
};

/** `plan.*`: the plan's flags. */
const planFields: Record<string, Field> = {
  scale: field('scale', '--scale', 'number', 'a positive number', all),
  mode: field('mode', '--mode', 'string', '"sample" or "clone"', replayAndPlan),
  window: field('window', '--window', 'string', '"peak", "all", "HH:MM-HH:MM" or an ISO interval', replayAndPlan),
  duration: field('duration', '--duration', 'duration', 'a duration like "10m"', all),
  speed: field('speed', '--speed', 'number', 'a positive number', all),
  seed: field('seed', '--seed', 'integer', 'a non-negative integer', replayAndPlan),
  ramp: field('ramp', '--ramp', 'duration', 'a duration like "2m"', replayAndPlan),
  shard: field('shard', '--shard', 'string', 'a share like "0/4"', replayAndPlan),
  day: field('day', '--day', 'string', 'a day of the model: "YYYY-MM-DD", "peak" or "all"', replayAndPlan),
  shape: field('shape', '--shape', 'lines', 'a list of what-if terms like ["learnerPublishInterval*0.5", "rosterSize=60"] (docs/shape.md)', all),
};

const backoffFields: Record<string, Field> = {
  base: field('backoffBase', '--backoff-base', 'duration', 'a duration like "1s"', replayOnly),
  cap: field('backoffCap', '--backoff-cap', 'duration', 'a duration like "30s"', replayOnly),
};

const scrapeFields: Record<string, Field> = {
  url: field('scrape', '--scrape', 'url', 'a metrics URL like "http://127.0.0.1:8080/metrics"', replayOnly),
  interval: field('scrapeInterval', '--scrape-interval', 'duration', 'a duration like "5s"', replayOnly),
};

const otherTopKeys = ['version', '$schema', 'description', 'plan', 'backoff', 'scrape', 'headers', 'targetOptions'];
const knownTopKeys = [...Object.keys(topFields), ...otherTopKeys];

/**
 * Header names whose values are credentials. A literal value for one of them is refused: the file
 * is meant to be committed and reviewed, so it may only say which environment variable holds it.
 */
export function isCredentialHeader(name: string): boolean {
  return /authorization|cookie/i.test(name) || isSecretName(name);
}

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));

/** Validates the file's text (its structure and types) and lists the flags it gives. Pure. */
export function parseRunConfig(text: string, source: string): RunConfig {
  const sha256 = createHash('sha256').update(text).digest('hex');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RunConfigError(source, [`not valid JSON (${(err as Error).message})`]);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RunConfigError(source, [`expected a JSON object like {"version": 1, "target": "http://127.0.0.1:8080"}, got ${show(json)}`]);
  }
  const problems: string[] = [];
  const flags: ConfigFlag[] = [];
  const doc = json as Record<string, unknown>;

  if (doc.version === undefined) problems.push(`version: required; write "version": ${runConfigVersion}`);
  else if (doc.version !== runConfigVersion) problems.push(`version: ${show(doc.version)} is not supported; this rehearse reads run configuration version ${runConfigVersion}`);
  if (doc.description !== undefined && typeof doc.description !== 'string') problems.push(`description: expected a string, got ${show(doc.description)}`);

  /** One scalar: checks its JSON type and records it as the flag's raw text. */
  const scalar = (f: Field, value: unknown, at: string): void => {
    const bad = (): void => void problems.push(`${at}: expected ${f.expected}, got ${show(value)}`);
    let raw: string | string[];
    switch (f.kind) {
      case 'lines':
        // A repeatable flag: a list of non-empty strings, each what one use of the flag would say.
        if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' || v.trim() === '')) return bad();
        raw = value as string[];
        break;
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) return bad();
        raw = String(value);
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) return bad();
        raw = String(value);
        break;
      case 'duration':
      case 'string':
        if (typeof value !== 'string' || value.trim() === '') return bad();
        raw = value;
        break;
      case 'url':
        if (typeof value !== 'string' || value.trim() === '') return bad();
        if (redactUrl(value) !== value) {
          // Never echo it: the point is that it holds a secret.
          problems.push(`${at}: the URL holds a credential (user:password@ or a secret-looking query parameter); a run configuration must never hold a secret: send it as a header with an "env:VAR" value, or give ${f.flag} on the command line`);
          return;
        }
        raw = value;
        break;
    }
    flags.push({ attribute: f.attribute, flag: f.flag, value: raw, path: at, commands: f.commands });
  };

  /** An object whose keys are all scalar fields. */
  const group = (key: string, fields: Record<string, Field>): void => {
    const value = doc[key];
    if (value === undefined) return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${key}: expected an object with ${Object.keys(fields).join(', ')}, got ${show(value)}`);
      return;
    }
    for (const [name, v] of Object.entries(value)) {
      const f = fields[name];
      if (f) scalar(f, v, `${key}.${name}`);
      else problems.push(`${key}.${name}: unknown key (known: ${Object.keys(fields).join(', ')})`);
    }
  };

  for (const [key, value] of Object.entries(doc)) {
    const f = topFields[key];
    if (f) scalar(f, value, key);
    else if (!otherTopKeys.includes(key)) problems.push(`${key}: unknown key (known: ${knownTopKeys.filter((k) => k !== '$schema').join(', ')})`);
  }
  group('plan', planFields);
  group('backoff', backoffFields);
  if (typeof doc.scrape === 'string') scalar(scrapeFields.url!, doc.scrape, 'scrape');
  else group('scrape', scrapeFields);

  const targetOptions = doc.targetOptions;
  if (targetOptions !== undefined) {
    if (typeof targetOptions !== 'object' || targetOptions === null || Array.isArray(targetOptions)) {
      problems.push(`targetOptions: expected an object of protocol settings like {"subPath": "/sub"}, got ${show(targetOptions)}`);
    } else {
      const lines: string[] = [];
      for (const [key, v] of Object.entries(targetOptions)) {
        const at = `targetOptions.${key}`;
        if (!/^[A-Za-z0-9._-]+$/.test(key)) problems.push(`${at}: a protocol setting's name is made of [A-Za-z0-9._-]`);
        else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') problems.push(`${at}: expected a string, number or boolean, got ${show(v)}`);
        else if (isSecretName(key)) problems.push(`${at}: looks like a secret, and a run configuration must never hold one: give --target-option ${key}=... on the command line`);
        else lines.push(`${key}=${String(v)}`);
      }
      if (lines.length > 0) flags.push({ attribute: 'targetOption', flag: '--target-option', value: lines, path: 'targetOptions', commands: replayAndDemo });
    }
  }

  const headers = doc.headers;
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      problems.push(`headers: expected an object of header name -> value like {"Authorization": "env:BUS_TOKEN"}, got ${show(headers)}`);
    } else {
      const lines: string[] = [];
      for (const [name, v] of Object.entries(headers)) {
        const at = `headers.${name}`;
        if (typeof v !== 'string') problems.push(`${at}: expected a string ("env:VAR" reads $VAR), got ${typeof v === 'object' ? show(v) : typeof v}`);
        else if (isCredentialHeader(name) && !/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(v)) {
          problems.push(`${at}: a credential never goes in a run configuration; write "env:VAR" and export VAR before running (e.g. "env:BUS_TOKEN")`);
        } else lines.push(`${name}: ${v}`);
      }
      if (lines.length > 0) flags.push({ attribute: 'header', flag: '--header', value: lines, path: 'headers', commands: replayOnly });
    }
  }

  if (problems.length > 0) throw new RunConfigError(source, problems);
  return { source, sha256, flags };
}

/** Reads and parses a run configuration; `file` is named in every error as given. */
export function readRunConfig(file: string): RunConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RehearseError('REHEARSE_USAGE', `--config: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseRunConfig(text, file);
}

type Flags = Record<string, unknown>;

/** A run configuration applied to one command's flags. */
export interface AppliedRunConfig {
  /** The file as the user named it. */
  source: string;
  /** The flags with the file's values filled in wherever the command line did not give one. */
  flags: Flags;
  /** What the run stores: which file it came from (absolute path) and its sha256. */
  record: { path: string; sha256: string };
  /** `--scale: expected ...` -> `rehearse.json: plan.scale (--scale): expected ...` for values from the file. */
  attribute(problem: string): string;
}

/**
 * Fills the file's values in for every flag the command line did not give (`sourceOf` is commander's
 * getOptionValueSource: 'cli' when typed, 'default' or undefined otherwise). Repeatable flags merge
 * by name: a `--header` or `--target-option` on the command line replaces the file's entry of the
 * same name and keeps the others. Keys for flags `command` does not have are left out. Pure.
 */
export function mergeRunConfig(flags: Flags, config: RunConfig, command: RunConfigCommand, sourceOf: (attribute: string) => string | undefined, cwd = '.'): AppliedRunConfig {
  const merged: Flags = { ...flags };
  const origins = new Map<string, string>();
  for (const f of config.flags) {
    if (!f.commands.includes(command)) continue;
    if (Array.isArray(f.value)) {
      const given = Array.isArray(flags[f.attribute]) && sourceOf(f.attribute) === 'cli' ? (flags[f.attribute] as string[]) : [];
      const nameOf = f.attribute === 'header' ? (line: string) => line.slice(0, line.indexOf(':')).trim().toLowerCase() : (line: string) => line.slice(0, line.indexOf('=')).trim();
      const overridden = new Set(given.map(nameOf));
      const fromFile = f.value.filter((line) => !overridden.has(nameOf(line)));
      merged[f.attribute] = [...fromFile, ...given];
      // Header problems name the header (`--header Authorization: ...`); protocol settings are
      // checked by the protocol, whose messages name the setting itself.
      if (f.attribute === 'header') for (const line of fromFile) {
        const name = line.slice(0, line.indexOf(':')).trim();
        origins.set(`${f.flag} ${name}`, `${f.path}.${name}`);
      }
    } else if (sourceOf(f.attribute) !== 'cli') {
      merged[f.attribute] = f.value;
      origins.set(f.flag, f.path);
    }
  }
  const keys = [...origins.keys()].sort((a, b) => b.length - a.length);
  return {
    source: config.source,
    flags: merged,
    record: { path: path.resolve(cwd, config.source), sha256: config.sha256 },
    attribute(problem: string): string {
      // Keeps the indentation of a line from a list of problems.
      const indent = /^\s*/.exec(problem)![0];
      const line = problem.slice(indent.length);
      const key = keys.find((k) => line.startsWith(k) && /^[:\s]/.test(line.slice(k.length)));
      if (key === undefined) return problem;
      return `${indent}${config.source}: ${origins.get(key)} (${key.split(' ')[0]})${line.slice(key.length)}`;
    },
  };
}

/** Reads `--config` (when given) and merges it into a commander action's flags. */
export function applyRunConfig(command: { getOptionValueSource(key: string): string | undefined }, flags: Flags, which: RunConfigCommand): AppliedRunConfig | undefined {
  const file = flags.config;
  if (typeof file !== 'string') return undefined;
  return mergeRunConfig(flags, readRunConfig(file), which, (attribute) => command.getOptionValueSource(attribute));
}

/**
 * A commander action that reads `--config` first: `action` gets the merged flags and the applied
 * file, and a usage error about a value from the file names the file and the key.
 */
export function withRunConfig<F extends Flags>(
  command: { getOptionValueSource(key: string): string | undefined },
  which: RunConfigCommand,
  action: (flags: F, config: AppliedRunConfig | undefined) => Promise<void>,
): (cliFlags: F) => Promise<void> {
  return async (cliFlags) => {
    const config = applyRunConfig(command, cliFlags, which);
    try {
      await action((config?.flags ?? cliFlags) as F, config);
    } catch (err) {
      if (config && err instanceof UsageError) throw new UsageError(err.message.split('\n').map((line) => config.attribute(line)).join('\n'));
      throw err;
    }
  };
}

/**
 * Options that must be given on the command line or in the file. With no file the error is
 * commander's own sentence for a missing required option, as before --config existed.
 */
export function missingRequired(flags: Flags, required: ReadonlyArray<{ attribute: string; spec: string; key: string }>, config: AppliedRunConfig | undefined): string[] {
  return required
    .filter((r) => typeof flags[r.attribute] !== 'string')
    .map((r) => `required option '${r.spec}' not specified${config ? ` (neither on the command line nor as "${r.key}" in ${config.source})` : ''}`);
}

/** A command's `--config` option, worded the same way everywhere. */
export const configOptionHelp = 'read flags from a run configuration file (docs/config.md); flags on the command line win';
