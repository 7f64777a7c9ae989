// The README's walkthrough runs as written: every ```sh command under "## Walkthrough" (and the
// Nchan rehearsal under "## Targets" where nginx with Nchan is installed) runs in order, in a temp
// dir, against the built CLI (`npx rehearse` -> `node dist/cli/bin.js`), and exits as the README
// says (0, or the code in an `# exits N` comment).
//
// The only substitutions, as the README states them: the replays' `2m` (a `--duration 2m` flag or a
// `"duration": "2m"` in examples/) becomes `shortDuration`, and ports 8080, 8081 and 8082 become free
// ones, in the commands and in the copy of examples/ the commands read. A command ending in `&` is a
// server: the test starts it, waits until its port accepts connections, and stops it by its pid.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../servers/process.js';
import { nchanAvailable } from '../servers/nginx-nchan.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'dist', 'cli', 'bin.js');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
/** What the walkthrough's `2m` replays last here: enough for the 10 s ramp and a steady part. */
const shortDuration = '15s';
const commandLimitMs = 90_000;

export interface ReadmeCommand {
  /** The command as the README writes it (continuation lines joined, comment removed). */
  text: string;
  /** The exit code the README promises: 0 unless a comment says `exits N`. */
  exitCode: number;
  /** Ends in `&`: a server that runs while the following commands run. */
  background: boolean;
}

/** The commands of every ```sh block in the README section `## heading`. */
export function readmeCommands(markdown: string, heading: string): ReadmeCommand[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const commands: ReadmeCommand[] = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    const joined = block[1]!.replace(/\\\n\s*/g, '');
    for (const line of joined.split('\n')) {
      if (line.trim() === '') continue;
      // A comment starts at ' # ' (none of the commands has a '#' of its own).
      const hash = line.search(/\s#\s/);
      const comment = hash < 0 ? '' : line.slice(hash);
      let text = (hash < 0 ? line : line.slice(0, hash)).trim();
      const background = text.endsWith('&');
      if (background) text = text.slice(0, -1).trim();
      const promised = /\bexits (\d)\b/.exec(comment);
      commands.push({ text, exitCode: promised ? Number(promised[1]) : 0, background });
    }
  }
  return commands;
}

interface Ports {
  bus: number;
  nchan: number;
  /** The capacity search's bus with a service rate (README step 5). */
  capacity: number;
}

/** The documented substitutions, applied to commands and to the examples/ they read. */
function substitute(text: string, ports: Ports): string {
  return text
    .replace(/(--duration |"duration": ")2m\b/g, `$1${shortDuration}`)
    .replace(/\b8080\b/g, String(ports.bus))
    .replace(/\b8081\b/g, String(ports.nchan))
    .replace(/\b8082\b/g, String(ports.capacity));
}

function copyExamples(dir: string, ports: Ports): void {
  const walk = (from: string, to: string): void => {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      const source = path.join(from, entry.name);
      const target = path.join(to, entry.name);
      if (entry.isDirectory()) walk(source, target);
      else if (/\.(json|conf)$/.test(entry.name)) fs.writeFileSync(target, substitute(fs.readFileSync(source, 'utf8'), ports));
      else fs.copyFileSync(source, target);
    }
  };
  walk(path.join(root, 'examples'), path.join(dir, 'examples'));
}

function shellLine(command: ReadmeCommand, ports: Ports): string {
  return substitute(command.text, ports).replace(/^npx rehearse\b/, `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)}`);
}

interface Finished {
  code: number | null;
  output: string;
}

function env(dir: string): NodeJS.ProcessEnv {
  // HOME in the temp dir: ingest creates its pseudonym key under ~/.config, and nothing of the
  // walkthrough may write outside the temp dir.
  return { PATH: process.env.PATH, HOME: dir, LANG: 'C.UTF-8' };
}

function runToEnd(line: string, dir: string): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', line], { cwd: dir, env: env(dir), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`"${line}" did not finish within ${commandLimitMs} ms:\n${output}`));
    }, commandLimitMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; bounded in attempts and time. */
