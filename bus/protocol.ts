// Protocol v1 request bodies, validated once at the edge (docs/protocol.md is the contract).
// Pure: text in, a typed request or a message for the 400 answer out.

export interface PublishRequest {
  actor: string;
  messages: Array<{ topic: string; id: string; dataJson: string }>;
}

export interface SubscribeRequest {
  actor: string;
  topics: Map<string, number | null>;
  /** Seconds; undefined means the bus default. */
  timeoutS: number | undefined;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export const maxTopicLength = 1024;
/**
 * Deepest nesting of arrays and objects a body may have, the body itself counting as one level.
 * Deeper values overflow the stack when they are serialized again for subscribers.
 */
export const maxJsonDepth = 64;
/** Most topics one subscribe may name; rehearse's v1 target splits larger rosters into several polls. */
export const maxTopicsPerSubscribe = 1000;

/**
 * True when `text` opens more than `limit` arrays or objects inside one another. A single pass
 * with a counter, no recursion, so it is safe on any input; brackets inside strings do not count.
 * It does not validate JSON: JSON.parse does that afterwards.
 */
export function nestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

function parseObject(text: string): Parsed<Record<string, unknown>> {
  if (nestingExceeds(text, maxJsonDepth)) {
    return { ok: false, error: `body nests arrays and objects more than ${maxJsonDepth} levels deep (the bus accepts at most ${maxJsonDepth} levels, the body itself included)` };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `body is not valid JSON: ${(err as Error).message}` };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, error: 'body must be a JSON object' };
  }
  return { ok: true, value: body as Record<string, unknown> };
}

function checkActor(body: Record<string, unknown>): string | undefined {
  if (!('actor' in body)) return 'missing field "actor"';
  if (typeof body.actor !== 'string') return '"actor" must be a string';
  return undefined;
}

function checkTopic(topic: unknown, where: string): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return `${where} must be a non-empty string`;
  if (topic.length > maxTopicLength) return `${where} is longer than ${maxTopicLength} characters`;
  return undefined;
}

export function parsePublish(text: string): Parsed<PublishRequest> {
  const obj = parseObject(text);
  if (!obj.ok) return obj;
  const body = obj.value;
  const actorError = checkActor(body);
  if (actorError) return { ok: false, error: actorError };
  if (!('messages' in body)) return { ok: false, error: 'missing field "messages"' };
  if (!Array.isArray(body.messages)) return { ok: false, error: '"messages" must be an array' };
  const messages: PublishRequest['messages'] = [];
  for (let i = 0; i < body.messages.length; i++) {
    const m: unknown = body.messages[i];
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return { ok: false, error: `${at} must be an object` };
    const msg = m as Record<string, unknown>;
    const topicError = checkTopic(msg.topic, `${at}.topic`);
    if (topicError) return { ok: false, error: topicError };
    if (typeof msg.id !== 'string') return { ok: false, error: `${at}.id must be a string` };
    if (!('data' in msg)) return { ok: false, error: `missing field ${at}.data` };
    messages.push({ topic: msg.topic as string, id: msg.id, dataJson: JSON.stringify(msg.data) });
  }
  return { ok: true, value: { actor: body.actor as string, messages } };
}

export function parseSubscribe(text: string, maxTimeoutS: number): Parsed<SubscribeRequest> {
  const obj = parseObject(text);
  if (!obj.ok) return obj;
  const body = obj.value;
  const actorError = checkActor(body);
  if (actorError) return { ok: false, error: actorError };
  if (!('topics' in body)) return { ok: false, error: 'missing field "topics"' };
  const t = body.topics;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) {
    return { ok: false, error: '"topics" must be an object of topic -> cursor (a number, or null for "from now on")' };
  }
  const names = Object.keys(t);
  if (names.length > maxTopicsPerSubscribe) {
    return {
      ok: false,
      error: `"topics" names ${names.length} topics; a subscribe may name at most ${maxTopicsPerSubscribe} (split them into several polls)`,
    };
  }
  const topics = new Map<string, number | null>();
  for (const [topic, cursor] of Object.entries(t as Record<string, unknown>)) {
    const topicError = checkTopic(topic, `topic "${topic}"`);
    if (topicError) return { ok: false, error: topicError };
    if (cursor !== null && (typeof cursor !== 'number' || !Number.isSafeInteger(cursor) || cursor < 0)) {
      return { ok: false, error: `cursor of topic "${topic}" must be an integer >= 0 or null` };
    }
    topics.set(topic, cursor);
  }
  if (topics.size === 0) return { ok: false, error: '"topics" must name at least one topic' };
  let timeoutS: number | undefined;
  if ('timeout_s' in body && body.timeout_s !== null) {
    const v = body.timeout_s;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > maxTimeoutS) {
      return { ok: false, error: `"timeout_s" must be a number of seconds from 0 to ${maxTimeoutS}` };
    }
    timeoutS = v;
  }
  return { ok: true, value: { actor: body.actor as string, topics, timeoutS } };
}
