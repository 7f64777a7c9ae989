import { describe, expect, it } from 'vitest';
import { classifyProbe, type ProbeStep, type ProbeWhere } from '../../replay/probe.js';
import type { TraceStep } from '../../replay/target/types.js';

// The probe's judgement, without a socket: hand-built steps in, verdict and one hint out.

const url = 'http://bus.example:8080';
const topic = 'p1.probe.events';
const where: ProbeWhere = { protocol: 'v1', url, topic };

const answered = (status: number): TraceStep[] => [{ step: 'x', method: 'POST', url: `${url}/x`, status, ms: 1 }];
const refused: TraceStep[] = [{ step: 'x', method: 'POST', url: `${url}/x`, ms: 1, error: 'ECONNREFUSED' }];

function open(attempt = 1): ProbeStep {
  return { phase: 'open', attempt, outcome: 'open', trace: [], result: { kind: 'ok' }, startMs: 0, ms: 0 };
}
function publish(attempt: number, id: number, result: ProbeStep['result'] = { kind: 'ok' }, trace = answered(200), startMs = 10): ProbeStep {
  return { phase: 'publish', attempt, outcome: '', trace, result, messageId: id, startMs, ms: 5 };
}
function poll(attempt: number, result: ProbeStep['result'], trace = answered(200), startMs = 20, ms = 15): ProbeStep {
  return { phase: 'poll', attempt, outcome: '', trace, result, startMs, ms };
}

