// A small protocol v1 client over undici for the bus tests, plus bounded waiting.

import { Agent, request } from 'undici';

export const agent = new Agent({ connections: 256, headersTimeout: 60_000, bodyTimeout: 60_000, keepAliveTimeout: 10_000 });

export interface Answer<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export async function post<T = any>(base: string, path: string, body: unknown, signal?: AbortSignal): Promise<Answer<T>> {
  const r = await request(base + path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    dispatcher: agent,
    ...(signal ? { signal } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body: text.length > 0 ? JSON.parse(text) : undefined };
}

export async function get(base: string, path: string): Promise<{ status: number; text: string }> {
  const r = await request(base + path, { dispatcher: agent });
  return { status: r.statusCode, text: await r.body.text() };
}

export interface Delivered {
  topic: string;
  seq: number;
  id: string;
  data: unknown;
}

export interface SubscribeAnswer {
  messages: Delivered[];
  cursors: Record<string, number>;
}

export function publish(base: string, messages: Array<{ topic: string; id: string; data?: unknown }>, actor = 'publisher') {
  return post<{ accepted: number }>(base, '/v1/events/publish', {
    actor,
    messages: messages.map((m) => ({ data: null, ...m })),
  });
}

export function subscribe(base: string, topics: Record<string, number | null>, timeoutS: number, signal?: AbortSignal) {
  return post<SubscribeAnswer>(base, '/v1/events/subscribe', { actor: 'subscriber', topics, timeout_s: timeoutS }, signal);
}

/** Reads a topic from `cursor` until an answer comes back empty; bounded in answers. */
export async function drain(base: string, topic: string, cursor = 0, maxAnswers = 1000): Promise<{ messages: Delivered[]; cursor: number }> {
  const messages: Delivered[] = [];
  for (let i = 0; i < maxAnswers; i++) {
    const a = await subscribe(base, { [topic]: cursor }, 0);
    if (a.status !== 200) throw new Error(`subscribe answered ${a.status}`);
    messages.push(...a.body.messages);
    cursor = a.body.cursors[topic]!;
    if (a.body.messages.length === 0) return { messages, cursor };
  }
  throw new Error('drain did not finish');
}

/** Polls a condition every 5 ms, failing after `timeoutMs`: waiting on state, not on time. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Parses Prometheus text into name{labels} -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}
