import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi, NgsciApiError } from './api';
import { fakeFetch, json } from './testing';

const base = '/services/ngsci/api/v1';

test("every call carries the page's token, and the service's error code arrives on one error type", async () => {
  let auth = '';
  const { fetch } = fakeFetch({
    'GET /me': ({ headers }) => {
      auth = headers.get('authorization') ?? '';
      return json(403, {
        code: 'forbidden',
        message: 'the token lacks access:services!service=ngsci',
        requestId: 'r1',
      });
    },
  });
  const api = new NgsciApi({ baseUrl: base, token: 'tok123', fetch });
  const err = await api.me().then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof NgsciApiError);
  assert.equal(err.code, 'forbidden');
  assert.equal(err.status, 403);
  assert.equal(err.requestId, 'r1');
  assert.match(err.userMessage, /access:services!service=ngsci/);
  assert.equal(auth, 'token tok123');
});

test('an endpoint the service lacks, an unreachable service and a garbled answer each get their own code', async () => {
  const { fetch } = fakeFetch({
    'GET /catalog': () => new Response('<html>', { status: 200 }),
    'GET /me': () => json(200, { nope: 1 }),
  });
  const api = new NgsciApi({ baseUrl: base, token: 't', fetch });
  await assert.rejects(api.budget(), (e: NgsciApiError) => e.code === 'endpoint_missing');
  await assert.rejects(api.catalog(), (e: NgsciApiError) => e.code === 'bad_response');
  await assert.rejects(
    api.me(),
    (e: NgsciApiError) => e.code === 'bad_response' && /unexpected shape/.test(e.message),
  );
  const down = new NgsciApi({
    baseUrl: base,
    token: 'secret-token',
    fetch: (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch,
  });
  const err = (await down.me().catch((e: unknown) => e)) as NgsciApiError;
  assert.equal(err.code, 'unreachable');
  assert.doesNotMatch(
    err.message + err.userMessage,
    /secret-token/,
    'the token never appears in an error',
  );
  const proxy = new NgsciApi({
    baseUrl: base,
    token: 't',
    fetch: (async () => new Response('Service Unavailable', { status: 503 })) as typeof fetch,
  });
  await assert.rejects(proxy.me(), (e: NgsciApiError) => e.code === 'unreachable');
});

test('resize posts the size to the server it names; the event stream is read over fetch', async () => {
  let sent: unknown;
  const events = [
    {
      id: 1,
      instanceId: 'a',
      at: '2026-11-23T10:00:00.000Z',
      state: 'stopping',
      progress: 0,
      message: 'stopping',
    },
    {
      id: 2,
      instanceId: 'b',
      at: '2026-11-23T10:00:05.000Z',
      state: 'running',
      progress: 100,
      message: 'ready',
    },
  ];
  const { fetch } = fakeFetch({
    'POST /instances/default/resize': ({ body }) => {
      sent = body;
      return json(202, {
        id: 'a',
        server: 'default',
        size: 'cpu-small',
        state: 'stopping',
        ratePerHourMicros: 96_000,
      });
    },
    'GET /instances/default/events': () =>
      new Response(
        events.map((e) => `id: ${e.id}\nevent: instance\ndata: ${JSON.stringify(e)}\n\n`).join('') +
          'event: ping\ndata: {}\n\n',
        {
          headers: { 'content-type': 'text/event-stream' },
        },
      ),
  });
  const api = new NgsciApi({ baseUrl: base, token: 't', fetch });
  await api.resize('default', { size: 'cpu-large' });
  assert.deepEqual(sent, { size: 'cpu-large' });
  const got: string[] = [];
  const last = await api.followEvents(
    'default',
    (e) => got.push(`${e.instanceId}:${e.state}`),
    new AbortController().signal,
  );
  assert.deepEqual(got, ['a:stopping', 'b:running']);
  assert.equal(last, 2);
});