async function untilListening(port: number, server: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    if (server.exitCode !== null || server.signalCode !== null) break;
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the server did not listen on 127.0.0.1:${port}:\n${output()}`);
}

class Servers {
  private readonly running: ChildProcess[] = [];
  private readonly onExit = (): void => {
    for (const child of this.running) child.kill('SIGKILL');
  };

  constructor() {
    // A test process that dies without afterAll still takes its servers with it.
    process.once('exit', this.onExit);
  }

  /** `exec` so that the pid is the server's own, and killing it leaves nothing behind. */
  async start(line: string, dir: string, port: number): Promise<ChildProcess> {
    const child = spawn('bash', ['-c', `exec ${line}`], { cwd: dir, env: env(dir), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    this.running.push(child);
    await untilListening(port, child, () => output);
    return child;
  }

  async stopAll(): Promise<void> {
    process.removeListener('exit', this.onExit);
    for (const child of this.running.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid!, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 5_000)));
      if ((await Promise.race([exited, late])) === 'late') {
        process.kill(child.pid!, 'SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }
  }
}

/** Runs the commands in order; returns each one's output by its README text. */
async function runCommands(commands: ReadmeCommand[], dir: string, ports: Ports, servers: Servers): Promise<Map<string, string>> {
  const outputs = new Map<string, string>();
  for (const command of commands) {
    const line = shellLine(command, ports);
    if (command.background) {
      const port = command.text.startsWith('nginx') ? ports.nchan : ports.bus;
      await servers.start(line, dir, port);
      continue;
    }
    const done = await runToEnd(line, dir);
    expect(done.code, `"${command.text}" exited ${done.code}, the README says ${command.exitCode}:\n${done.output}`).toBe(command.exitCode);
    outputs.set(command.text, done.output);
  }
  return outputs;
}

describe('readmeCommands', () => {
  it('joins continuation lines, drops comments, reads "exits N" and a trailing &', () => {
    const md = '# x\n\n## Walkthrough\n\n```sh\nnpx rehearse bus --port 8080 &     # a server\nnpx rehearse replay --db m.db \\\n    --release 2.4   # exits 1: the SLO fails\n```\n\n## Next\n\n```sh\nnot this\n```\n';
    expect(readmeCommands(md, 'Walkthrough')).toEqual([
      { text: 'npx rehearse bus --port 8080', exitCode: 0, background: true },
      { text: 'npx rehearse replay --db m.db --release 2.4', exitCode: 1, background: false },
    ]);
  });

  it('finds the whole walkthrough in README.md, from the fixtures to the report', () => {
    const texts = readmeCommands(readme, 'Walkthrough').map((c) => c.text);
    expect(texts[0]).toMatch(/^npx rehearse fixtures /);
    expect(texts.some((t) => /^npx rehearse bus /.test(t))).toBe(true);
    expect(texts.filter((t) => /^npx rehearse replay .*--release 2\.[34]\b/.test(t))).toHaveLength(2);
    expect(texts.some((t) => /^npx rehearse report latest --vs previous /.test(t))).toBe(true);
    expect(texts.some((t) => /^npx rehearse capacity .*--release 2\.4\b/.test(t))).toBe(true);
  });
});

describe('the README walkthrough, as written', () => {
  let dir: string;
  let ports: Ports;
  const servers = new Servers();

  beforeAll(async () => {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first (npm test does)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-readme-'));
    ports = { bus: await freePort(), nchan: await freePort(), capacity: await freePort() };
    copyExamples(dir, ports);
  });

  afterAll(async () => {
    await servers.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs every command in order, each exiting as the README says', async () => {
    const outputs = await runCommands(readmeCommands(readme, 'Walkthrough'), dir, ports, servers);

    // What the walkthrough says it leaves behind.
    expect(fs.statSync(path.join(dir, 'report.html')).size).toBeGreaterThan(10_000);
    const db = new Database(path.join(dir, 'model.db'), { readonly: true });
    try {
      const runs = db.prepare('SELECT release, options, shard_index, shard_count FROM runs ORDER BY id').all() as Array<{
        release: string;
        options: string;
        shard_index: number | null;
        shard_count: number;
      }>;
      // Two replays, the capacity search of step 5, then step 6's replay split over two workers.
      expect(runs.map((r) => r.release)).toEqual(['2.3', '2.4', '2.4', null]);
      expect(runs.map((r) => [r.shard_index, r.shard_count])).toEqual([[null, 1], [null, 1], [null, 1], [null, 2]]);
      expect(db.prepare('SELECT count(*) FROM run_capacity').pluck().get()).toBe(1);
      // The run from the configuration file records which file, byte for byte.
      const config = JSON.parse(runs[1]!.options).config;
      expect(config.path).toBe(path.join(dir, 'examples', 'rehearse.json'));
      expect(config.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.parse(runs[0]!.options).config).toBeNull();
    } finally {
      db.close();
    }
    const compare = [...outputs.entries()].find(([text]) => text.startsWith('npx rehearse compare'));
    expect(compare?.[1]).toMatch(/2\.3/);
  }, 300_000);

  describe.skipIf(!nchanAvailable)('## Targets: the Nchan rehearsal in three commands (nginx with Nchan installed)', () => {
    it('starts nginx from examples/nchan, probes it and replays against it', async () => {
      const commands = readmeCommands(readme, 'Targets');
      expect(commands.map((c) => c.text.split(' ').slice(0, 3).join(' '))).toEqual(['nginx -p examples/nchan', 'npx rehearse probe', 'npx rehearse replay']);
      const outputs = await runCommands(commands, dir, ports, servers);
      expect(outputs.get(commands[1]!.text)).toMatch(/^PASS: nchan works/m);
      expect(outputs.get(commands[2]!.text)).toMatch(/PASS {2}run \d+ \(nchan\)/);
    }, 180_000);
  });
});
