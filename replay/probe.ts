// `rehearse probe` and replay's preflight: one publish -> long-poll round trip on a throwaway
// topic through the target seam, with every HTTP exchange kept, then a verdict and one actionable
// hint per failure. probeTarget() does the I/O; classifyProbe() is the pure judgement of its steps.

import { setTimeout as delay } from 'node:timers/promises';
import { RehearseError, UsageError } from '../core/errors.js';
import { createTarget, isProtocolFile, type TargetSpec } from './target/index.js';
import type { Failure, OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, TargetSession, TraceStep } from './target/types.js';

export type ProbePhase = 'open' | 'publish' | 'poll';

/**
 * What went wrong. 'overloaded' comes with `ok: true`: a target that answers 5xx/429 is up, and
 * how it copes is what a run is there to measure.
 */
export type ProbeFailure = 'unreachable' | 'auth' | 'not-found' | 'protocol' | 'rewritten' | 'not-delivered' | 'overloaded' | 'fatal';

export interface ProbeStep {
  phase: ProbePhase;
  /** Which round trip (1-based): a lost probe message is retried with a new one. */
  attempt: number;
  /** The outcome in words, as printed. */
  outcome: string;
  /** Every HTTP exchange of this call, in order (none for a protocol whose open sends nothing). */
  trace: TraceStep[];
  /** The outcome itself, for classifyProbe. */
  result: OpenOutcome | PublishOutcome | PollOutcome;
  /** publish: rehearse's id of the probe message sent. */
  messageId?: number;
  /** When the call started, ms after the probe started; and how long it took. */
  startMs: number;
  ms: number;
}

export interface ProbeVerdict {
  /** Whether the target can be rehearsed against (true for 'overloaded', with a warning). */
  ok: boolean;
  verdict: string;
  /** One actionable line per problem; a warning when ok. */
  hints: string[];
  failure?: ProbeFailure;
  /** Publish start to delivery of the message that came back. */
  roundTripMs?: number;
}

export interface ProbeReport extends ProbeVerdict {
  protocol: string;
  url: string;
  topic: string;
  steps: ProbeStep[];
}

export interface ProbeOptions {
  /** The probe topic is `${topicPrefix}.probe.events` ([A-Za-z0-9._-]). */
  topicPrefix: string;
  /** The whole probe's waiting budget, shared evenly by the attempts (default 10 s). */
  timeoutMs?: number;
  /** Round trips tried before concluding the bus does not deliver (default 3). */
  attempts?: number;
}

export const probeDefaults = { timeoutMs: 10_000, attempts: 3 } as const;

const probeActor = 'rehearse-probe';
/** Every poll gets at least this long, even when a slow publish used up its attempt's share. */
const minPollMs = 500;
/** Bounds the poll loop of one attempt whatever the target answers. */
const maxPollsPerAttempt = 200;

/** Where the probe went, for the classification's words. */
export interface ProbeWhere {
  protocol: string;
  url: string;
  topic: string;
  /** Names (never values) of the headers sent. */
  headerNames?: readonly string[];
  /** The --protocol file when the protocol is a user's module or profile (it may sign requests itself). */
  moduleFile?: string;
}

/**
 * One round trip against the target `spec` describes: subscribe, open, publish one message, poll
 * until it comes back or the attempt's share of the timeout passes; a lost message is retried with
 * a new one (a bus with a seeded drop fault may drop the probe). Never throws for HTTP or network
 * trouble (that is the report); throws UsageError for bad options or an unknown protocol.
 */
