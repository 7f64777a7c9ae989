// Declarative target profiles (`--protocol FILE.json`, docs/targets.md "Profiles"): an in-house
// bus described in JSON instead of code. This is the I/O half: read the file, compile it
// (profile-compile.ts, pure), and run the compiled requests over the shared HTTP layer, with the
// context's helpers for payload identity and the shared status policy.

import fs from 'node:fs/promises';
import { InputError } from '../../core/errors.js';
import type { HttpAnswer, TargetHttp } from './http.js';
import { compileProfile, type CompiledProfile, type CursorState, type StatusClass } from './profile-compile.js';
import type { Failure, OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, ReceivedMessage, Target, TargetContext, TargetFactory, TargetHelpers, TargetSession } from './types.js';

export { compileProfile, ProfileError, profileVersion } from './profile-compile.js';

/** Reads, validates and compiles a profile; InputError naming the file for anything wrong with it. */
export async function loadProfile(file: string): Promise<TargetFactory> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new InputError(code === 'ENOENT' ? 'no such profile file (--protocol FILE.json)' : `cannot read the profile: ${(err as Error).message}`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(`the profile is not valid JSON: ${(err as Error).message}`, { file });
  }
  return profileFactory(compileProfile(json, file));
}

/** The factory of an already compiled profile (tests compile from an object). */
export function profileFactory(plan: CompiledProfile): TargetFactory {
  return { protocol: `profile:${plan.name}`, create: (ctx) => new ProfileTarget(plan, ctx) };
}

class ProfileTarget implements Target {
  readonly protocol: string;
  readonly maxTopicsPerPoll: number;

  constructor(
    private readonly plan: CompiledProfile,
    private readonly ctx: TargetContext,
  ) {
    this.protocol = `profile:${plan.name}`;
    this.maxTopicsPerPoll = plan.maxTopicsPerPoll;
  }

  channel(topic: string): string {
    return this.plan.channel(topic);
  }

  async publish(actor: string, messages: readonly OutgoingMessage[], signal: AbortSignal): Promise<PublishOutcome> {
    let stored = 0;
    for (const { request, count } of this.plan.publishRequests(actor, messages)) {
      const a = await this.ctx.http.request({ step: 'publish', ...request, signal });
      if (a.kind !== 'answer') return { ...a, stored };
      const cls = this.plan.publishStatus(a.status);
      if (cls !== 'success') return { ...statusOutcome(cls, a, 'publish', this.ctx.helpers), stored };
      if (a.trace) a.trace.extracted = `accepted ${count} message(s)`;
      stored += count;
    }
    return { kind: 'ok' };
  }

  subscribe(actor: string, topics: readonly string[]): TargetSession {
    return new ProfileSession(this.plan, this.ctx, actor, topics);
  }

  async close(): Promise<void> {
    await this.ctx.http.close();
  }
}

/** A non-success status as an outcome: the profile's retry/fatal lists, else the shared policy. */
function statusOutcome(cls: StatusClass, a: HttpAnswer, what: string, helpers: TargetHelpers): Failure {
  const shared = helpers.statusFailure(a, what);
  const detail = shared.kind === 'aborted' ? `${what}: HTTP ${a.status}` : shared.detail;
  if (cls === 'retry' && shared.kind !== 'retry') {
    const retryAfter = helpers.header(a, 'retry-after');
    return { kind: 'retry', status: a.status, detail, ...(retryAfter !== undefined ? { retryAfter } : {}) };
  }
  // 'fatal', or a status listed where it does not apply (an "empty" publish): never retried.
  if (cls !== 'retry' && cls !== 'default' && shared.kind !== 'fatal') return { kind: 'fatal', status: a.status, detail };
  return shared;
}

class ProfileSession implements TargetSession {
  private cursors: CursorState;
  private readonly http: TargetHttp;
  private readonly dispatcher;
  /** The bus's channel name -> rehearse topic, to say which topic a message was delivered on. */
  private readonly topicOf = new Map<string, string>();

  constructor(
    private readonly plan: CompiledProfile,
    private readonly ctx: TargetContext,
    private readonly actor: string,
    private readonly topics: readonly string[],
  ) {
    this.http = ctx.http;
    this.dispatcher = ctx.http.pollDispatcher();
    this.cursors = plan.initialCursors(topics);
    for (const t of topics) this.topicOf.set(plan.channel(t), t);
  }

  async open(): Promise<OpenOutcome> {
    return { kind: 'ok' };
  }

  async poll(signal: AbortSignal): Promise<PollOutcome> {
    const request = this.plan.pollRequest(this.actor, this.topics, this.cursors, this.ctx.pollTimeoutS);
    const a = await this.http.request({ step: 'poll', ...request, signal, dispatcher: this.dispatcher });
    if (a.kind !== 'answer') return a;
    const cls = this.plan.pollStatus(a.status);
    if (cls === 'empty') {
      // An empty answer keeps every cursor it does not carry.
      this.cursors = this.plan.readCursors(a, this.topics, this.cursors);
      if (a.trace) a.trace.extracted = `empty (HTTP ${a.status}); ${this.describeCursors()}`;
      return { kind: 'empty' };
    }
    if (cls !== 'success') return statusOutcome(cls, a, 'poll', this.ctx.helpers);
    const read = this.plan.readPoll(a, this.topics, this.cursors);
    if (!read.ok) return this.ctx.helpers.unreadable(a, read.why);
    this.cursors = read.cursors;
    const messages: ReceivedMessage[] = [];
    let unidentified = 0;
    for (const item of read.items) {
      const on = item.channel === undefined ? undefined : (this.topicOf.get(item.channel) ?? item.channel);
      const got = this.ctx.helpers.decodePayload(item.payload, on);
      if (got) messages.push(got);
      else unidentified++;
    }
    if (a.trace) {
      a.trace.extracted = `${messages.length} message(s)${messages.length ? `: ids ${messages.map((m) => m.id).join(', ')}` : ''}${unidentified ? `, ${unidentified} without rehearse's payload` : ''}; ${this.describeCursors()}`;
    }
    if (messages.length === 0 && unidentified === 0) return { kind: 'empty' };
    return { kind: 'messages', messages, unidentified };
  }

  async close(): Promise<void> {
    // A profile describes no unsubscribe: a subscriber simply stops polling.
  }

  private describeCursors(): string {
    const perTopic = [...this.cursors.topic.entries()];
    const perPoll = Object.entries(this.cursors.poll);
    if (perTopic.length === 0 && perPoll.length === 0) return 'no cursor';
    const shown = perTopic.length > 0 ? perTopic.slice(0, 5).map(([t, c]) => `${t}=${JSON.stringify(c)}`).join(', ') + (perTopic.length > 5 ? ', ...' : '') : perPoll.map(([n, c]) => `{${n}}=${JSON.stringify(c)}`).join(', ');
    return `cursors ${shown}`;
  }
}
