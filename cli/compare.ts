import type { Command } from 'commander';
import { RehearseError } from '../core/errors.js';
import type { CommandContext } from './program.js';

// Placeholder until its issue lands: registered so that --help lists the whole pipeline.
export function addCompareCommand(program: Command, _ctx: CommandContext): Command {
  return program
    .command('compare')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => {
      throw new RehearseError('REHEARSE_USAGE', '`rehearse compare` is not built yet.');
    });
}