export async function probeTarget(spec: Omit<TargetSpec, 'trace'>, opts: ProbeOptions): Promise<ProbeReport> {
  const timeoutMs = opts.timeoutMs ?? probeDefaults.timeoutMs;
  const attempts = opts.attempts ?? probeDefaults.attempts;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.topicPrefix)) throw new UsageError(`the probe's topic prefix must be 1-64 of [A-Za-z0-9._-], got '${opts.topicPrefix}'`);
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new UsageError(`must be a positive duration, got ${timeoutMs} ms`, '--timeout');
  if (!(Number.isInteger(attempts) && attempts >= 1 && attempts <= 100)) throw new UsageError(`the probe's attempts must be 1-100, got ${attempts}`);

  // Calls are sequential, so every exchange belongs to the call in progress.
  let current: TraceStep[] = [];
  const target = await createTarget({ ...spec, trace: (s) => current.push(s) });
  const topic = `${opts.topicPrefix}.probe.events`;
  const steps: ProbeStep[] = [];
  const t0 = performance.now();
  const sinceStart = (): number => performance.now() - t0;

  async function call<R extends OpenOutcome | PublishOutcome | PollOutcome>(
    phase: ProbePhase,
    attempt: number,
    run: () => Promise<R>,
    thrown: (f: Failure & { kind: 'fatal' }) => R,
    extra: { messageId?: number } = {},
  ): Promise<R> {
    current = [];
    const startMs = sinceStart();
    let result: R;
    try {
      result = await run();
    } catch (err) {
      // A protocol module with a bug: the probe is where its author finds out.
      result = thrown({ kind: 'fatal', detail: `${phase} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}` });
    }
    steps.push({ phase, attempt, outcome: describeOutcome(phase, result, topic), trace: current, result, ...extra, startMs, ms: sinceStart() - startMs });
    return result;
  }

  const idBase = Date.now() * 10; // fresh across probes of one prefix; far below 2^53
  const sent = new Set<number>();
  let session: TargetSession | undefined;
  let opened = false;
  try {
    rounds: for (let attempt = 1; attempt <= attempts; attempt++) {
      const attemptEnd = (timeoutMs * attempt) / attempts;
      const pauseAfterRetry = async (): Promise<void> => {
        if (attempt < attempts) await delay(Math.max(0, Math.min(250 * 2 ** (attempt - 1), attemptEnd - sinceStart())));
      };
      if (!opened) {
        if (session) await session.close().catch(() => undefined);
        const s = target.subscribe(probeActor, [topic]);
        session = s;
        const open = await call('open', attempt, () => s.open(deadlineSignal(Math.max(minPollMs, attemptEnd - sinceStart()))), (f) => f);
        if (open.kind === 'fatal') break;
        if (open.kind !== 'ok') {
          await pauseAfterRetry();
          continue;
        }
        opened = true;
      }
      const message: OutgoingMessage = { id: idBase + attempt, topic, sentMs: performance.now(), from: probeActor };
      sent.add(message.id);
      const published = await call('publish', attempt, () => target.publish(probeActor, [message], new AbortController().signal), (f) => ({ ...f, stored: 0 }), { messageId: message.id });
      if (published.kind === 'fatal') break;
      if (published.kind !== 'ok') {
        await pauseAfterRetry();
        continue;
      }
      const pollUntil = Math.max(attemptEnd, sinceStart() + minPollMs);
      for (let polls = 0; polls < maxPollsPerAttempt; polls++) {
        const remaining = pollUntil - sinceStart();
        if (remaining <= 0) break;
        const s = session!;
        const got = await call('poll', attempt, () => s.poll(deadlineSignal(remaining)), (f) => f);
        if (got.kind === 'empty') continue;
        if (got.kind === 'messages') {
          // Ours (on whatever topic) ends the probe; so does a body the bus rewrote: retrying would not change it.
          if (got.messages.some((m) => sent.has(m.id)) || (got.unidentified > 0 && got.messages.length === 0)) break rounds;
          continue;
        }
        if (got.kind === 'fatal') break rounds;
        if (got.kind === 'retry') await pauseAfterRetry();
        break; // aborted at the deadline, or the bus is busy: the next attempt publishes a new message
      }
    }
  } finally {
    await session?.close().catch(() => undefined);
    await target.close().catch(() => undefined);
  }
  const redacted = redact(steps, Object.values(spec.headers));
  const where: ProbeWhere = { protocol: target.protocol, url: spec.url.replace(/\/+$/, ''), topic, headerNames: Object.keys(spec.headers), ...(isProtocolFile(spec.protocol) ? { moduleFile: spec.protocol } : {}) };
  return { ...classifyProbe(redacted, where), protocol: where.protocol, url: where.url, topic, steps: redacted };
}

