// The commander program. It only parses arguments and calls the library; every command's
// work is also available as a typed API from its own module.

import { Command, CommanderError, Help, type Option } from 'commander';
import { ExitCode, isRehearseError } from '../core/errors.js';
import { rehearseVersion } from '../core/version.js';
import { processIO, type CliIO } from './io.js';
import { addIngestCommand } from './ingest.js';
import { addModelCommand } from './model.js';
import { addBusCommand } from './bus.js';
import { addPlanCommand } from './plan.js';
import { addReplayCommand } from './replay.js';
import { addCapacityCommand } from './capacity.js';
import { addDemoCommand } from './demo.js';
import { addRunsCommand } from './runs.js';
import { addCompareCommand } from './compare.js';
import { addReportCommand } from './report.js';
import { addFixturesCommand } from './fixtures.js';
import { addProbeCommand } from './probe.js';
import { addMergeCommand } from './merge.js';

/**
 * Each command's action stores its exit code here instead of calling process.exit, so the
 * same program runs in-process in tests and in the real binary.
 */
export interface CommandContext {
  io: CliIO;
  setExitCode(code: number): void;
}

export function createProgram(ctx: CommandContext): Command {
  const program = new Command('rehearse')
    .description('Rehearse the back-to-school surge against a long-poll pub/sub Event bus.')
    .version(rehearseVersion)
    .showHelpAfterError('(run with --help for usage)')
    // Inherited by every command added below: repeatable flags start from [] and commander would
    // print `(default: [])`, which tells the reader nothing.
    .configureHelp({
      optionDescription(this: Help, option: Option): string {
        return Help.prototype.optionDescription.call(this, isEmptyCollection(option.defaultValue) ? withoutDefault(option) : option);
      },
    })
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
    })
    .exitOverride();
  for (const add of [
    addIngestCommand,
    addModelCommand,
    addBusCommand,
    addPlanCommand,
    addReplayCommand,
    addMergeCommand,
    addCapacityCommand,
    addProbeCommand,
    addDemoCommand,
    addRunsCommand,
    addCompareCommand,
    addReportCommand,
    addFixturesCommand,
  ]) {
    const cmd = add(program, ctx);
    cmd.exitOverride();
    cmd.configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
    });
  }
  return program;
}

function isEmptyCollection(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  return value !== null && typeof value === 'object' && Object.keys(value).length === 0;
}

/** The same option for help's eyes only, with no default to print. */
function withoutDefault(option: Option): Option {
  return Object.assign(Object.create(Object.getPrototypeOf(option) as object) as Option, option, { defaultValue: undefined });
}

/**
 * Whether the command line asks for JSON output: `--json` before any `--` (after which
 * everything is an argument). Read from argv because a failure may come before commander has
 * parsed the flags (an unknown option, a missing required one).
 */
export function wantsJson(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** What a failed command prints on stdout under --json: one object a script can parse. */
export interface JsonFailure {
  error: { code: string; message: string };
  exitCode: number;
}

/** Commander's own messages start with `error: `; the JSON message is the sentence itself. */
function commanderMessage(err: CommanderError): string {
  return err.message.replace(/^error:\s*/, '');
}

/** Runs the CLI and resolves to the process exit code. Never throws. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const json = wantsJson(argv);
  // A script that asked for --json reads stdout: the failure goes there as one object too (the
  // plain message stays on stderr for the person watching).
  const fail = (code: string, message: string, exit: number): number => {
    if (json) io.stdout.write(`${JSON.stringify({ error: { code, message }, exitCode: exit } satisfies JsonFailure)}\n`);
    return exit;
  };
  const program = createProgram({ io, setExitCode: (code) => (exitCode = code) });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0; everything else is a usage error
      // (commander has already written its message to stderr).
      return err.exitCode === 0 ? ExitCode.ok : fail('REHEARSE_USAGE', commanderMessage(err), ExitCode.usage);
    }
    if (isRehearseError(err)) {
      io.stderr.write(`rehearse: ${err.message}\n`);
      return fail(err.code, err.message, err.exitCode);
    }
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    io.stderr.write(`rehearse: unexpected internal error (please report it):\n${detail}\n`);
    return fail('REHEARSE_INTERNAL', `unexpected internal error: ${err instanceof Error ? err.message : String(err)}`, ExitCode.usage);
  }
}
