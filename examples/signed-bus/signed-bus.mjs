// A protocol module for rehearse (docs/targets.md, "A protocol module"): protocol v1
// (docs/protocol.md) on a bus that also wants every request signed:
//
//   X-Key-Id: <key id>
//   X-Signature: hex(hmac-sha256(secret, METHOD + PATH + BODY))
//
// PATH is the request target as sent (base path included, query string included), BODY the exact
// bytes sent ('' for none). Use it with
//   rehearse probe|replay --protocol examples/signed-bus/signed-bus.mjs --target-option secret-env=NAME
// It imports nothing from rehearse: the HTTP layer (ctx.http) and the payload and status helpers
// (ctx.helpers) come with the context, so this file works from any folder.

import { createHmac } from 'node:crypto';

const defaultSecretEnv = 'SIGNED_BUS_SECRET';
const defaultKeyId = 'rehearse';
/** The embedded bus refuses larger subscribes; rehearse splits a bigger roster over several polls. */
const maxTopicsPerPoll = 1000;
const json = { 'content-type': 'application/json' };

export default {
  protocol: 'signed-v1',
  // rehearse refuses --target-option keys not listed here, so a typo fails before a run starts.
  options: {
    'secret-env': `environment variable holding the HMAC secret (default ${defaultSecretEnv}); the secret itself never goes on the command line`,
    'key-id': `sent as X-Key-Id, so the bus knows which secret to check with (default ${defaultKeyId})`,
  },
  create(ctx) {
    const secretEnv = ctx.options['secret-env'] ?? defaultSecretEnv;
    const secret = process.env[secretEnv];
    // A thrown error stops the run before it starts (exit 2), with this message.
    if (!secret) throw new Error(`environment variable ${secretEnv} is not set: export the bus's signing secret there (or name another variable with --target-option secret-env=NAME)`);
    return new SignedTarget(ctx, new Signer(ctx.http.basePath, secret, ctx.options['key-id'] ?? defaultKeyId));
  },
};

/** Adds the two headers to a request; the signature covers exactly what goes on the wire. */
class Signer {
  constructor(basePath, secret, keyId) {
    this.basePath = basePath;
    this.secret = secret;
    this.keyId = keyId;
  }

  sign(request) {
    const signature = createHmac('sha256', this.secret)
      .update(request.method + this.basePath + request.path + (request.body ?? ''))
      .digest('hex');
    return { ...request, headers: { ...request.headers, 'x-key-id': this.keyId, 'x-signature': signature } };
  }
}

class SignedTarget {
  protocol = 'signed-v1';
  maxTopicsPerPoll = maxTopicsPerPoll;

  constructor(ctx, signer) {
    this.ctx = ctx;
    this.signer = signer;
  }

  /** v1 topics are free-form strings: rehearse's topic names are used as they are. */
  channel(topic) {
    return topic;
  }

  async publish(actor, messages, signal) {
    const { http, helpers } = this.ctx;
    const body = JSON.stringify({ actor, messages: messages.map((m) => ({ topic: m.topic, id: String(m.id), data: helpers.payloadValue(m) })) });
    const a = await http.request(this.signer.sign({ step: 'publish', method: 'POST', path: '/v1/events/publish', body, headers: json, signal }));
    // A Failure (network trouble, abort) is already an outcome; the batch is one request, so nothing was stored.
    if (a.kind !== 'answer') return { ...a, stored: 0 };
    // 401/403 (a wrong secret) are fatal through the shared policy: retrying cannot fix a signature.
    if (a.status !== 200) return { ...helpers.statusFailure(a, 'publish'), stored: 0 };
    if (a.trace) a.trace.extracted = `accepted ${messages.length} message(s)`;
    return { kind: 'ok' };
  }

  subscribe(actor, topics) {
    return new SignedSession(this.ctx, this.signer, actor, topics);
  }

  async close() {
    await this.ctx.http.close();
  }
}

class SignedSession {
  constructor(ctx, signer, actor, topics) {
    this.ctx = ctx;
    this.signer = signer;
    this.actor = actor;
    // Cursor 0 = "from the start": rehearse's topics are fresh per run, so nothing published after open() is missed.
    this.cursors = Object.fromEntries(topics.map((t) => [t, 0]));
    // Long-polls go through a pool whose timeouts sit above the poll timeout.
    this.dispatcher = ctx.http.pollDispatcher();
  }

  /** v1 needs no handshake: the first poll is the subscription. */
  async open() {
    return { kind: 'ok' };
  }

  async poll(signal) {
    const { http, helpers, pollTimeoutS } = this.ctx;
    const body = JSON.stringify({ actor: this.actor, topics: this.cursors, timeout_s: pollTimeoutS });
    const a = await http.request(this.signer.sign({ step: 'poll', method: 'POST', path: '/v1/events/subscribe', body, headers: json, signal, dispatcher: this.dispatcher }));
    if (a.kind !== 'answer') return a;
    if (a.status !== 200) return helpers.statusFailure(a, 'subscribe');
    let answer;
    try {
      answer = JSON.parse(a.text);
    } catch {
      return helpers.unreadable(a, 'subscribe answer is not JSON');
    }
    if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.messages) || typeof answer.cursors !== 'object' || answer.cursors === null) {
      return helpers.unreadable(a, 'subscribe answer lacks "messages" or "cursors"');
    }
    for (const topic of Object.keys(this.cursors)) {
      const c = answer.cursors[topic];
      if (Number.isSafeInteger(c) && c >= 0) this.cursors[topic] = c;
    }
    const messages = [];
    let unidentified = 0;
    for (const m of answer.messages) {
      // Identity comes from rehearse's payload, never from the bus's id; `topic` says where the bus delivered it.
      const got = m && typeof m === 'object' ? helpers.decodePayload(m.data, typeof m.topic === 'string' ? m.topic : '') : undefined;
      if (got) messages.push(got);
      else unidentified++;
    }
    if (a.trace) a.trace.extracted = `${messages.length} message(s)${messages.length ? `: ids ${messages.map((m) => m.id).join(', ')}` : ''}${unidentified ? `, ${unidentified} without rehearse's payload` : ''}`;
    if (messages.length === 0 && unidentified === 0) return { kind: 'empty' };
    return { kind: 'messages', messages, unidentified };
  }

  /** v1 has no unsubscribe: a subscriber just stops polling. */
  async close() {}
}