/**
 * The verdict on a probe's steps. Pure. In order: the message came back (pass, or on the wrong
 * topic); a fatal answer (by status: auth, not found, unreadable, other); messages without
 * rehearse's payload; then how the attempts ended: no answer at all (unreachable), a publish
 * that went through with nothing delivered, or only retryable statuses (overloaded, a warning).
 */
export function classifyProbe(steps: readonly ProbeStep[], where: ProbeWhere): ProbeVerdict {
  const { protocol, url, topic } = where;
  const sent = new Map<number, ProbeStep>();
  for (const s of steps) if (s.phase === 'publish' && s.messageId !== undefined) sent.set(s.messageId, s);

  let elsewhere: { id: number; on: string } | undefined;
  for (const s of steps) {
    if (s.phase !== 'poll' || s.result.kind !== 'messages') continue;
    for (const m of s.result.messages) {
      const publish = sent.get(m.id);
      if (!publish || m.topic !== topic) continue;
      if (m.deliveredOn !== undefined && m.deliveredOn !== topic) {
        elsewhere ??= { id: m.id, on: m.deliveredOn };
        continue;
      }
      const roundTripMs = Math.round(s.startMs + s.ms - publish.startMs);
      const lost = publish.attempt - 1;
      return {
        ok: true,
        verdict: `${protocol} works at ${url}: message ${m.id} published on ${topic} came back to the subscriber in ${roundTripMs} ms` + (lost > 0 ? ` (on attempt ${publish.attempt}: the first ${lost === 1 ? 'round trip' : `${lost} round trips`} did not complete)` : ''),
        hints: [],
        roundTripMs,
      };
    }
  }
  if (elsewhere) {
    return {
      ok: false,
      failure: 'rewritten',
      verdict: `message ${elsewhere.id} was published on ${topic} but the bus delivered it on '${elsewhere.on}'`,
      hints: [`the bus delivered the probe on '${elsewhere.on}', not on '${topic}': does the bus rename channels, or does ${protocol}'s channel naming (--target-option) map several topics to one?`],
    };
  }

  const fatal = [...steps].reverse().find((s) => s.result.kind === 'fatal');
  if (fatal && fatal.result.kind === 'fatal') {
    const { status, detail } = fatal.result;
    const said = `${fatal.phase} failed: ${detail}`;
    if (status === 401 || status === 403) {
      const names = where.headerNames ?? [];
      return {
        ok: false,
        failure: 'auth',
        verdict: said,
        hints: [
          names.length > 0
            ? `the bus refused the credentials sent (headers: ${names.join(', ')}): check the token and the header's name, e.g. --header 'Authorization: env:TOKEN'`
            : where.moduleFile
              ? `the bus refused ${protocol}'s requests: check the credentials the module ${where.moduleFile} sends (its --target-option values, the secrets in its environment), or pass them with --header 'Authorization: env:TOKEN'`
              : `the bus wants credentials: pass them with --header 'Authorization: env:TOKEN'`,
        ],
      };
    }
    if (status === 404 || status === 405) {
      return { ok: false, failure: 'not-found', verdict: said, hints: [`the bus does not serve ${protocol}'s paths at ${url}: wrong --protocol, wrong base URL, or paths that need --target-option`] };
    }
    if (status !== undefined && status < 400) {
      return { ok: false, failure: 'protocol', verdict: said, hints: [`the bus answered but not in ${protocol}'s format: wrong --protocol?`] };
    }
    return {
      ok: false,
      failure: 'fatal',
      verdict: said,
      hints: [
        status === undefined
          ? `${protocol} gave up without an HTTP answer: if it is your protocol module, fix it (the error above); otherwise please report it`
          : `the bus refused ${protocol}'s ${fatal.phase} with HTTP ${status}: check --protocol and the --target-option values against the bus's documentation`,
      ],
    };
  }

  const rewritten = steps.find((s) => s.result.kind === 'messages' && s.result.unidentified > 0);
  if (rewritten && rewritten.result.kind === 'messages') {
    return {
      ok: false,
      failure: 'rewritten',
      verdict: `a poll on ${topic} returned ${rewritten.result.unidentified} message(s) without rehearse's payload, and none with it`,
      hints: [`a message came back but without rehearse's id: does the bus pass the body through unchanged?`],
    };
  }

  // How each attempt ended: its last step.
  const lastOfAttempt = new Map<number, ProbeStep>();
  for (const s of steps) lastOfAttempt.set(s.attempt, s);
  const endings = [...lastOfAttempt.values()];
  const answered = steps.some((s) => s.trace.some((t) => t.status !== undefined));
  const silent = endings.filter((s) => s.phase === 'poll' && s.result.kind !== 'retry');
  const retryDetail = (s: ProbeStep | undefined): string => (s && 'detail' in s.result ? `${s.phase} failed: ${s.result.detail}` : '');
  if (!answered && silent.length === 0) {
    const last = endings[endings.length - 1];
    return {
      ok: false,
      failure: 'unreachable',
      verdict: `nothing answered at ${url} (${endings.length} attempt${endings.length === 1 ? '' : 's'}): ${retryDetail(last) || 'no answer'}`,
      hints: [`nothing answers at ${url}: is the bus running, is the port right?`],
    };
  }
  if (silent.length > 0) {
    return {
      ok: false,
      failure: 'not-delivered',
      verdict: `published ${sent.size} message(s) on ${topic}, but none came back to the subscriber (${silent.length} of ${endings.length} attempts waited until their deadline)`,
      hints: [`published, but no message reached the subscriber: wrong channel naming, or a subscriber that only sees messages published after it polls?`],
    };
  }
  const statuses = [...new Set(endings.map((s) => ('status' in s.result ? s.result.status : undefined)).filter((x): x is number => x !== undefined))];
  return {
    ok: true,
    failure: 'overloaded',
    verdict: `the bus answered but was busy on every attempt: ${retryDetail(endings[endings.length - 1])}`,
    hints: [`warning: ${url} answered ${statuses.length ? `HTTP ${statuses.join('/')}` : 'with retryable errors'} on every attempt: overloaded or still starting; a run measures that, but an idle bus should not do it`],
  };
}

