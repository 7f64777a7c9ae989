// The canonical access-log record: every input format (CSV, TSV, JSON lines, nginx) is mapped
// to this before anything else looks at it. The fixture generator writes it too.

export type Op = 'publish' | 'subscribe' | 'other';

export interface CanonicalRecord {
  /** When the request started, epoch milliseconds (UTC). */
  timeMs: number;
  actor: string;
  endpoint: string;
  topics: string[];
  status: number;
  durationMs: number;
  /** Messages the request published (publish) or received (subscribe). */
  messages: number;
  session?: string;
  bytes?: number;
  userAgent?: string;
  clientIp?: string;
}

/**
 * Header of the project's own CSV/TSV (and keys of its JSON lines), which need no mapping file.
 * `time` is ISO 8601 with an offset, the request's start; `topics` are joined by ';';
 * `duration_ms` in milliseconds.
 */
export const canonicalColumns = [
  'time',
  'actor',
  'endpoint',
  'topics',
  'status',
  'duration_ms',
  'messages',
  'session',
  'bytes',
  'user_agent',
  'client_ip',
] as const;
