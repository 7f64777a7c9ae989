// `rehearse bus`: runs the embedded Event bus (protocol v1) until SIGINT/SIGTERM. Only parses
// flags; the bus itself is bus/index.ts.

import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { mergeFaults, parseFault, parseRetention, startBus, type BusOptions, type FaultConfig, type RetentionOptions } from '../bus/index.js';
import type { CommandContext } from './program.js';

interface BusFlags {
  host: string;
  port: string;
  pollTimeout: string;
  retention: RetentionOptions;
  maxPolls?: string;
  fault: FaultConfig[];
  seed: string;
}

function integer(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`"${text}" is not an integer`, flag);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${n} is outside ${min}-${max}`, flag);
  return n;
}

function seconds(text: string, flag: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`"${text}" is not a number of seconds (e.g. 25 or 0.5)`, flag);
  }
  return n;
}

/** Parses the flags into the typed options of startBus (exported for tests of flag parsing). */
export function busOptionsFromFlags(flags: BusFlags): BusOptions {
  return {
    host: flags.host,
    port: integer(flags.port, '--port', 0, 65535),
    pollTimeoutS: seconds(flags.pollTimeout, '--poll-timeout'),
    retention: flags.retention,
    ...(flags.maxPolls === undefined ? {} : { maxPolls: integer(flags.maxPolls, '--max-polls', 0) }),
    faults: mergeFaults(flags.fault),
    seed: integer(flags.seed, '--seed', 0, 2 ** 32 - 1),
  };
}

export function addBusCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('bus')
    .description('Run the embedded Event bus (protocol v1, docs/protocol.md), with optional seeded faults.')
    .option('--host <address>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 picks a free one)', '8080')
    .option('--poll-timeout <seconds>', 'long-poll timeout when a subscriber sends no timeout_s', '25')
    .option(
      '--retention <count|duration>',
      'per-topic retention: a message count (10000), an age (5m), or both (10000,5m) [default: 10000,10m]',
      (value: string, prev: RetentionOptions) => ({ ...prev, ...parseRetention(value) }),
      {} as RetentionOptions,
    )
    .option('--max-polls <n>', 'most open long-polls; a subscribe that would wait beyond it gets 503')
    .option(
      '--fault <spec>',
      'inject a fault (repeatable): drop=0.02, dup=0.01, delay=0.03:4s, error=0.02, latency=50ms+20ms, stall=30s-40s',
      (value: string, prev: FaultConfig[]) => [...prev, parseFault(value)],
      [] as FaultConfig[],
    )
    .option('--seed <n>', 'seed of every fault decision', '1')
    .action(async (flags: BusFlags) => {
      const options = busOptionsFromFlags(flags);
      // Listen for the signals before anything is printed: whoever reads the URL line may send
      // one at once, and a signal with no listener kills the process instead of closing the bus.
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => {
        stop = (): void => {
          ctx.io.signals.off('SIGINT', stop);
          ctx.io.signals.off('SIGTERM', stop);
          resolve();
        };
        ctx.io.signals.on('SIGINT', stop);
        ctx.io.signals.on('SIGTERM', stop);
      });
      let bus;
      try {
        bus = await startBus(options);
      } catch (err) {
        stop();
        throw err;
      }
      const faults = Object.keys(options.faults ?? {});
      ctx.io.stderr.write(
        `protocol v1; poll timeout ${options.pollTimeoutS} s; seed ${options.seed}` +
          (faults.length > 0 ? `; faults: ${faults.join(', ')}` : '') +
          '; stop with Ctrl-C\n',
      );
      ctx.io.stdout.write(`rehearse bus listening on ${bus.url}\n`);
      await stopped;
      await bus.close();
      ctx.io.stderr.write('rehearse bus stopped\n');
    });
}
