import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.js';
import { createTarget, type OutgoingMessage, type PollOutcome, type ReceivedMessage, type Target, type TargetSession } from '../../replay/target/index.js';
import { activeChannel, nchanMaxTopicsPerPoll, startCursor } from '../../replay/target/nchan.js';
import { nchanAvailable, startNchan, type NchanServerOptions } from '../servers/nginx-nchan.js';
import { freePort as closedPort } from '../servers/process.js';
import type { TargetServer } from '../servers/types.js';

// The nchan target against a real nginx + Nchan 1.3.6 (Debian packages; .ci/run installs them):
// identity round trip, multiplexing, cursor resume, 408 as an empty poll, both
// nchan_subscriber_first_message settings, the 255-channel limit, the status policy, a restart.

describe('Nchan Etags (pure)', () => {
  it('starts every channel before its oldest message', () => {
    expect(startCursor(1)).toEqual({ etag: '0:0' });
    expect(startCursor(3)).toEqual({ modifiedSince: 'Thu, 01 Jan 1970 00:00:01 GMT', etag: '[-],-,-' });
  });

  it('reads which channel delivered the message from the bracketed tag', () => {
    expect(activeChannel('0', 1)).toBe(0);
    expect(activeChannel('[0],-,-', 3)).toBe(0);
    expect(activeChannel('2,[2],-', 3)).toBe(1);
    expect(activeChannel('1796134607:1,-,[4]', 3)).toBe(2);
    expect(activeChannel('0,1', 2)).toBeUndefined(); // no active tag
    expect(activeChannel('[0],1', 3)).toBeUndefined(); // not this poll's channel count
    expect(activeChannel('W/"abc"', 1)).toBeUndefined(); // not Nchan's
  });
});

const unavailable = `nginx with Nchan is not installed (${'/usr/sbin/nginx'} and libnginx-mod-nchan): .ci/run installs them`;
if (!nchanAvailable) console.warn(`skipping the Nchan target tests: ${unavailable}`);

