// What `rehearse ingest` (and `rehearse merge`) is given: files, directories (every regular,
// non-hidden file in them) or a quoted glob the shell did not expand (`'logs/*.csv.gz'`, one
// directory deep).

import fs from 'node:fs';
import nodePath from 'node:path';
import { InputError } from '../core/errors.js';

const globChars = /[*?[{]/;

export interface ExpandOptions {
  /** Which files of a directory count (default: every one); files named outright always do. */
  accept?: (name: string) => boolean;
  /** Why a directory with no accepted file is refused. */
  emptyDirectory?: string;
}

export function expandInputs(inputs: readonly string[], o: ExpandOptions = {}): string[] {
  const out: string[] = [];
  for (const input of inputs) {
    const stat = fs.statSync(input, { throwIfNoEntry: false });
    if (stat?.isDirectory()) {
      const files = fs
        .readdirSync(input, { withFileTypes: true })
        .filter((e) => e.isFile() && !e.name.startsWith('.') && (o.accept?.(e.name) ?? true))
        .map((e) => nodePath.join(input, e.name))
        .sort();
      if (files.length === 0) throw new InputError(o.emptyDirectory ?? 'directory holds no files to ingest', { file: input });
      out.push(...files);
    } else if (!stat && globChars.test(nodePath.basename(input))) {
      const dir = nodePath.dirname(input);
      const matches = (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ? fs.readdirSync(dir) : [])
        .map((name) => nodePath.join(dir, name))
        .filter((file) => nodePath.matchesGlob(file, input) && fs.statSync(file).isFile())
        .sort();
      if (matches.length === 0) throw new InputError('no file matches this pattern', { file: input });
      out.push(...matches);
    } else {
      out.push(input); // a file, or a missing one prepareFile names
    }
  }
  return out;
}