describe('classifyProbe', () => {
  it('passes when the published message comes back on its topic, with the round trip from publish start to delivery', () => {
    const v = classifyProbe([open(), publish(1, 7), poll(1, { kind: 'messages', messages: [{ id: 7, topic, deliveredOn: topic }], unidentified: 0 })], where);
    expect(v.ok).toBe(true);
    expect(v.failure).toBeUndefined();
    expect(v.hints).toEqual([]);
    expect(v.roundTripMs).toBe(25);
    expect(v.verdict).toContain('message 7 published on p1.probe.events came back');
  });

  it('passes on a later attempt when the first message was lost, and says so', () => {
    const v = classifyProbe(
      [
        open(),
        publish(1, 1),
        poll(1, { kind: 'aborted' }, [{ step: 'poll', method: 'POST', url, ms: 3000, error: 'aborted' }], 20, 3000),
        publish(2, 2, { kind: 'ok' }, answered(200), 3100),
        poll(2, { kind: 'messages', messages: [{ id: 2, topic, deliveredOn: topic }], unidentified: 0 }, answered(200), 3110, 10),
      ],
      where,
    );
    expect(v.ok).toBe(true);
    expect(v.roundTripMs).toBe(20);
    expect(v.verdict).toContain('on attempt 2');
  });

  it('flags a message delivered on another topic than it was published to', () => {
    const v = classifyProbe([open(), publish(1, 7), poll(1, { kind: 'messages', messages: [{ id: 7, topic, deliveredOn: 'other' }], unidentified: 0 })], where);
    expect(v.ok).toBe(false);
    expect(v.failure).toBe('rewritten');
    expect(v.hints).toHaveLength(1);
    expect(v.hints[0]).toContain(`delivered the probe on 'other', not on '${topic}'`);
  });

  it('401/403: the bus wants credentials', () => {
    for (const status of [401, 403]) {
      const v = classifyProbe([open(), publish(1, 7, { kind: 'fatal', status, stored: 0, detail: `publish: HTTP ${status}` }, answered(status))], where);
      expect(v).toMatchObject({ ok: false, failure: 'auth' });
      expect(v.hints).toEqual(["the bus wants credentials: pass them with --header 'Authorization: env:TOKEN'"]);
    }
  });

  it('401 with headers sent: the credentials were refused (names, never values)', () => {
    const v = classifyProbe([open(), publish(1, 7, { kind: 'fatal', status: 401, stored: 0, detail: 'publish: HTTP 401' }, answered(401))], { ...where, headerNames: ['Authorization'] });
    expect(v.failure).toBe('auth');
    expect(v.hints[0]).toContain('refused the credentials sent (headers: Authorization)');
  });

  it("401/403 from a protocol module's requests: check what the module sends", () => {
    const v = classifyProbe([open(), publish(1, 7, { kind: 'fatal', status: 403, stored: 0, detail: 'publish: HTTP 403' }, answered(403))], { ...where, protocol: 'signed-v1', moduleFile: 'my/signed.mjs' });
    expect(v.failure).toBe('auth');
    expect(v.hints).toHaveLength(1);
    expect(v.hints[0]).toContain('check the credentials the module my/signed.mjs sends');
  });

  it('404/405 on publish or poll: wrong protocol, base URL or paths', () => {
    const hint = `the bus does not serve v1's paths at ${url}: wrong --protocol, wrong base URL, or paths that need --target-option`;
    const onPublish = classifyProbe([open(), publish(1, 7, { kind: 'fatal', status: 404, stored: 0, detail: 'publish: HTTP 404' }, answered(404))], where);
    expect(onPublish).toMatchObject({ ok: false, failure: 'not-found', hints: [hint] });
    const onPoll = classifyProbe([open(), publish(1, 7), poll(1, { kind: 'fatal', status: 405, detail: 'subscribe: HTTP 405' }, answered(405))], where);
    expect(onPoll).toMatchObject({ ok: false, failure: 'not-found', hints: [hint] });
    expect(onPoll.verdict).toBe('poll failed: subscribe: HTTP 405');
  });

  it("an answer the protocol cannot read: not the protocol's format", () => {
    const v = classifyProbe([open(), publish(1, 7), poll(1, { kind: 'fatal', status: 200, detail: 'subscribe answer is not JSON: <html>' })], where);
    expect(v).toMatchObject({ ok: false, failure: 'protocol', hints: ["the bus answered but not in v1's format: wrong --protocol?"] });
  });

  it('another 4xx, or a module that threw: fatal, with the status or the module named', () => {
    const bad = classifyProbe([open(), publish(1, 7, { kind: 'fatal', status: 422, stored: 0, detail: 'publish: HTTP 422' }, answered(422))], where);
    expect(bad.failure).toBe('fatal');
    expect(bad.hints[0]).toContain('HTTP 422');
    const threw = classifyProbe([{ ...open(), result: { kind: 'fatal', detail: 'open threw TypeError: x' } }], { ...where, protocol: 'module:mine' });
    expect(threw.failure).toBe('fatal');
    expect(threw.verdict).toBe('open failed: open threw TypeError: x');
    expect(threw.hints[0]).toContain('protocol module');
  });

  it("messages without rehearse's payload and none with it: the bus rewrote the body", () => {
    const v = classifyProbe([open(), publish(1, 7), poll(1, { kind: 'messages', messages: [], unidentified: 1 })], where);
    expect(v).toMatchObject({ ok: false, failure: 'rewritten', hints: ["a message came back but without rehearse's id: does the bus pass the body through unchanged?"] });
  });

  it('no answer on any attempt: unreachable', () => {
    const net = { kind: 'retry' as const, stored: 0, detail: 'ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:1)' };
    const v = classifyProbe([open(), publish(1, 1, net, refused), publish(2, 2, net, refused), publish(3, 3, net, refused)], where);
    expect(v).toMatchObject({ ok: false, failure: 'unreachable', hints: [`nothing answers at ${url}: is the bus running, is the port right?`] });
    expect(v.verdict).toContain('ECONNREFUSED');
  });

  it('published but nothing came back before the deadline: not delivered', () => {
    const timedOut = (a: number): ProbeStep => poll(a, { kind: 'aborted' }, [{ step: 'poll', method: 'POST', url, ms: 3000, error: 'aborted' }]);
    const v = classifyProbe([open(), publish(1, 1), timedOut(1), publish(2, 2), poll(2, { kind: 'empty' }), timedOut(2), publish(3, 3), timedOut(3)], where);
    expect(v).toMatchObject({
      ok: false,
      failure: 'not-delivered',
      hints: ['published, but no message reached the subscriber: wrong channel naming, or a subscriber that only sees messages published after it polls?'],
    });
    expect(v.verdict).toContain('published 3 message(s)');
  });

  it('5xx/429 on every attempt: overloaded, which passes with a warning', () => {
    const busy = (a: number, status: number): ProbeStep => publish(a, a, { kind: 'retry', status, stored: 0, detail: `publish: HTTP ${status}` }, answered(status));
    const v = classifyProbe([open(), busy(1, 503), busy(2, 503), busy(3, 429)], where);
    expect(v.ok).toBe(true);
    expect(v.failure).toBe('overloaded');
    expect(v.hints).toHaveLength(1);
    expect(v.hints[0]).toMatch(/^warning: .*HTTP 503\/429 on every attempt/);
  });
});
