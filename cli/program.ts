// The commander program. It only parses arguments and calls the library; every command's
// work is also available as a typed API from its own module.

import { Command, CommanderError } from 'commander';
import { ExitCode, isRehearseError } from '../core/errors.js';
import { rehearseVersion } from '../core/version.js';
import { processIO, type CliIO } from './io.js';
import { addIngestCommand } from './ingest.js';
import { addModelCommand } from './model.js';
import { addBusCommand } from './bus.js';
import { addPlanCommand } from './plan.js';
import { addReplayCommand } from './replay.js';
import { addDemoCommand } from './demo.js';
import { addRunsCommand } from './runs.js';
import { addCompareCommand } from './compare.js';
import { addReportCommand } from './report.js';
import { addFixturesCommand } from './fixtures.js';
import { addProbeCommand } from './probe.js';

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

/** Runs the CLI and resolves to the process exit code. Never throws. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = createProgram({ io, setExitCode: (code) => (exitCode = code) });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0; everything else is a usage error.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (isRehearseError(err)) {
      io.stderr.write(`rehearse: ${err.message}\n`);
      return err.exitCode;
    }
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    io.stderr.write(`rehearse: unexpected internal error (please report it):\n${detail}\n`);
    return ExitCode.usage;
  }
}
