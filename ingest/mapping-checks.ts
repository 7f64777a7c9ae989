// Checks on what a whole file parsed into that catch the mapping mistakes which otherwise build a
// wrong model without a word: topics joined by another separator than the mapping's, and a
// field the mapping names that is empty on every line (a misspelt column or `arg_` parameter).
// Pure: fed batch by batch, asked for warnings at the end. Documented in docs/mapping.md.

import type { ResolvedMapping } from './mapping.js';
import type { RequestBatch } from './parse-chunk.js';

const candidateSeparators = [',', ';', '|', ' '] as const;

function shown(sep: string): string {
  return sep === ' ' ? 'a space' : `"${sep}"`;
}

export class MappingChecks {
  /** Distinct topics seen, and how many hold each candidate separator. */
  private topics = 0;
  private readonly withSeparator = new Map<string, number>();
  private readonly example = new Map<string, string>();
  private sessionsSeen = false;
  private clientsSeen = false;
  private bytesSeen = false;
  private accepted = 0;
  private readonly seenTopics = new Set<string>();

  constructor(private readonly mapping: ResolvedMapping) {}

  add(b: RequestBatch): void {
    this.accepted += b.count;
    if (b.sessions.length > 0) this.sessionsSeen = true;
    if (b.clients.length > 0) this.clientsSeen = true;
    if (!this.bytesSeen) for (let i = 0; i < b.count; i++) if (!Number.isNaN(b.bytes[i]!)) (this.bytesSeen = true);
    for (const list of b.topicLists) {
      if (list === '') continue;
      for (const topic of list.split('\u0000')) {
        if (this.seenTopics.size < 100_000) {
          if (this.seenTopics.has(topic)) continue;
          this.seenTopics.add(topic);
        }
        this.topics++;
        for (const sep of candidateSeparators) {
          if (sep !== this.mapping.topicSeparator && topic.includes(sep)) {
            this.withSeparator.set(sep, (this.withSeparator.get(sep) ?? 0) + 1);
            if (!this.example.has(sep)) this.example.set(sep, topic);
          }
        }
      }
    }
  }

  /** Warnings for the person at the terminal: the mapping field, what was seen, the fix. */
  warnings(file: string): string[] {
    const out: string[] = [];
    if (this.accepted === 0) return out;
    for (const [sep, n] of this.withSeparator) {
      // One topic in ten holding the same other separator is no accident of naming.
      if (n * 10 < this.topics) continue;
      out.push(
        `fields.topics: ${n} of ${this.topics} distinct topics in ${file} contain ${shown(sep)} (e.g. "${this.example.get(sep)}") but topicSeparator is ${shown(this.mapping.topicSeparator)}: ` +
          `if those are lists of topics, set "topicSeparator": "${sep}" in the mapping (a wrong separator multiplies topics, and so proctors and rosters).`,
      );
    }
    const empty = (field: 'session' | 'userAgent' | 'bytes', seen: boolean): void => {
      const named = this.mapping.fields[field];
      if (named === undefined || seen) return;
      out.push(`fields.${field}: "${named}" is empty on every line of ${file}: check its spelling in the mapping (for nginx, a misspelt arg_ parameter or variable yields nothing).${field === 'session' ? ' Without it sessions are cut at 5 min of silence.' : ''}`);
    };
    empty('session', this.sessionsSeen);
    empty('userAgent', this.clientsSeen);
    empty('bytes', this.bytesSeen);
    return out;
  }
}
