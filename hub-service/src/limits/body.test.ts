/**
 * Body limits, on the real app behind a real HTTP server: an anonymous client announcing or
 * streaming 20 MB is answered 413 before the service reads the body, and a route that needs
 * larger bodies (an agent's audit batch) gets them while the others do not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { harness, type Harness } from '../testing/harness.js';
import { defaultLimits } from './settings.js';

const MB = 1024 * 1024;
let h: Harness;
let server: ServerType;
let port: number;

before(async () => {
  h = await harness();
  await new Promise<void>((ready) => {
    server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready());
  });
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  await new Promise((done) => server.close(done));
  await h.close();
});

interface RawAnswer {
  status: number;
  body: Record<string, unknown>;
  /** body bytes the client had handed to the socket when the answer came */
  sent: number;
}

/**
 * Sends a POST of `total` bytes over a plain socket, as a client that keeps sending until it
 * sees an answer would: with a Content-Length (it first waits a moment for an early answer) or
 * chunked. Resolves with the status, the JSON body and how much of the body went out before.
 */
function rawPost(path: string, total: number, framing: 'length' | 'chunked'): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let answered = false;
    let sent = 0;
    socket.on('error', (err) => (answered ? undefined : reject(err)));
    socket.on('data', (d) => {
      received = Buffer.concat([received, d]);
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0 || answered) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1] ?? NaN);
      if (received.length < end + 4 + length) return;
      answered = true;
      resolve({
        status: Number(text.slice(9, 12)),
        body: JSON.parse(text.slice(end + 4, end + 4 + length)) as Record<string, unknown>,
        sent,
      });
      socket.destroy();
    });
    const head =
      `POST ${h.config.JUPYTERHUB_SERVICE_PREFIX}${path} HTTP/1.1\r\nhost: localhost\r\n` +
      'content-type: application/json\r\n' +
      (framing === 'length' ? `content-length: ${total}\r\n` : 'transfer-encoding: chunked\r\n') +
      '\r\n';
    socket.write(head);
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const pump = async () => {
      // a client with a Content-Length may get its answer before it sends anything
      if (framing === 'length') await new Promise((r) => setTimeout(r, 500));
      while (!answered && sent < total) {
        const n = Math.min(chunk.length, total - sent);
        // the body is `{}` and spaces: valid JSON, so a route that gets it can answer on its merits
        const piece =
          sent === 0
            ? Buffer.concat([Buffer.from('{}'), chunk.subarray(2, n)])
            : chunk.subarray(0, n);
        const frame =
          framing === 'chunked'
            ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
            : piece;
        await new Promise<void>((done) => socket.write(frame, () => done()));
        sent += n;
      }
      if (!answered && framing === 'chunked') socket.write('0\r\n\r\n');
    };
    pump().catch((err) => (answered ? undefined : reject(err)));
  });
}

describe('body limits, before the body is read', () => {
  test('an anonymous 20 MB bootstrap with a Content-Length: 413 before a byte of it is sent', async () => {
    const res = await rawPost('api/v1/bootstrap', 20 * MB, 'length');
    assert.equal(res.status, 413);
    assert.equal(res.body.code, 'payload_too_large');
    assert.equal(typeof res.body.requestId, 'string');
    assert.match(String(res.body.message), /65536 bytes/);
    assert.equal(res.sent, 0, 'answered on the headers alone');
  });

  test('an anonymous 20 MB bootstrap, chunked: 413 after the first part, the rest never read', async () => {
    const res = await rawPost('api/v1/bootstrap', 20 * MB, 'chunked');
    assert.equal(res.status, 413);
    assert.equal(res.body.code, 'payload_too_large');
    // the service stops at 64 KiB; what the client got out before the answer sits in socket buffers
    assert.ok(res.sent < 4 * MB, `the answer came after ${res.sent} of 20 MB bytes`);
  });

  test('a signed-in user is held to the limit too, before the hub is asked who they are', async () => {
    const token = h.token({ name: 'body-alice' });
    const calls = h.hubCalls.length;
    const res = await h.request('/api/v1/notifications/preferences', {
      method: 'PUT',
      token,
      body: JSON.stringify({
        email: 'a@example.org',
        pad: 'x'.repeat(defaultLimits.NGSCI_BODY_LIMIT),
      }),
    });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { code: string }).code, 'payload_too_large');
    assert.equal(h.hubCalls.length, calls, 'no token lookup for a body that is refused anyway');
  });

  test('a body under the limit goes on to the route', async () => {
    const res = await rawPost('api/v1/bootstrap', 60 * 1024, 'length');
    assert.equal(res.status, 401, 'the bootstrap token is checked as before');
  });
});

describe('larger bodies where a route needs them', () => {
  const agentToken = async (user: string) => (await h.runningAgent(user)).token;

  /** A full audit batch: 1000 events on paths of realistic length (about 200 KB of JSON). */
  const fullBatch = (pathLength: number) => ({
    events: Array.from({ length: 1000 }, (_, i) => ({
      path: `/data/${String(i).padStart(4, '0')}/${'p'.repeat(pathLength)}`,
      op: 'open',
      at: '2026-11-20T10:00:00Z',
    })),
  });

  test('an agent posts a full audit batch larger than the default limit', async () => {
    const token = await agentToken('body-carol');
    const body = JSON.stringify(fullBatch(120));
    assert.ok(body.length > 2 * defaultLimits.NGSCI_BODY_LIMIT);
    const res = await h.request('/api/v1/agent/audit', { method: 'POST', token, body });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: 1000 });
  });

  test('the audit batch has its own limit (NGSCI_AUDIT_BODY_LIMIT), and other routes keep 64 KiB', async () => {
    const token = await agentToken('body-dave');
    const huge = JSON.stringify(fullBatch(4000)) + ' '.repeat(defaultLimits.NGSCI_AUDIT_BODY_LIMIT);
    const res = await h.request('/api/v1/agent/audit', { method: 'POST', token, body: huge });
    assert.equal(res.status, 413);
    const kernels = await h.request('/api/v1/agent/kernels', {
      method: 'POST',
      token,
      body: JSON.stringify({ total: 1, busy: 0 }) + ' '.repeat(defaultLimits.NGSCI_BODY_LIMIT),
    });
    assert.equal(kernels.status, 413, 'the larger limit is the audit route’s alone');
  });
});
