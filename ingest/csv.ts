// CSV/TSV records from lines: RFC 4180 (quoted fields, doubled quotes, line breaks inside quotes).
// Hand-written because csv-parse (~65 MB/s here) was the bottleneck of the whole ingest: a line
// without quotes is one split(), only quoted lines take the careful path.

export type CsvResult = string[] | { reject: string } | null;

const maxContinuationLines = 100;

type Parsed = string[] | 'open' | { reject: string };

function parseRecord(text: string, delimiter: string): Parsed {
  const fields: string[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    if (text.charCodeAt(i) === 34 /* " */) {
      let value = '';
      let from = i + 1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q < 0) return 'open';
        value += text.slice(from, q);
        if (text.charCodeAt(q + 1) === 34) {
          value += '"';
          from = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i === n) return fields;
      if (text[i] !== delimiter) return { reject: 'CSV text after a closing quote' };
      i++;
      if (i === n) {
        fields.push('');
        return fields;
      }
      continue;
    }
    const d = text.indexOf(delimiter, i);
    const end = d < 0 ? n : d;
    const value = text.slice(i, end);
    if (value.includes('"')) return { reject: 'CSV quote inside an unquoted field' };
    fields.push(value);
    if (d < 0) return fields;
    i = d + 1;
    if (i === n) {
      fields.push('');
      return fields;
    }
  }
}

/**
 * Feeds lines one by one; emits each record with the line it started on. A quote left open
 * joins the following lines (up to 100), after which the record is rejected and the lines
 * after its first are read afresh, so one stray quote cannot swallow the rest of a file.
 */
export class CsvRecordReader {
  private pending: Array<{ line: string; lineNo: number }> = [];

  constructor(
    private readonly delimiter: string,
    private readonly quotes: boolean,
    private readonly emit: (result: CsvResult, lineNo: number) => void,
  ) {}

  line(text: string, lineNo: number): void {
    if (this.pending.length > 0) {
      this.pending.push({ line: text, lineNo });
      const joined = this.pending.map((p) => p.line).join('\n');
      const r = parseRecord(joined, this.delimiter);
      if (r !== 'open') {
        const start = this.pending[0]!.lineNo;
        this.pending = [];
        this.emit(r, start);
      } else if (this.pending.length > maxContinuationLines) {
        this.giveUp();
      }
      return;
    }
    if (!this.quotes || !text.includes('"')) {
      this.emit(text === '' ? null : text.split(this.delimiter), lineNo);
      return;
    }
    const r = parseRecord(text, this.delimiter);
    if (r === 'open') this.pending.push({ line: text, lineNo });
    else this.emit(r, lineNo);
  }

  private giveUp(): void {
    const [first, ...rest] = this.pending;
    this.pending = [];
    this.emit({ reject: 'CSV quote not closed' }, first!.lineNo);
    for (const p of rest) this.line(p.line, p.lineNo);
  }

  /** At end of input: a record still open is rejected, the lines after it read afresh. */
  end(): void {
    while (this.pending.length > 0) this.giveUp();
  }
}
