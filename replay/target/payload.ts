// The payload every protocol publishes: rehearse's message identity (id, topic, scheduled send
// time, publisher) as one small JSON object. Delivery checks read identity back from here, never
// from a bus-assigned id, so a bus that rewrites or re-numbers messages is measured, not trusted.
// Pure.

import type { OutgoingMessage, ReceivedMessage } from './types.js';

/** The payload as JSON text (Nchan publishes it as the raw body). */
export function encodePayload(m: OutgoingMessage): string {
  return `{"id":${m.id},"topic":${JSON.stringify(m.topic)},"sentMs":${m.sentMs},"from":${JSON.stringify(m.from)}}`;
}

/** The payload as a value, for protocols that embed it in their own JSON (v1 `data`, Bayeux `data`). */
export function payloadValue(m: OutgoingMessage): { id: number; topic: string; sentMs: number; from: string } {
  return { id: m.id, topic: m.topic, sentMs: m.sentMs, from: m.from };
}

/**
 * Reads identity from a delivered payload: the object itself or its JSON text. Undefined when it
 * is not a rehearse payload (a stranger's message, or a bus that rewrote the body).
 */
export function decodePayload(value: unknown, deliveredOn?: string): ReceivedMessage | undefined {
  let v = value;
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 65_536 || v.charCodeAt(0) !== 123 /* { */) return undefined;
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as { id?: unknown; topic?: unknown };
  if (typeof o.id !== 'number' || !Number.isSafeInteger(o.id) || o.id < 0) return undefined;
  if (typeof o.topic !== 'string' || o.topic.length === 0) return undefined;
  return deliveredOn === undefined ? { id: o.id, topic: o.topic } : { id: o.id, topic: o.topic, deliveredOn };
}