/** AbortSignal.timeout takes whole milliseconds. */
function deadlineSignal(ms: number): AbortSignal {
  return AbortSignal.timeout(Math.max(1, Math.ceil(ms)));
}

function describeOutcome(phase: ProbePhase, r: OpenOutcome | PublishOutcome | PollOutcome, topic: string): string {
  switch (r.kind) {
    case 'ok':
      return phase === 'publish' ? 'accepted' : 'open';
    case 'empty':
      return 'empty: no message';
    case 'aborted':
      return 'no message before the deadline';
    case 'messages': {
      const ids = r.messages.map((m) => `${m.id}${m.deliveredOn !== undefined && m.deliveredOn !== topic ? ` (on '${m.deliveredOn}')` : ''}`);
      return `${r.messages.length} message(s)${ids.length ? `: id ${ids.join(', ')}` : ''}${r.unidentified ? `; ${r.unidentified} without rehearse's payload` : ''}`;
    }
    case 'retry':
      return `retryable: ${r.detail}`;
    case 'fatal':
      return `fatal: ${r.detail}`;
  }
}

/**
 * Header values never leave the probe, even when a bus echoes them back in a body: every string in
 * the steps is scrubbed (matched as they appear inside JSON text, so quotes and backslashes too).
 */
function redact(steps: ProbeStep[], secrets: readonly string[]): ProbeStep[] {
  let json = JSON.stringify(steps);
  for (const secret of secrets) {
    if (secret.length < 3) continue;
    json = json.split(JSON.stringify(secret).slice(1, -1)).join('<redacted>');
  }
  return JSON.parse(json) as ProbeStep[];
}

