// `rehearse bus` as a user runs it: the built binary, driven by clients that are not ours
// (curl and Python's standard library), stopped by SIGTERM.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { waitFor } from './client.js';

const run = promisify(execFile);
const bin = path.resolve(__dirname, '../../dist/cli/bin.js');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts `rehearse bus` and resolves to its URL, read from the line it prints on stdout. */
async function startCli(args: string[] = []): Promise<{ child: ChildProcess; url: string; exited: Promise<{ code: number | null; signal: string | null; at: number }> }> {
  const child = spawn(process.execPath, [bin, 'bus', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL printed; stdout so far: ${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`rehearse bus exited with ${code} before printing its URL`)));
  });
  return { child, url, exited };
}

function curl(args: string[]): Promise<{ stdout: string }> {
  return run('/usr/bin/curl', ['-sS', '--max-time', '20', ...args]);
}

const pythonClient = `
import json, sys, urllib.request
base = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
pub = post("/v1/events/publish", {"actor": "py", "messages": [{"topic": "py", "id": "p%d" % i, "data": {"i": i}} for i in range(5)]})
got, cursors = [], {"py": 0}
for _ in range(10):
    a = post("/v1/events/subscribe", {"actor": "py", "topics": cursors, "timeout_s": 0.2})
    got += a["messages"]
    cursors = a["cursors"]
    if not a["messages"]:
        break
try:
    post("/v1/events/subscribe", {"actor": "py", "topics": {"py": "bad"}})
    status = 200
except urllib.error.HTTPError as e:
    status = e.code
print(json.dumps({"accepted": pub["accepted"], "seqs": [m["seq"] for m in got], "ids": [m["id"] for m in got], "cursors": cursors, "bad_status": status}))
`;

describe('rehearse bus (built binary)', () => {
  it('serves curl and Python clients, and on SIGTERM answers open polls and exits 0 within 2 s', async () => {
    const { child, url, exited } = await startCli(['--poll-timeout', '30']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const published = await curl(['-X', 'POST', '-H', 'content-type: application/json', '--data', '{"actor":"curl","messages":[{"topic":"c","id":"c1","data":{"hello":"world"}}]}', `${url}/v1/events/publish`]);
    expect(JSON.parse(published.stdout)).toEqual({ accepted: 1 });
    const got = await curl(['-X', 'POST', '--data', '{"actor":"curl","topics":{"c":0},"timeout_s":0.2}', `${url}/v1/events/subscribe`]);
    expect(JSON.parse(got.stdout)).toEqual({ messages: [{ topic: 'c', seq: 1, id: 'c1', data: { hello: 'world' } }], cursors: { c: 1 } });
    const notFound = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${url}/nope`]);
    expect(notFound.stdout).toBe('404');

    const py = await run('python3', ['-c', pythonClient, url]);
    expect(JSON.parse(py.stdout)).toEqual({
      accepted: 5,
      seqs: [1, 2, 3, 4, 5],
      ids: ['p0', 'p1', 'p2', 'p3', 'p4'],
      cursors: { py: 5 },
      bad_status: 400,
    });

    // An open long-poll (30 s) must be answered by the shutdown, not by its timeout.
    const open = curl(['-X', 'POST', '--data', '{"actor":"curl","topics":{"c":1,"quiet":null}}', `${url}/v1/events/subscribe`]);
    let polls = 0;
    for (let i = 0; i < 400 && polls < 1; i++) {
      const m = await curl([`${url}/metrics`]);
      polls = Number(/^rehearse_bus_open_polls (\d+)$/m.exec(m.stdout)?.[1] ?? 0);
      if (polls < 1) await new Promise((r) => setTimeout(r, 10));
    }
    expect(polls).toBe(1);
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    const answer = await open;
    expect(JSON.parse(answer.stdout)).toEqual({ messages: [], cursors: { c: 1, quiet: 0 } });
    const { code, signal, at } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - signalledAt).toBeLessThan(2000);
  });

  it('exits 0 on SIGINT too', async () => {
    const { child, exited } = await startCli();
    const signalledAt = Date.now();
    child.kill('SIGINT');
    const { code, signal, at } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - signalledAt).toBeLessThan(2000);
  });

  it('names the port when it is taken', async () => {
    const { url } = await startCli();
    const port = new URL(url).port;
    const taken = await run(process.execPath, [bin, 'bus', '--port', port]).catch((err: { code: number; stderr: string }) => err);
    expect(taken).toMatchObject({ code: 2, stderr: expect.stringMatching(/--port: 127\.0\.0\.1:\d+ is already in use/) });
  });
});

describe('rehearse bus flag validation', () => {
  async function usage(args: string[]): Promise<{ code: number; stderr: string }> {
    const out = { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
    const code = await main(['node', 'rehearse', 'bus', ...args], out);
    return { code, stderr: out.stderr.text() };
  }

  it.each([
    [['--port', 'eighty'], /--port: "eighty" is not an integer/],
    [['--port', '70000'], /--port: 70000 is outside 0-65535/],
    [['--poll-timeout', 'soon'], /--poll-timeout: "soon" is not a number of seconds/],
    [['--poll-timeout', '1000'], /--poll-timeout: must be a number of seconds from 0 to 300/],
    [['--retention', '5 minutes'], /--retention: "5 minutes" is not a retention/],
    [['--max-polls', '-3'], /--max-polls: -3 is outside/],
    [['--fault', 'drop=0.1', '--fault', 'delay=0.1'], /--fault: "delay=0.1": delay takes <fraction>:<duration>/],
    [['--fault', 'chaos=1'], /--fault: "chaos=1": unknown fault "chaos"/],
    [['--seed', 'abc'], /--seed: "abc" is not an integer/],
  ])('rejects %j with a message naming the flag', async (args, message) => {
    const { code, stderr } = await usage(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('names the host when it cannot listen there', async () => {
    const { code, stderr } = await usage(['--host', '203.0.113.7', '--port', '0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--host: cannot listen on 203\.0\.113\.7:0 \(EADDRNOTAVAIL\)/);
  });

  it('runs in-process with faults and stops on the signal emitter', async () => {
    const stdout = new MemoryOutput();
    const stderr = new MemoryOutput();
    const signals = new EventEmitter();
    const done = main(
      ['node', 'rehearse', 'bus', '--port', '0', '--fault', 'drop=0.02', '--fault', 'stall=30s-40s', '--max-polls', '5000', '--retention', '100,1m', '--seed', '9'],
      { stdout, stderr, env: {}, signals },
    );
    await waitFor(() => /listening on http/.test(stdout.text()), 'the URL line');
    expect(stderr.text()).toMatch(/seed 9; faults: drop, stalls/);
    signals.emit('SIGTERM');
    expect(await done).toBe(0);
  });
});
