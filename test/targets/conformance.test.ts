import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../db/run-types.js';
import { expectedRequestsWithin } from '../../replay/backoff.js';
import { runReplay, startReplay, type ReplayInput } from '../../replay/runner.js';
import { createTarget } from '../../replay/target/index.js';
import type { OutgoingMessage, PollOutcome, Target, TargetSession } from '../../replay/target/types.js';
import { expectedPairs, syntheticPlan, type SyntheticPlan } from '../replay/synthetic-plan.js';
import { startEmbeddedBus } from '../servers/embedded-bus.js';
import { startFaye } from '../servers/faye.js';
import { nchanAvailable, startNchan } from '../servers/nginx-nchan.js';
import { freePort } from '../servers/process.js';
import type { TargetServer } from '../servers/types.js';

// One conformance suite for every protocol rehearse speaks, each against its real server on
// 127.0.0.1: the built-ins (v1 on the embedded bus, Nchan on nginx, Bayeux on Faye) and the same
// buses described as declarative profiles. Target-level checks first, then whole replays.

const root = fileURLToPath(new URL('../../', import.meta.url));
/** Short server-side poll timeouts, so an empty poll takes seconds, not 25. */
const pollTimeoutS = 2;

interface Subject {
  name: string;
  available: boolean;
  start(): Promise<TargetServer>;
  /** A profile file instead of the server's own protocol (profiles take no --target-option). */
  profile?: string;
  /** A URL on the same server where the protocol's paths do not exist (4xx). */
  wrongUrl(server: TargetServer): string;
}

const subjects: Subject[] = [
  { name: 'v1 on the embedded bus', available: true, start: () => startEmbeddedBus(), wrongUrl: (s) => `${s.url}/nope` },
  // Nchan's own timeout stays above the client's: the session ends idle polls itself, since a 408
  // stalls a multiplexed Nchan 1.3.6 cursor (docs/targets.md, ## nchan).
  { name: 'nchan on nginx', available: nchanAvailable, start: () => startNchan(), wrongUrl: (s) => `${s.url}/nope` },
  { name: 'bayeux on Faye', available: true, start: () => startFaye({ timeoutS: pollTimeoutS }), wrongUrl: (s) => s.url.replace(/\/faye$/, '/nope') },
  { name: 'v1 as a profile', available: true, start: () => startEmbeddedBus(), profile: 'examples/profiles/v1.json', wrongUrl: (s) => `${s.url}/nope` },
  // A profile cannot end a poll client-side, so here Nchan's own 408 ends idle polls.
  { name: 'nchan as a profile', available: nchanAvailable, start: () => startNchan({ timeoutS: pollTimeoutS }), profile: 'examples/profiles/nchan.json', wrongUrl: (s) => `${s.url}/nope` },
];

const runDescription = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'conformance' };
const light: SyntheticPlan = { classes: 3, learnersPerClass: 4, durationMs: 2500, publishEveryMs: 250, controlEveryMs: 250 };