/**
 * Replay's pre-flight (replay/runner.ts calls it before any virtual user starts): the probe with
 * default settings; throws a RehearseError (exit 2, nothing measured) with the verdict, the hints
 * and the failing exchange when the target is not fit to rehearse against. An overloaded target
 * passes: measuring it is the run's job.
 */
export async function replayPreflight(
  spec: TargetSpec,
  topicPrefix: string,
  opts: Omit<ProbeOptions, 'topicPrefix'> & { onWarning?: (line: string) => void } = {},
): Promise<void> {
  const { trace: _ignored, ...rest } = spec;
  const { onWarning, ...probeOptions } = opts;
  const report = await probeTarget(rest, { ...probeOptions, topicPrefix });
  if (report.ok) {
    if (report.failure) for (const h of report.hints) onWarning?.(`pre-flight: ${report.verdict}; ${h}`);
    return;
  }
  const failing = [...report.steps].reverse().find((s) => s.trace.length > 0)?.trace.at(-1);
  const exchange = failing ? `\n  last exchange: ${failing.method} ${failing.url} -> ${failing.status !== undefined ? `HTTP ${failing.status}` : (failing.error ?? 'no answer')}` : '';
  throw new RehearseError(
    'REHEARSE_TARGET',
    `the target failed the pre-flight round trip (${report.protocol} at ${report.url}): ${report.verdict}${exchange}${report.hints.map((h) => `\n  hint: ${h}`).join('')}\n  (rehearse probe with the same --target, --protocol, --target-option and --header flags shows every exchange)`,
  );
}

const shownBodyChars = 200;

/** The report as the terminal shows it: each call with its exchanges, then the verdict and hints. Pure. */
export function formatProbeReport(report: ProbeReport, o: { headerNames?: readonly string[] } = {}): string {
  const lines: string[] = [];
  const names = o.headerNames ?? [];
  lines.push(`probe: ${report.protocol} at ${report.url}, topic ${report.topic}${names.length ? `, headers sent: ${names.join(', ')} (values not shown)` : ''}`);
  for (const s of report.steps) {
    lines.push(`  [${s.attempt}] ${s.phase}: ${s.outcome} (${Math.round(s.ms)} ms)`);
    if (s.trace.length === 0 && s.phase === 'open') lines.push('      (no HTTP exchange)');
    for (const t of s.trace) {
      lines.push(`      ${t.method} ${t.url} -> ${t.status !== undefined ? `HTTP ${t.status}` : `no answer (${t.error ?? 'unknown'})`} in ${Math.round(t.ms)} ms`);
      if (t.requestBody !== undefined && t.requestBody !== '') lines.push(`        sent: ${oneLine(t.requestBody)}`);
      if (t.responseBody !== undefined) lines.push(`        answer: ${t.responseBody === '' ? '(empty body)' : oneLine(t.responseBody)}`);
      if (t.extracted !== undefined) lines.push(`        read: ${t.extracted}`);
    }
  }
  lines.push(`${report.ok ? (report.failure ? 'PASS (with a warning)' : 'PASS') : 'FAIL'}: ${report.verdict}`);
  for (const h of report.hints) lines.push(`hint: ${h}`);
  return `${lines.join('\n')}\n`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length > shownBodyChars ? `${flat.slice(0, shownBodyChars)}... (${flat.length} chars)` : flat;
}
