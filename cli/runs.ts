import type { Command } from 'commander';
import { RehearseError } from '../core/errors.js';
import type { CommandContext } from './program.js';

// Placeholder until its issue lands: registered so that --help lists the whole pipeline.
export function addRunsCommand(program: Command, _ctx: CommandContext): Command {
  return program
    .command('runs')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => {
      throw new RehearseError('REHEARSE_USAGE', '`rehearse runs` is not built yet.');
    });
}
