// `--header 'Name: value'` lines (value `env:VAR` reads the environment) to the headers every
// request to the target carries. Shared by replay and probe, so both accept the same lines and
// word their problems the same way. Pure: the environment is passed in.

export interface ParsedHeaders {
  headers: Record<string, string>;
  /** One line per bad header, each naming `--header`; never containing a value (it may be a secret). */
  problems: string[];
}

/** Parses every line and collects every problem at once (callers report them with their other flags). */
export function parseHeaders(input: readonly string[] | Readonly<Record<string, string>> | undefined, env: NodeJS.ProcessEnv): ParsedHeaders {
  const problems: string[] = [];
  const headers: Record<string, string> = {};
  const entries: Array<[string, string]> = Array.isArray(input)
    ? (input as readonly string[]).map((line) => {
        const colon = line.indexOf(':');
        if (colon <= 0) {
          // Never echo the line: it may hold a secret.
          problems.push(`--header: expected 'Name: value' (got a value without "Name:")`);
          return ['', ''];
        }
        return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
      })
    : Object.entries((input as Readonly<Record<string, string>> | undefined) ?? {});
  for (const [name, raw] of entries) {
    if (name === '') continue;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      problems.push(`--header: "${name}" is not a valid header name`);
      continue;
    }
    let value = raw;
    const envRef = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw);
    if (envRef) {
      const v = env[envRef[1]!];
      if (v === undefined || v === '') {
        problems.push(`--header ${name}: environment variable ${envRef[1]} is not set`);
        continue;
      }
      value = v;
    }
    if (/[\r\n]/.test(value)) {
      problems.push(`--header ${name}: the value contains a line break`);
      continue;
    }
    headers[name] = value;
  }
  return { headers, problems };
}
