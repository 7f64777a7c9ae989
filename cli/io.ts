// Where a command writes. Passed in, never global, so tests run commands in-process and
// read what a person at the terminal would have seen.

export interface Output {
  write(text: string): unknown;
  /** True when a person is watching: live progress lines are drawn only then. */
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliIO {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  /** Called for SIGINT/SIGTERM handling by long-running commands; tests pass their own. */
  signals: NodeJS.EventEmitter;
}

export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, signals: process };
}

/** An Output that keeps what was written, for tests and for --json capture. */
export class MemoryOutput implements Output {
  readonly chunks: string[] = [];
  readonly isTTY = false;
  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }
  text(): string {
    return this.chunks.join('');
  }
}
