// A signature-checking proxy in front of a protocol v1 bus (e.g. `rehearse bus`), to try
// signed-bus.mjs against: every request must carry X-Key-Id and
// X-Signature = hex(hmac-sha256(secret, METHOD + PATH + BODY)); it answers 401 without them, 403
// for a wrong signature, and forwards the rest unchanged.
//
//   SIGNED_BUS_SECRET=... node examples/signed-bus/server.mjs --upstream http://127.0.0.1:8080 --port 8081
//
// Also a module: startSignedProxy() is what the tests start.

import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * Starts the proxy. `keys` maps key id -> secret. Resolves to { url, close() } once listening.
 */
export async function startSignedProxy({ upstream, keys, host = '127.0.0.1', port = 0 }) {
  const base = upstream.replace(/\/+$/, '');
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const refused = check(req, body, keys);
      if (refused) {
        res.writeHead(refused.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: refused.error }));
        return;
      }
      // A subscriber that gives up on its long-poll should not leave the upstream poll hanging.
      const upstreamCall = new AbortController();
      res.on('close', () => upstreamCall.abort());
      forward(base, req, body, upstreamCall.signal).then(
        (a) => res.writeHead(a.status, { 'content-type': a.contentType }).end(a.body),
        (err) => {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `upstream ${base}: ${err.cause?.code ?? err.message}` }));
        },
      );
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Why a request is refused, or undefined when its signature is right. */
function check(req, body, keys) {
  const keyId = req.headers['x-key-id'];
  const signature = req.headers['x-signature'];
  if (typeof keyId !== 'string' || typeof signature !== 'string') return { status: 401, error: 'X-Key-Id and X-Signature are required' };
  const secret = keys[keyId];
  if (secret === undefined) return { status: 403, error: `unknown key id '${keyId}'` };
  const expected = createHmac('sha256', secret).update(`${req.method}${req.url}`).update(body).digest();
  const given = Buffer.from(signature, 'hex');
  // Constant-time comparison: a signature check must not leak how many leading bytes matched.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { status: 403, error: 'bad signature' };
  return undefined;
}

/** The request as it came, minus the signature headers (fetch is undici, Node's own HTTP client). */
async function forward(base, req, body, signal) {
  const r = await fetch(base + req.url, {
    method: req.method,
    headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
    ...(body.length > 0 ? { body } : {}),
    signal,
  });
  return { status: r.status, contentType: r.headers.get('content-type') ?? 'application/json', body: Buffer.from(await r.arrayBuffer()) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string', default: 'http://127.0.0.1:8080' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8081' },
      'key-id': { type: 'string', default: 'rehearse' },
      'secret-env': { type: 'string', default: 'SIGNED_BUS_SECRET' },
    },
    strict: true,
  });
  const secret = process.env[values['secret-env']];
  if (!secret) {
    process.stderr.write(`server.mjs: set the signing secret in the environment variable ${values['secret-env']}\n`);
    process.exit(2);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`server.mjs: --port must be 0-65535, got '${values.port}'\n`);
    process.exit(2);
  }
  const proxy = await startSignedProxy({ upstream: values.upstream, keys: { [values['key-id']]: secret }, host: values.host, port });
  process.stdout.write(`signed bus listening on ${proxy.url} (key id '${values['key-id']}', forwarding to ${values.upstream}); stop with Ctrl-C\n`);
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