for (const subject of subjects) {
  describe.skipIf(!subject.available)(`conformance: ${subject.name}`, () => {
    let server: TargetServer;
    const targets: Target[] = [];
    let nonce = 0;

    beforeAll(async () => {
      server = await subject.start();
    });
    afterAll(async () => {
      for (const t of targets.splice(0)) await t.close();
      await server?.stop();
    });

    const protocol = (): string => (subject.profile ? path.join(root, subject.profile) : server.protocol);
    const options = (): Record<string, string> => (subject.profile ? {} : server.targetOptions);
    async function target(url = server.url): Promise<Target> {
      const t = await createTarget({ protocol: protocol(), url, headers: {}, pollTimeoutS, requestTimeoutMs: 5000, publishConnections: 8, options: options() });
      targets.push(t);
      return t;
    }
    const topic = (name: string): string => `conf${++nonce}.${name}.events`;
    const message = (id: number, t: string): OutgoingMessage => ({ id, topic: t, sentMs: 0, from: 'conformance' });
    const signal = (): AbortSignal => new AbortController().signal;

    /** Polls until `want` ids arrived or 15 s passed; returns every id seen (with repeats) and the outcomes. */
    async function collect(session: TargetSession, want: number): Promise<{ ids: number[]; outcomes: PollOutcome['kind'][] }> {
      const ids: number[] = [];
      const outcomes: PollOutcome['kind'][] = [];
      const deadline = Date.now() + 15_000;
      for (let i = 0; i < 200 && Date.now() < deadline && new Set(ids).size < want; i++) {
        const r = await session.poll(signal());
        outcomes.push(r.kind);
        if (r.kind === 'messages') for (const m of r.messages) ids.push(m.id);
        if (r.kind === 'fatal') break;
      }
      return { ids, outcomes };
    }

    function replayInput(extra: Partial<ReplayInput>): ReplayInput {
      return {
        target: server.url,
        protocol: protocol(),
        targetOptions: options(),
        events: syntheticPlan(light),
        run: runDescription,
        pollTimeoutS,
        backoff: { baseMs: 100, capMs: 800 },
        generatorLagLimitMs: 2000,
        // The round trip itself is checked above; runs here count exactly what their plan sent.
        preflight: false,
        ...extra,
      };
    }

    it('round trip: a published message comes back with its identity', async () => {
      const t = await target();
      const topicName = topic('solo');
      const session = t.subscribe('conf-subscriber', [topicName]);
      expect((await session.open(signal())).kind).toBe('ok');
      expect(await t.publish('conf-publisher', [message(7, topicName)], signal())).toEqual({ kind: 'ok' });
      const r = await session.poll(signal());
      expect(r.kind).toBe('messages');
      if (r.kind !== 'messages') return;
      expect(r.unidentified).toBe(0);
      expect(r.messages.map((m) => [m.id, m.topic])).toEqual([[7, topicName]]);
      await session.close();
    });

    it('one subscription over several topics gets every topic\'s messages', async () => {
      const t = await target();
      const topics = [topic('a'), topic('b'), topic('c')];
      const session = t.subscribe('conf-multi', topics);
      expect((await session.open(signal())).kind).toBe('ok');
      for (const [i, name] of topics.entries()) expect((await t.publish('conf-publisher', [message(100 + i, name)], signal())).kind).toBe('ok');
      const { ids } = await collect(session, 3);
      expect([...ids].sort()).toEqual([100, 101, 102]);
      await session.close();
    });

    it('resumes from its cursors across many polls: nothing lost, nothing twice', async () => {
      const t = await target();
      const topics = [1, 2, 3, 4, 5].map((i) => topic(`resume${i}`));
      const session = t.subscribe('conf-resume', topics);
      expect((await session.open(signal())).kind).toBe('ok');
      const ids: number[] = [];
      const polling = (async () => {
        const got = await collect(session, 100);
        ids.push(...got.ids);
      })();
      for (let batch = 0; batch < 10; batch++) {
        const messages = Array.from({ length: 10 }, (_, i) => message(1000 + batch * 10 + i, topics[i % topics.length]!));
        expect((await t.publish('conf-publisher', messages, signal())).kind).toBe('ok');
      }
      await polling;
      expect(ids.length).toBe(100);
      expect(new Set(ids).size).toBe(100);
      await session.close();
    });

    it('a poll with nothing to deliver ends empty', async () => {
      const t = await target();
      const session = t.subscribe('conf-empty', [topic('quiet')]);
      expect((await session.open(signal())).kind).toBe('ok');
      const started = Date.now();
      const r = await session.poll(signal());
      expect(r.kind).toBe('empty');
      expect(Date.now() - started).toBeLessThan((pollTimeoutS + 10) * 1000);
      await session.close();
    });

    it('a short replay passes: nothing lost or duplicated, and published equals what the server counted', async () => {
      const before = await server.publishedCount();
      const s = await runReplay(replayInput({ slo: 'p95<=2s, lost>10s, duplicates=0' }));
      const counted = (await server.publishedCount()) - before;
      if ((await target()).deliversFromSubscribe) expect(s.expected).toBe(expectedPairs(light));
      else {
        // Owed only once a subscription is confirmed (Bayeux): what was published while it opened is not expected.
        expect(s.expected).toBeLessThanOrEqual(expectedPairs(light));
        expect(s.expected).toBeGreaterThan(expectedPairs(light) / 2);
      }
      expect({ lost: s.lost, duplicates: s.duplicates, errors: s.requests.errors }).toEqual({ lost: 0, duplicates: 0, errors: 0 });
      expect(s.delivered).toBe(s.expected);
      expect(s.published).toBe(counted);
      expect(s.pass).toBe(true);
    });

    it('4xx is fatal: never retried, counted by status', async () => {
      // A short loss limit: every pair is lost by construction, so the drain need not wait 15 s to say so.
      const s = await runReplay(replayInput({ target: subject.wrongUrl(server), events: syntheticPlan({ ...light, durationMs: 1500 }), slo: 'p95<=1s, lost>1s' }));
      expect(s.requests.retries).toBe(0);
      const kinds = Object.keys(s.requests.errorsByKind ?? {});
      expect(kinds.length).toBeGreaterThan(0);
      for (const k of kinds) expect(k).toMatch(/ HTTP 4\d\d$/);
      expect(s.pass).toBe(false);
    });

    it('connection errors are backed off, not hammered', async () => {
      const closed = `http://127.0.0.1:${await freePort()}${subject.name.startsWith('bayeux') ? '/faye' : ''}`;
      const users = 10;
      const durationMs = 2000;
      const backoff = { baseMs: 100, capMs: 800 };
      const events = Array.from({ length: users }, (_, i) => [
        { kind: 'learnerJoin' as const, atMs: 0, learner: `l${i}`, classId: 'c' },
        { kind: 'learnerLeave' as const, atMs: durationMs, learner: `l${i}` },
      ]).flat();
      const s = await runReplay(replayInput({ target: closed, events, backoff }));
      const kinds = Object.keys(s.requests.errorsByKind ?? {});
      expect(kinds.length).toBeGreaterThan(0);
      for (const k of kinds) expect(k).toMatch(/ network ECONNREFUSED$/);
      expect(s.requests.retries).toBeGreaterThan(0);
      // Each user's attempts follow the backoff (a generous 2x margin for scheduling), never a tight loop.
      expect(s.requests.errors).toBeLessThanOrEqual(2 * users * expectedRequestsWithin(backoff, durationMs));
    });

    it('the server restarted mid-run: the run recovers with backoff; what the server lost is lost, never delivered', async () => {
      const plan: SyntheticPlan = { ...light, durationMs: 6000 };
      const run = startReplay(replayInput({ events: syntheticPlan(plan), slo: 'p95<=2s, lost>5s, duplicates=0' }));
      const deliveriesBySecond: number[] = [];
      let restarted: Promise<void> | undefined;
      run.on('tick', (t) => {
        deliveriesBySecond[t.second] = t.deliveries;
        if (t.second === 2) restarted = server.restart();
      });
      const s: RunSummary = await run.finished;
      await restarted;
      expect(restarted).toBeDefined();
      expect(s.requests.errors).toBeGreaterThan(0);
      expect(s.requests.retries).toBeGreaterThan(0);
      expect(s.duplicates).toBe(0);
      expect(s.delivered + s.lost).toBe(s.expected);
      expect(s.delivered).toBeLessThanOrEqual(s.published);
      // A restart that renumbers topics is the protocol working, not a violation.
      // Load may make most requests fail while the server is down; a lie never passes as a restart.
      expect(s.verdict.reasons.join('\n')).not.toMatch(/broke the protocol|not published to|without rehearse's id/);
      // Delivery resumed on the new server.
      expect(deliveriesBySecond.slice(4).some((n) => n > 0)).toBe(true);
    });
  });
}
