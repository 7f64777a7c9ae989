// Flags of the benchmark scripts, read with node:util's parseArgs (strict: an unknown or
// malformed flag stops the bench before it measures anything).
import { parseArgs } from 'node:util';
import { parseDuration } from '../core/duration.js';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;

export function benchFlags<S extends FlagSpec>(spec: S, argv = process.argv.slice(2)) {
  const values = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  const text = (name: keyof S & string): string => String(values[name] ?? '');
  return {
    values,
    text,
    flag: (name: keyof S & string): boolean => values[name] === true,
    number(name: keyof S & string): number {
      const n = Number(text(name).replaceAll('_', ''));
      if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${text(name)}`);
      return n;
    },
    numbers(name: keyof S & string): number[] {
      return text(name)
        .split(',')
        .map((part) => {
          const n = Number(part.replaceAll('_', ''));
          if (!Number.isFinite(n)) throw new Error(`--${name}: not a list of numbers: ${text(name)}`);
          return n;
        });
    },
    ms(name: keyof S & string): number {
      const v = parseDuration(text(name));
      if (v === null) throw new Error(`--${name}: not a duration: ${text(name)}`);
      return v;
    },
  };
}
