// Declarative target profiles, the pure half: validation lists every problem with its JSON path,
// and a compiled profile renders exactly the requests it describes.

import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileProfile, ProfileError } from '../../replay/target/profile-compile.js';
import { encodePayload } from '../../replay/target/payload.js';
import type { OutgoingMessage } from '../../replay/target/types.js';

const example = (name: string): unknown => JSON.parse(fs.readFileSync(new URL(`../../examples/profiles/${name}.json`, import.meta.url), 'utf8'));

function problemsOf(profile: unknown): string[] {
  try {
    compileProfile(profile, 'bad.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as ProfileError).code).toBe('REHEARSE_INPUT');
    expect((err as ProfileError).message).toMatch(/^bad\.json: invalid target profile/);
    return (err as ProfileError).problems;
  }
  throw new Error('the profile was accepted');
}

/** A small valid profile to break one piece at a time. */
function base(): Record<string, any> {
  return {
    version: 1,
    maxTopicsPerPoll: 10,
    publish: { method: 'POST', path: '/pub', body: { m: { $each: 'messages', template: '{payloadValue}' } } },
    poll: {
      method: 'GET',
      path: '/sub/{channels}',
      cursor: { scope: 'poll', from: 'header', header: 'x-next' },
      headers: { 'x-from': '{cursor}' },
      messages: { from: 'list', path: 'items', payload: 'data' },
    },
  };
}

const m = (id: number, topic: string): OutgoingMessage => ({ id, topic, sentMs: 1000 + id, from: 'l1' });

describe('profile validation', () => {
  it('accepts the three example profiles', () => {
    for (const name of ['v1', 'nchan', 'in-house']) expect(compileProfile(example(name), `${name}.json`).name).toBe(name);
  });

  it('lists every problem at once, each with its path', () => {
    const p = base();
    p.version = 2;
    p.colour = 'blue';
    p.publish.batch = 'sometimes';
    p.publish.methd = 'POST';
    p.poll.cursor.from = 'bdy';
    p.poll.status = { success: [200, 'ok'], empty: [200] };
    p.poll.messages.from = 'lists';
    const problems = problemsOf(p);
    expect(problems).toEqual(
      expect.arrayContaining([
        'version: 2 is not supported; this rehearse reads profile version 1',
        expect.stringMatching(/^colour: unknown key \(known: version, name, description, maxTopicsPerPoll, channel, publish, poll\)$/),
        'publish.batch: expected "request" or "message" or "topic", got "sometimes"',
        expect.stringMatching(/^publish\.methd: unknown key/),
        'poll.cursor.from: expected "body" or "header", got "bdy"',
        'poll.status.success[1]: expected a status 100-599 or a class like "4xx", got "ok"',
        'poll.status.empty: 200 is also in poll.status.success',
        'poll.messages.from: expected "list" or "body", got "lists"',
      ]),
    );
    expect(problems).toHaveLength(8);
  });

  it('rejects unknown and malformed placeholders, naming the ones known there', () => {
    const p = base();
    p.poll.path = '/sub/{chanels}';
    p.poll.headers['x-who'] = '{actor';
    p.publish.body.m.template = { d: '{payloadValue}', t: '{timeoutS}' };
    p.publish.path = '/pub/{channel}';
    const problems = problemsOf(p);
    expect(problems).toContain('poll.path: unknown placeholder {chanels} (known here: {actor}, {channels}, {cursor}, {timeoutS})');
    expect(problems).toContainEqual(expect.stringMatching(/^poll\.headers\.x-who: "\{" at character 1 of "\{actor" is never closed/));
    expect(problems).toContainEqual(expect.stringMatching(/^publish\.body\.m\.template\.t: unknown placeholder \{timeoutS\}/));
    // With "batch": "request" a request carries several channels: {channel} belongs inside $each.
    expect(problems).toContainEqual(expect.stringMatching(/^publish\.path: unknown placeholder \{channel\} \(known here: \{actor\}, \{count\}\)$/));
    expect(problems).toHaveLength(4);
  });

  it('refuses profiles that would lose identity, topics or cursors', () => {
    const p = base();
    p.publish.body = { m: { $each: 'messages', template: '{id}' } };
    p.poll.path = '/sub';
    p.poll.headers = {};
    const problems = problemsOf(p);
    expect(problems).toContainEqual(expect.stringMatching(/^publish: no template sends \{payload\} or \{payloadValue\}/));
    expect(problems).toContainEqual(expect.stringMatching(/^poll: nothing in the request names the topics/));
    expect(problems).toContainEqual(expect.stringMatching(/^poll\.cursor: \{cursor\} is read from answers but never sent back/));
  });

  it('checks $each, channel naming and missing sections', () => {
    const problems = problemsOf({
      maxTopicsPerPoll: 0,
      channel: { prefix: 'x/', replace: { '.': '_', '-': '//', '/': '|' } },
      publish: { path: '/p', body: { $each: 'topics', template: '{payload}', extra: 1 } },
      poll: { path: '/s/{channels}', body: { t: { $each: 'topics', template: { $each: 'topics', template: '{channel}' } } } },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'maxTopicsPerPoll: expected an integer from 1 to 100000, got 0',
        expect.stringMatching(/^channel\.replace\.\.: "_" can itself appear in a topic/),
        'channel.replace.-: expected one character, got "//"',
        'channel.replace./: only single characters of a rehearse topic (A-Z a-z 0-9 . _ -) can be replaced',
        'publish.body.extra: unknown key in "$each" (known: $each, template, key)',
        'publish.body.$each: expected "messages" here, got "topics"',
        'poll.body.t.template: "$each" cannot be nested in another "$each"',
        'poll.messages: missing: where the messages are in an answer',
      ]),
    );
  });

  it('refuses a GET with a body and a path with a query string', () => {
    const p = base();
    p.poll.body = { a: 1 };
    p.poll.path = '/sub/{channels}?x=1';
    const problems = problemsOf(p);
    expect(problems).toEqual(['poll.path: a path holds no "?" or "#": put parameters in "query"', 'poll.body: a GET request has no body']);
  });
});