describe.skipIf(!nchanAvailable)('nchan target against nginx + Nchan', () => {
  const servers: TargetServer[] = [];
  const targets: Target[] = [];
  let shared: TargetServer;
  let run = 0;

  async function server(opts: NchanServerOptions): Promise<TargetServer> {
    const s = await startNchan(opts);
    servers.push(s);
    return s;
  }

  async function target(s: { url: string; targetOptions?: Record<string, string> }, options?: Record<string, string>, pollTimeoutS = 2): Promise<Target> {
    const t = await createTarget({ protocol: 'nchan', url: s.url, headers: {}, pollTimeoutS, requestTimeoutMs: 5000, publishConnections: 8, options: options ?? s.targetOptions ?? {} });
    targets.push(t);
    return t;
  }

  /** Fresh topics per test, in rehearse's shape: `r<run>.c<n>.l1.events`. */
  function topics(n: number): string[] {
    run++;
    const prefix = `r${process.pid.toString(36)}x${run}`;
    return Array.from({ length: n }, (_, i) => `${prefix}.c${i}.l1.events`);
  }

  let nextId = 1;
  function message(topic: string): OutgoingMessage {
    return { id: nextId++, topic, sentMs: 1000 + nextId, from: 'learner-1' };
  }

  /** Polls until `want` messages arrived (or `want` says so), a bounded number of times, collecting every outcome. */
  async function pollFor(session: TargetSession, want: number | ((got: ReceivedMessage[]) => boolean), limit = { polls: 400, ms: 30_000 }): Promise<{ got: ReceivedMessage[]; outcomes: PollOutcome[] }> {
    const got: ReceivedMessage[] = [];
    const outcomes: PollOutcome[] = [];
    const done = typeof want === 'number' ? () => got.length >= want : () => want(got);
    const deadline = Date.now() + limit.ms;
    for (let i = 0; i < limit.polls && !done() && Date.now() < deadline; i++) {
      const o = await session.poll(AbortSignal.timeout(limit.ms));
      outcomes.push(o);
      if (o.kind === 'messages') got.push(...o.messages);
    }
    return { got, outcomes };
  }

  const signal = () => AbortSignal.timeout(20_000);

  beforeAll(async () => {
    // nchan_subscriber_timeout above the client's --poll-timeout (2 s here), as docs/targets.md asks.
    shared = await startNchan({ timeoutS: 30 });
  }, 20_000);
  afterEach(async () => {
    for (const t of targets.splice(0)) await t.close();
    for (const s of servers.splice(0)) await s.stop();
  });
  afterAll(async () => {
    await shared?.stop();
  });

  it('round-trips one message with its identity intact, and the server counts it', async () => {
    const t = await target(shared);
    const [topic] = topics(1) as [string];
    expect(t.protocol).toBe('nchan');
    expect(t.maxTopicsPerPoll).toBe(255);
    expect(t.channel(topic)).toBe(topic);
    const session = t.subscribe('proctor-1', [topic]);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    const before = await shared.publishedCount();
    const m = message(topic);
    expect(await t.publish('learner-1', [m], signal())).toEqual({ kind: 'ok' });
    expect(await shared.publishedCount()).toBe(before + 1);
    expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: m.id, topic, deliveredOn: topic }], unidentified: 0 });
    await session.close();
  });

  it('multiplexes several channels over one poll and says which channel delivered each message', async () => {
    const t = await target(shared);
    const chans = topics(4);
    const session = t.subscribe('proctor-1', chans);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    const sent = chans.map((c) => message(c));
    // One batch over four channels: four POSTs, in order.
    expect(await t.publish('learner-1', sent, signal())).toEqual({ kind: 'ok' });
    const { got, outcomes } = await pollFor(session, 4, { polls: 10, ms: 10_000 });
    // Nchan answers one message per poll, oldest first.
    expect(outcomes.map((o) => (o.kind === 'messages' ? o.messages.length : o.kind))).toEqual([1, 1, 1, 1]);
    expect(got).toEqual(sent.map((m) => ({ id: m.id, topic: m.topic, deliveredOn: m.topic })));
  });

  it('resumes from its cursor over many polls: 200 messages on 5 channels published while polling, none lost, none twice', async () => {
    const t = await target(shared);
    const chans = topics(5);
    const session = t.subscribe('proctor-1', chans);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    const sent: OutgoingMessage[] = [];
    for (let i = 0; i < 200; i++) sent.push(message(chans[i % 5]!));
    const publishing = (async () => {
      for (let i = 0; i < sent.length; i += 8) {
        const outcome = await t.publish('learner-1', sent.slice(i, i + 8), signal());
        if (outcome.kind !== 'ok') return outcome;
      }
      return { kind: 'ok' as const };
    })();
    const { got, outcomes } = await pollFor(session, 200, { polls: 600, ms: 30_000 });
    expect(await publishing).toEqual({ kind: 'ok' });
    expect(outcomes.filter((o) => o.kind !== 'messages' && o.kind !== 'empty')).toEqual([]);
    const ids = got.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(sent.map((m) => m.id));
    for (const m of got) expect(m.deliveredOn).toBe(m.topic);
    // Per channel, in publish order.
    for (const c of chans) {
      expect(got.filter((m) => m.topic === c).map((m) => m.id)).toEqual(sent.filter((m) => m.topic === c).map((m) => m.id));
    }
  }, 40_000);

  it("a poll with nothing ends as 'empty' at --poll-timeout, and the cursor survives idle polls", async () => {
    const t = await target(shared, undefined, 1);
    const chans = topics(3);
    const session = t.subscribe('proctor-1', chans);
    await session.open(signal());
    const first = message(chans[0]!);
    await t.publish('learner-1', [first], signal());
    expect((await session.poll(signal())).kind).toBe('messages');
    // Several idle rounds, each followed by a message on another channel: every one arrives, once.
    for (let round = 1; round <= 3; round++) {
      const started = performance.now();
      expect(await session.poll(signal())).toEqual({ kind: 'empty' });
      expect(performance.now() - started).toBeGreaterThan(900); // the client's 1 s, not an error
      const next = message(chans[round % 3]!);
      await t.publish('learner-1', [next], signal());
      expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: next.id, topic: next.topic, deliveredOn: next.topic }], unidentified: 0 });
    }
  });

  it("takes Nchan's 408 (nchan_subscriber_timeout) as 'empty', keeping the cursor", async () => {
    const s = await server({ timeoutS: 1 });
    const t = await target(s, undefined, 10);
    const [topic] = topics(1) as [string];
    const session = t.subscribe('proctor-1', [topic]);
    await session.open(signal());
    const first = message(topic);
    await t.publish('learner-1', [first], signal());
    expect((await session.poll(signal())).kind).toBe('messages');
    const started = performance.now();
    expect(await session.poll(signal())).toEqual({ kind: 'empty' });
    expect(performance.now() - started).toBeLessThan(5000); // the server's 1 s, long before the client's 10 s
    const second = message(topic);
    await t.publish('learner-1', [second], signal());
    // Only the new message: the 408 (no Last-Modified) did not move the cursor back to the start.
    expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: second.id, topic, deliveredOn: topic }], unidentified: 0 });
  });

  it('counts a message without rehearse payload as unidentified', async () => {
    const t = await target(shared);
    const [topic] = topics(1) as [string];
    const session = t.subscribe('proctor-1', [topic]);
    await session.open(signal());
    const res = await request(`${shared.url}/pub/${topic}`, { method: 'POST', body: 'hello from a stranger' });
    await res.body.text();
    expect(res.statusCode).toBe(202);
    expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [], unidentified: 1 });
  });

  for (const firstMessage of ['oldest', 'newest'] as const) {
    it(`with nchan_subscriber_first_message ${firstMessage}, delivers a message published after open() and before the first poll`, async () => {
      const s = await server({ firstMessage, timeoutS: 2 });
      const t = await target(s);
      const chans = topics(3);
      const session = t.subscribe('proctor-1', chans);
      expect(await session.open(signal())).toEqual({ kind: 'ok' });
      const m = message(chans[2]!);
      expect(await t.publish('learner-1', [m], signal())).toEqual({ kind: 'ok' });
      expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: m.id, topic: m.topic, deliveredOn: m.topic }], unidentified: 0 });
      // What the explicit start cursor protects against: a poll without one follows first_message.
      const naive = await request(`${s.url}/sub/${chans.join(',')}`, { headersTimeout: 10_000 });
      await naive.body.text();
      expect(naive.statusCode).toBe(firstMessage === 'oldest' ? 200 : 408);
    });
  }

  it('carries 255 channels in one poll and refuses 256 without asking the bus', async () => {
    const t = await target(shared);
    const chans = topics(256);
    const full = t.subscribe('proctor-1', chans.slice(0, 255));
    expect(await full.open(signal())).toEqual({ kind: 'ok' });
    const last = message(chans[254]!);
    await t.publish('learner-1', [last], signal());
    expect(await full.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: last.id, topic: last.topic, deliveredOn: last.topic }], unidentified: 0 });

    const tooMany = t.subscribe('proctor-1', chans);
    expect(chans.length).toBeGreaterThan(nchanMaxTopicsPerPoll);
    const opened = await tooMany.open(signal());
    expect(opened).toMatchObject({ kind: 'fatal' });
    expect(opened.kind === 'fatal' && opened.detail).toMatch(/at most 255 channels/);
    expect(await tooMany.poll(signal())).toMatchObject({ kind: 'fatal' });
    // Nchan's own answer to 256 channels, for the record: 403.
    const direct = await request(`${shared.url}/sub/${chans.join(',')}`);
    await direct.body.text();
    expect(direct.statusCode).toBe(403);
  });

  it('treats 4xx as fatal, and reports how many leading messages of a batch were stored', async () => {
    const wrong = await target(shared, { pubPath: '/nowhere', subPath: '/nowhere' });
    const [topic] = topics(1) as [string];
    expect(await wrong.publish('learner-1', [message(topic)], signal())).toMatchObject({ kind: 'fatal', status: 404, stored: 0 });
    expect(await wrong.subscribe('proctor-1', [topic]).poll(signal())).toMatchObject({ kind: 'fatal', status: 404 });

    // A channel id over nchan_max_channel_id_length (1024 on the pub location) gets 403 half-way through a batch.
    const t = await target(shared);
    const batch = [message(topic), message(`${topic}.${'x'.repeat(1100)}`), message(topic)];
    expect(await t.publish('learner-1', batch, signal())).toMatchObject({ kind: 'fatal', status: 403, stored: 1 });
  });

  it("treats a refused connection as 'retry'", async () => {
    const port = await closedPort();
    const t = await target({ url: `http://127.0.0.1:${port}` }, {});
    const [topic] = topics(1) as [string];
    expect(await t.publish('learner-1', [message(topic)], signal())).toMatchObject({ kind: 'retry', stored: 0, detail: expect.stringMatching(/ECONNREFUSED/) });
    expect(await t.subscribe('proctor-1', [topic]).poll(signal())).toMatchObject({ kind: 'retry', detail: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('recovers after the server restarts: a poll cut off is retried, later messages arrive, what nginx lost does not', async () => {
    const s = await server({ timeoutS: 30 });
    const t = await target(s, undefined, 10);
    const [a, b, c] = topics(3) as [string, string, string];
    const session = t.subscribe('proctor-1', [a, b, c]);
    await session.open(signal());
    const beforeRestart = message(a);
    await t.publish('learner-1', [beforeRestart], signal());
    expect((await session.poll(signal())).kind).toBe('messages');

    // Published, never polled: it lives only in the process restart() kills.
    const lostInRestart = message(b);
    await t.publish('learner-1', [lostInRestart], signal());
    const oldPid = s.pid;
    await s.restart();
    expect(s.pid).not.toBe(oldPid);
    expect(await s.publishedCount()).toBe(0);

    // A poll waiting on the bus when it dies comes back as 'retry' (the runner backs off).
    const inFlight = session.poll(signal());
    await waitFor(async () => (await subscriberCount(s.url)) === 1);
    await s.restart();
    expect(await inFlight).toMatchObject({ kind: 'retry' });

    // Nchan message ids are (second, per-channel counter): a message on `a` published in the same
    // second as `beforeRestart` may carry a counter the session's cursor has already passed, so `a`
    // gets two and only the second is required (docs/targets.md, "## nchan", restarts).
    const after = [message(a), message(a), message(b), message(c)];
    expect(await t.publish('learner-1', after, signal())).toEqual({ kind: 'ok' });
    const required = [after[1]!.id, after[2]!.id, after[3]!.id];
    const { got, outcomes } = await pollFor(session, (g) => required.every((id) => g.some((m) => m.id === id)), { polls: 20, ms: 15_000 });
    expect(outcomes.filter((o) => o.kind !== 'messages')).toEqual([]);
    const ids = got.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(required));
    expect(ids).not.toContain(lostInRestart.id);
    expect(ids).not.toContain(beforeRestart.id);
    expect(new Set(ids).size).toBe(ids.length);
  }, 40_000);

  it('survives 500 sessions whose idle polls the client keeps ending (Nchan 1.3.6 crashed on a tag-0 start cursor here)', async () => {
    const s = await server({ timeoutS: 30 });
    const t = await target(s, undefined, 0.5);
    const stop = new AbortController();
    const got = new Map<number, number>();
    const failures: PollOutcome[] = [];
    const rosters = Array.from({ length: 500 }, () => topics(2));
    const polling = rosters.map(async (roster) => {
      const session = t.subscribe('proctor-1', roster);
      await session.open(stop.signal);
      for (let i = 0; i < 1000 && !stop.signal.aborted; i++) {
        const o = await session.poll(stop.signal);
        if (o.kind === 'messages') for (const m of o.messages) got.set(m.id, (got.get(m.id) ?? 0) + 1);
        else if (o.kind !== 'empty' && o.kind !== 'aborted') {
          failures.push(o);
          break;
        }
      }
    });
    const sent = rosters.flatMap((roster) => roster.map((topic) => message(topic)));
    // Eight publishers, each sending its share as batches of 25.
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w * 25; i < sent.length; i += 8 * 25) {
          const o = await t.publish('learner-1', sent.slice(i, i + 25), signal());
          if (o.kind !== 'ok') return o;
        }
        return { kind: 'ok' };
      }),
    );
    expect(outcomes.filter((o) => o.kind !== 'ok')).toEqual([]);
    for (let i = 0; i < 300 && got.size < sent.length && failures.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    await Promise.all(polling);
    expect(failures.slice(0, 3)).toEqual([]);
    expect(got.size).toBe(sent.length);
    expect([...got.values()].every((n) => n === 1)).toBe(true);
    expect(await s.publishedCount()).toBe(sent.length);
  }, 60_000);

  it('validates its --target-option keys', async () => {
    await expect(target(shared, { pubPath: 'pub' })).rejects.toBeInstanceOf(UsageError);
    await expect(target(shared, { pubPath: '/pub', topicPath: '/x' })).rejects.toThrow(/no option 'topicPath'.*pubPath, subPath/);
    const t = await target(shared, { pubPath: '/pub/', subPath: '/sub' });
    const [topic] = topics(1) as [string];
    expect(await t.publish('learner-1', [message(topic)], signal())).toEqual({ kind: 'ok' });
  });
});

/** Subscribers Nchan holds right now, from nchan_stub_status. */
async function subscriberCount(origin: string): Promise<number> {
  const res = await request(`${origin}/nchan_stub_status`);
  const m = /^subscribers: (\d+)$/m.exec(await res.body.text());
  return m ? Number(m[1]) : -1;
}

/** Polls a condition every 20 ms, at most 250 times (5 s). */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met within 5 s');
}

