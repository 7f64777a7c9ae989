// nginx/Apache access logs described by their own log_format string: compiles the format into
// one anchored regular expression with a capture group per $variable.

export interface CompiledLogFormat {
  /** Variable names in order of their capture groups, without `$`. */
  variables: string[];
  regex: RegExp;
}

const variablePattern = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Each variable captures up to the first character of the literal that follows it, so
 * `"$request"` takes everything up to the closing quote and `[$time_local]` up to `]`.
 * A variable at the very end takes the rest of the line.
 */
export function compileLogFormat(logFormat: string): CompiledLogFormat {
  const variables: string[] = [];
  let source = '^';
  let last = 0;
  const matches = [...logFormat.matchAll(variablePattern)];
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i]!;
    source += escapeRegex(logFormat.slice(last, m.index));
    variables.push(m[1] ?? m[2]!);
    const nextLiteral = logFormat.slice(m.index + m[0].length, matches[i + 1]?.index ?? logFormat.length);
    if (nextLiteral.length === 0) {
      source += i === matches.length - 1 ? '(.*)' : '(.*?)';
    } else {
      source += `([^${escapeRegex(nextLiteral[0]!)}]*)`;
    }
    last = m.index + m[0].length;
  }
  source += escapeRegex(logFormat.slice(last)) + '$';
  return { variables, regex: new RegExp(source) };
}

/** Splits `$request` ("GET /path?a=1 HTTP/1.1") into its path and decoded query parameters. */
export function parseRequestLine(request: string): { method: string; path: string; query: string } {
  const firstSpace = request.indexOf(' ');
  const method = firstSpace < 0 ? '' : request.slice(0, firstSpace);
  let target = firstSpace < 0 ? request : request.slice(firstSpace + 1);
  const lastSpace = target.lastIndexOf(' ');
  if (lastSpace >= 0 && target.startsWith('HTTP/', lastSpace + 1)) target = target.slice(0, lastSpace);
  return splitTarget(method, target);
}

export function splitTarget(method: string, target: string): { method: string; path: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { method, path: target, query: '' } : { method, path: target.slice(0, q), query: target.slice(q + 1) };
}

function decode(text: string): string {
  const plus = text.includes('+') ? text.replace(/\+/g, ' ') : text;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/** Every value of one query parameter, decoded, in order (repeated parameters give several). */
export function queryValues(query: string, name: string): string[] {
  const out: string[] = [];
  if (query === '') return out;
  let from = 0;
  while (from <= query.length) {
    let amp = query.indexOf('&', from);
    if (amp < 0) amp = query.length;
    const eq = query.indexOf('=', from);
    const keyEnd = eq >= 0 && eq < amp ? eq : amp;
    if (decode(query.slice(from, keyEnd)) === name) out.push(keyEnd === amp ? '' : decode(query.slice(keyEnd + 1, amp)));
    from = amp + 1;
  }
  return out;
}
