import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { countKernels } from './jupyter.js';
import { loopbackServerUrl } from './kernels.js';

describe('the server URL the agent may send the server token to', () => {
  test('loopback only; 0.0.0.0 is reached as 127.0.0.1', () => {
    assert.equal(
      loopbackServerUrl('http://127.0.0.1:8888/user/a/'),
      'http://127.0.0.1:8888/user/a/',
    );
    assert.equal(loopbackServerUrl('http://0.0.0.0:8888/user/a'), 'http://127.0.0.1:8888/user/a/');
    assert.equal(loopbackServerUrl('http://localhost:1/'), 'http://localhost:1/');
    assert.equal(loopbackServerUrl('http://10.0.0.5:8888/user/a/'), null);
    assert.equal(loopbackServerUrl('http://hub.example.org/user/a/'), null);
    assert.equal(loopbackServerUrl('file:///etc/passwd'), null);
    assert.equal(loopbackServerUrl('not a url'), null);
    assert.equal(loopbackServerUrl(undefined), null);
  });
});

describe('reading kernel states', () => {
  let server: Server;
  let base = '';
  let answer: unknown = [];
  const auth: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      auth.push(String(req.headers.authorization));
      if (req.url !== '/user/a/api/kernels') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/user/a/`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('counts busy kernels, with the server token', async () => {
    answer = [
      { id: '1', execution_state: 'busy' },
      { id: '2', execution_state: 'idle' },
      { id: '3', execution_state: 'starting' },
    ];
    assert.deepEqual(await countKernels({ url: base, token: 'server-tok' }, 5000, fetch), {
      total: 3,
      busy: 1,
    });
    assert.equal(auth.at(-1), 'token server-tok');
  });

  test('a server that answers nonsense or an error gives no report', async () => {
    answer = { message: 'nope' };
    assert.equal(await countKernels({ url: base, token: 't' }, 5000, fetch), null);
    assert.equal(
      await countKernels({ url: base.replace('/a/', '/b/'), token: 't' }, 5000, fetch),
      null,
    );
  });
});
