// Typed errors shared by every stage. Callers match on `code`, never on message text;
// the CLI maps `exitCode` to the process exit status and prints `message` (written for
// the person at the terminal: what went wrong, where, what to do next) without a stack.

export const ExitCode = {
  ok: 0,
  /** The rehearsal ran and its SLO (or a --fail-on regression rule) failed. */
  failed: 1,
  /** Usage, input or setup problem: nothing was measured. */
  usage: 2,
} as const;

export type ErrorCode =
  | 'REHEARSE_USAGE' // a flag or argument is wrong
  | 'REHEARSE_INPUT' // an input file is malformed (names file:line)
  | 'REHEARSE_MAPPING' // a mapping file is wrong (names the field)
  | 'REHEARSE_FORMAT' // a file's format is unknown or ambiguous
  | 'REHEARSE_TOO_MANY_ERRORS' // --max-errors exceeded for a file
  | 'REHEARSE_MODEL' // the model database is missing or empty
  | 'REHEARSE_RUN_NOT_FOUND' // a run name did not resolve
  | 'REHEARSE_TARGET' // the target is unreachable or does not speak protocol v1
  | 'REHEARSE_DB' // a database file cannot be opened or is not ours
  | 'REHEARSE_RESULT' // a shard's run result is unreadable, or shards do not belong together
  | 'REHEARSE_WORKER' // a worker process of --workers died or broke its protocol
  | 'REHEARSE_INTERNAL';

export class RehearseError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options?.exitCode ?? ExitCode.usage;
  }
}

/** A flag, argument or option value is invalid. `flag` is how the user spelled it, e.g. `--scale`. */
export class UsageError extends RehearseError {
  readonly flag: string | undefined;
  constructor(message: string, flag?: string) {
    super('REHEARSE_USAGE', flag ? `${flag}: ${message}` : message);
    this.flag = flag;
  }
}

/** A line, record or whole file of user input cannot be used. */
export class InputError extends RehearseError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, where: { file?: string; line?: number; code?: ErrorCode } = {}) {
    const at = where.file ? `${where.file}${where.line !== undefined ? `:${where.line}` : ''}: ` : '';
    super(where.code ?? 'REHEARSE_INPUT', `${at}${message}`);
    this.file = where.file;
    this.line = where.line;
  }
}

export function isRehearseError(err: unknown): err is RehearseError {
  return err instanceof RehearseError;
}
