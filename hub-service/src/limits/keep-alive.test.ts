/**
 * A request refused before its body is read (no credential, wrong credential) must leave its
 * keep-alive connection usable: the hub's proxy sends the next request on it, maybe another
 * user's, and got a 503 "socket hang up" when the service closed it (found by API fuzzing).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { harness, type Harness } from '../testing/harness.js';
import { DRAIN_MAX_BYTES } from './body.js';

let h: Harness;
let server: ServerType;
let port: number;
let agent: http.Agent;

before(async () => {
  h = await harness();
  await new Promise<void>((ready) => {
    server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready());
  });
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  agent?.destroy();
  await new Promise((done) => server.close(done));
  await h.close();
});

interface Answer {
  status: number;
  reused: boolean;
  connection: string | undefined;
}

function send(method: string, path: string, body?: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: `${h.config.JUPYTERHUB_SERVICE_PREFIX}${path}`,
        agent,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `token ${token}` } : {}),
          ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            reused: req.reusedSocket,
            connection: res.headers.connection,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** a valid-looking audit batch of about 600 KB: under the route's limit, over a socket buffer */
const bigBatch = JSON.stringify({
  events: Array.from({ length: 5000 }, (_, i) => ({
    path: `/data/${'x'.repeat(100)}${i}`,
    op: 'open',
    at: new Date(0).toISOString(),
  })),
});

describe('keep-alive connections survive an early refusal', () => {
  test('an agent route refuses a large batch without a credential; the next request on the connection is answered', async () => {
    // one socket, kept alive, as configurable-http-proxy keeps its sockets to the service
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const refused = await send('POST', 'api/v1/agent/audit', bigBatch);
    assert.equal(refused.status, 401);
    const next = await send('GET', 'health');
    assert.equal(next.status, 200);
    assert.ok(next.reused, 'the second request went over the same connection');
  });

  test("a user's token on an agent route (403 before the body is read); the connection goes on", async () => {
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const token = h.token({ name: 'alice' });
    const refused = await send('POST', 'api/v1/agent/audit', bigBatch, token);
    assert.equal(refused.status, 403);
    const next = await send('GET', 'api/v1/me', undefined, token);
    assert.equal(next.status, 200);
    assert.ok(next.reused);
  });

  test('a body a little over the limit is read, dropped and refused; the connection goes on', async () => {
    // refused unread, the proxy still writing it when the connection closed answered 503
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const refused = await send('POST', 'api/v1/notify', 'x'.repeat(600 * 1024));
    assert.equal(refused.status, 413);
    assert.notEqual(refused.connection, 'close');
    const next = await send('GET', 'health');
    assert.equal(next.status, 200);
    assert.ok(next.reused, 'the same connection');
  });

  test('a body far over the limit is refused with Connection: close, so nobody reuses the connection', async () => {
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // declares more than is ever read; sends a first part and waits for the answer
    const refused = await new Promise<Answer>((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: `${h.config.JUPYTERHUB_SERVICE_PREFIX}api/v1/notify`,
          agent,
          headers: { 'content-type': 'application/json', 'content-length': DRAIN_MAX_BYTES + 1 },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode!, reused: false, connection: res.headers.connection });
        },
      );
      req.on('error', () => {}); // the rest of the body cannot be written once it is refused
      req.write('x'.repeat(64 * 1024));
    });
    assert.equal(refused.status, 413);
    assert.equal(refused.connection, 'close');
    const next = await send('GET', 'health');
    assert.equal(next.status, 200);
    assert.equal(next.reused, false, 'a new connection');
  });
});