describe('profile compile: the exact requests', () => {
  it('v1: one publish per batch and topic -> cursor polls', () => {
    const plan = compileProfile(example('v1'), 'v1.json');
    const batch = [m(1, 'r1.c1.l1.events'), m(2, 'r1.c1.l2.events')];
    const [only, ...rest] = plan.publishRequests('learner-1', batch);
    expect(rest).toEqual([]);
    expect(only!.count).toBe(2);
    expect(only!.request.method).toBe('POST');
    expect(only!.request.path).toBe('/v1/events/publish');
    expect(only!.request.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(only!.request.body!)).toEqual({
      actor: 'learner-1',
      messages: batch.map((x) => ({ topic: x.topic, id: String(x.id), data: JSON.parse(encodePayload(x)) })),
    });

    const topics = ['a.events', 'b.events'];
    let cursors = plan.initialCursors(topics);
    const first = plan.pollRequest('proctor-1', topics, cursors, 25);
    expect(JSON.parse(first.body!)).toEqual({ actor: 'proctor-1', topics: { 'a.events': 0, 'b.events': 0 }, timeout_s: 25 });
    const answer = { status: 200, headers: {}, text: JSON.stringify({ messages: [{ topic: 'a.events', seq: 4, data: { id: 9, topic: 'a.events' } }], cursors: { 'a.events': 4 } }) };
    const read = plan.readPoll(answer, topics, cursors);
    if (!read.ok) throw new Error(read.why);
    expect(read.items).toEqual([{ payload: { id: 9, topic: 'a.events' }, channel: 'a.events' }]);
    cursors = read.cursors;
    // b.events had no cursor in the answer: it keeps its own.
    expect(JSON.parse(plan.pollRequest('proctor-1', topics, cursors, 25).body!).topics).toEqual({ 'a.events': 4, 'b.events': 0 });
  });

  it('nchan: one request per message, multiplexed path, cursor headers kept on an empty answer', () => {
    const plan = compileProfile(example('nchan'), 'nchan.json');
    const pubs = plan.publishRequests('l1', [m(1, 'a.events'), m(2, 'b.events')]);
    expect(pubs.map((p) => [p.request.method, p.request.path, p.request.body, p.count])).toEqual([
      ['POST', '/pub/a.events', encodePayload(m(1, 'a.events')), 1],
      ['POST', '/pub/b.events', encodePayload(m(2, 'b.events')), 1],
    ]);
    expect(plan.publishStatus(201)).toBe('success');
    expect(plan.publishStatus(202)).toBe('success');
    expect(plan.publishStatus(200)).toBe('default');
    const topics = ['a.events', 'b.events'];
    let cursors = plan.initialCursors(topics);
    const first = plan.pollRequest('p1', topics, cursors, 25);
    expect(first).toEqual({ method: 'GET', path: '/sub/a.events,b.events', headers: { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:01 GMT', 'if-none-match': '0' } });
    const read = plan.readPoll({ status: 200, headers: { etag: '0,[1]', 'last-modified': 'Mon, 01 Sep 2026 08:00:00 GMT' }, text: '{"id":3,"topic":"b.events"}' }, topics, cursors);
    if (!read.ok) throw new Error(read.why);
    expect(read.items).toEqual([{ payload: '{"id":3,"topic":"b.events"}' }]);
    cursors = read.cursors;
    expect(plan.pollStatus(408)).toBe('empty');
    expect(plan.pollStatus(304)).toBe('empty');
    cursors = plan.readCursors({ status: 408, headers: { etag: '0,[1]' }, text: '' }, topics, cursors);
    expect(plan.pollRequest('p1', topics, cursors, 25).headers).toEqual({ 'if-modified-since': 'Mon, 01 Sep 2026 08:00:00 GMT', 'if-none-match': '0,[1]' });
  });

  it('in-house: runs of one topic per publish, channel naming, joined query, opaque token', () => {
    const plan = compileProfile(example('in-house'), 'in-house.json');
    expect(plan.channel('r1.c2.l3.events')).toBe('school/r1/c2/l3/events');
    const batch = [m(1, 'a.events'), m(2, 'a.events'), m(3, 'b.events'), m(4, 'a.events')];
    const pubs = plan.publishRequests('l1', batch);
    expect(pubs.map((p) => [p.request.path, p.count])).toEqual([
      ['/events/publish?topics=school%2Fa%2Fevents', 2],
      ['/events/publish?topics=school%2Fb%2Fevents', 1],
      ['/events/publish?topics=school%2Fa%2Fevents', 1],
    ]);
    expect(pubs[0]!.request.headers).toEqual({ 'content-type': 'application/json', 'x-publisher': 'l1' });
    expect(JSON.parse(pubs[0]!.request.body!)).toEqual({ events: [{ key: '1', body: encodePayload(batch[0]!) }, { key: '2', body: encodePayload(batch[1]!) }] });
    expect(plan.publishStatus(409)).toBe('retry');

    const topics = ['a.events', 'b.events'];
    let cursors = plan.initialCursors(topics);
    // No token yet: the parameter is left out.
    expect(plan.pollRequest('p1', topics, cursors, 20).path).toBe('/events/subscribe?topics=school%2Fa%2Fevents%2Cschool%2Fb%2Fevents&wait=20');
    const read = plan.readPoll({ status: 200, headers: {}, text: '{"events":[{"topic":"school/b/events","body":"{}"}],"next":"tok-7"}' }, topics, cursors);
    if (!read.ok) throw new Error(read.why);
    expect(read.items).toEqual([{ payload: '{}', channel: 'school/b/events' }]);
    cursors = read.cursors;
    expect(plan.pollRequest('p1', topics, cursors, 20).path).toMatch(/&token=tok-7$/);
    // 204 is an empty poll and carries no token: the token is kept.
    expect(plan.pollStatus(204)).toBe('empty');
    cursors = plan.readCursors({ status: 204, headers: {}, text: '' }, topics, cursors);
    expect(plan.pollRequest('p1', topics, cursors, 20).path).toMatch(/&token=tok-7$/);
    expect(plan.readPoll({ status: 200, headers: {}, text: '{"next":"x"}' }, topics, cursors)).toEqual({ ok: false, why: 'poll answer has no list at "events"' });
  });

  it('repeated query parameters, a single-topic poll and literal braces', () => {
    const plan = compileProfile(
      {
        maxTopicsPerPoll: 1,
        publish: { batch: 'message', method: 'PUT', path: '/c/{channel}/m/{id}', body: '{{"wrapped": {payload}}}' },
        poll: {
          method: 'GET',
          path: '/c/{channel}',
          query: { t: { $each: 'topics', template: '{channel}' }, after: '{cursor}' },
          cursor: { scope: 'topic', from: 'body', path: 'pos', initial: -1 },
          messages: { from: 'list', path: '', payload: '' },
        },
      },
      'x.json',
    );
    const [pub] = plan.publishRequests('a', [m(5, 'x.y')]);
    expect(pub!.request).toEqual({ method: 'PUT', path: '/c/x.y/m/5', headers: {}, body: `{"wrapped": ${encodePayload(m(5, 'x.y'))}}` });
    const cursors = plan.initialCursors(['x.y']);
    expect(plan.pollRequest('a', ['x.y'], cursors, 5).path).toBe('/c/x.y?t=x.y&after=-1');
  });
});

describe('loadProfile', () => {
  it('names the file when it is missing, not JSON, or invalid', async () => {
    const { loadProfile } = await import('../../replay/target/profile.js');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-profile-'));
    try {
      const notJson = path.join(dir, 'broken.json');
      fs.writeFileSync(notJson, '{"version": 1,');
      const wrong = path.join(dir, 'wrong.json');
      fs.writeFileSync(wrong, '{"version": 1, "maxTopicsPerPoll": 1}');
      await expect(loadProfile(path.join(dir, 'none.json'))).rejects.toMatchObject({ code: 'REHEARSE_INPUT', message: `${path.join(dir, 'none.json')}: no such profile file (--protocol FILE.json)` });
      await expect(loadProfile(notJson)).rejects.toMatchObject({ code: 'REHEARSE_INPUT', message: expect.stringMatching(/broken\.json: the profile is not valid JSON/) });
      await expect(loadProfile(wrong)).rejects.toMatchObject({ problems: ['publish: missing: how to publish', 'poll: missing: how to long-poll'] });
      expect((await loadProfile('examples/profiles/in-house.json')).protocol).toBe('profile:in-house');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
