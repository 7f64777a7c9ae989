// A real Faye 1.4 Bayeux server for the bayeux target's tests:
//   node faye-server.mjs --port PORT [--timeout SECONDS] [--strict-publish]
// Mounted at /faye on 127.0.0.1; GET /stats answers {"published": n}, the messages Faye's engine
// accepted since this process started. Prints one line, "faye listening on http://...", when ready.
// --strict-publish refuses data messages whose clientId the server does not know, as CometD does
// (Faye itself accepts them), so the publisher's re-handshake can be tested against a real server.

import http from 'node:http';
import { parseArgs } from 'node:util';
import faye from 'faye';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '25' },
    'strict-publish': { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const timeoutS = Number(values.timeout);
if (!Number.isInteger(port) || port < 0 || !(timeoutS > 0)) {
  console.error(`usage: node faye-server.mjs --port PORT [--timeout SECONDS] [--strict-publish] (got port ${values.port}, timeout ${values.timeout})`);
  process.exit(2);
}

const bayeux = new faye.NodeAdapter({ mount: '/faye', timeout: timeoutS });
let published = 0;
// The engine's 'publish' event fires only for messages it accepted (valid channel, data present),
// which is what publishedCount() promises; an incoming extension would also count rejected ones.
bayeux.on('publish', () => {
  published++;
});

if (values['strict-publish']) {
  const clients = new Set();
  bayeux.on('handshake', (clientId) => clients.add(clientId));
  bayeux.on('disconnect', (clientId) => clients.delete(clientId));
  bayeux.addExtension({
    incoming(message, callback) {
      // Faye answers a message that carries `error` with that error and does not publish it.
      if (!message.channel.startsWith('/meta/') && !clients.has(message.clientId)) {
        message.error = `401:${message.clientId ?? ''}:Unknown client`;
      }
      callback(message);
    },
  });
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    const body = JSON.stringify({ published });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`no such path ${req.url}: Faye is mounted at /faye\n`);
});
bayeux.attach(server);

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`faye listening on http://127.0.0.1:${address.port}/faye timeout ${timeoutS}s${values['strict-publish'] ? ' strict-publish' : ''}`);
});

// Exit promptly on SIGTERM, without waiting for held long-polls.
process.on('SIGTERM', () => process.exit(0));
