// The flags that say which bus and how to speak to it, shared by replay, demo and probe so all
// three accept and word them the same way: --protocol and --target-option.

import type { Command } from 'commander';
import { builtinProtocolNames } from '../replay/target/index.js';

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function addTargetOptions(command: Command): Command {
  return command
    .option('--protocol <name|file>', `the bus's protocol: ${builtinProtocolNames().join(', ')}, a profile FILE.json or a module FILE.mjs (docs/targets.md)`, 'v1')
    .option('--target-option <key=value>', "a setting of the protocol (repeatable), e.g. subPath=/events/sub for nchan (docs/targets.md)", collect, []);
}

/**
 * `--target-option key=value` lines to the map a protocol reads; every problem collected. The
 * protocol itself rejects keys it does not know (createTarget).
 */
export function parseTargetOptions(lines: readonly string[]): { options: Record<string, string>; problems: string[] } {
  const options: Record<string, string> = {};
  const problems: string[] = [];
  for (const line of lines) {
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z0-9._-]+$/.test(key)) {
      problems.push(`--target-option: expected key=value, got '${line}'`);
      continue;
    }
    if (key in options) {
      problems.push(`--target-option: '${key}' is given twice`);
      continue;
    }
    options[key] = line.slice(eq + 1).trim();
  }
  return { options, problems };
}
