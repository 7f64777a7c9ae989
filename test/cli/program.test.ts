import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';

const run = promisify(execFile);
const bin = path.resolve(__dirname, '../../dist/cli/bin.js');

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

describe('rehearse CLI', () => {
  it('lists every pipeline command in --help', async () => {
    const out = io();
    const code = await main(['node', 'rehearse', '--help'], out);
    expect(code).toBe(0);
    for (const cmd of ['ingest', 'model', 'bus', 'plan', 'replay', 'demo', 'runs', 'compare', 'report']) {
      expect(out.stdout.text()).toMatch(new RegExp(`\\n\\s+${cmd}\\b`));
    }
  });

  it('exits 2 with a message naming an unknown flag', async () => {
    const out = io();
    const code = await main(['node', 'rehearse', '--no-such-flag'], out);
    expect(code).toBe(2);
    expect(out.stderr.text()).toContain('--no-such-flag');
  });

  it('the built binary prints its version', async () => {
    const { stdout } = await run(process.execPath, [bin, '--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
