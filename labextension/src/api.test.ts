import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminAccess, NgsciApi, NgsciApiError } from './api';
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

test('admin calls go with the sign-in cookie and never the page token; changes carry the CSRF value', async () => {
  const seen: { key: string; auth: string | null; csrf: string | null; credentials?: string }[] =
    [];
  let csrf = 'csrf-1';
  const { fetch: routes } = fakeFetch({
    'GET /session': () => json(200, { user: 'root', admin: true, csrf, expiresAt: 'soon' }),
    'GET /admin/quotas': () => json(200, { quotas: [] }),
    'POST /admin/plans': ({ headers }) =>
      headers.get('x-ngsci-csrf') === csrf
        ? json(201, { id: 'academic', multiplierPpm: 1 })
        : json(403, { code: 'csrf_failed', message: 'needs X-Ngsci-Csrf', requestId: 'r' }),
    'GET /me': () => json(200, { name: 'root', admin: true, plan: {} }),
  });
  const fetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    seen.push({
      key: `${init.method} ${new URL(String(input), 'http://hub.test').pathname.replace(base, '')}`,
      auth: headers.get('authorization'),
      csrf: headers.get('x-ngsci-csrf'),
      credentials: init.credentials,
    });
    return routes(input, init);
  }) as typeof globalThis.fetch;
  const api = new NgsciApi({ baseUrl: base, token: 'page-token', fetch });

  assert.deepEqual(await api.admin.quotas(), []);
  await api.admin.createPlan({ id: 'academic', label: 'Academic', multiplierPpm: 1 });
  // the sign-in changed (signed in again in another tab): one fresh GET /session, then it works
  csrf = 'csrf-2';
  await api.admin.createPlan({ id: 'academic', label: 'Academic', multiplierPpm: 1 });
  await api.me();

  const admin = seen.filter((s) => s.key !== 'GET /me');
  assert.ok(admin.every((s) => s.auth === null && s.credentials === 'same-origin'));
  assert.deepEqual(
    admin.map((s) => `${s.key} ${s.csrf ?? '-'}`),
    [
      'GET /admin/quotas -',
      'GET /session -',
      'POST /admin/plans csrf-1',
      'POST /admin/plans csrf-1',
      'GET /session -',
      'POST /admin/plans csrf-2',
    ],
  );
  const me = seen.find((s) => s.key === 'GET /me')!;
  assert.equal(me.auth, 'token page-token');
  assert.equal(me.credentials, 'omit', 'the sign-in cookie stays out of token calls');
});

test('without a sign-in the panel is offered one; a non-admin sign-in is refused', async () => {
  let session: Response | null = null;
  const { fetch } = fakeFetch({
    'GET /session': () =>
      session ?? json(401, { code: 'login_required', message: 'not signed in', requestId: 'r' }),
    'GET /admin/users': () =>
      json(401, { code: 'unauthenticated', message: 'send a token', requestId: 'r' }),
  });
  const api = new NgsciApi({ baseUrl: base, token: 't', fetch });
  assert.deepEqual(await adminAccess(api), { kind: 'sign-in' });
  const err = (await api.admin.users().catch((e: unknown) => e)) as NgsciApiError;
  assert.equal(err.code, 'login_required', 'no cookie at all also reads as "sign in"');
  assert.match(err.userMessage, /Sign in as admin/);
  // the sign-in ends on the service's page that closes the popup, under any hub base URL
  const based = new NgsciApi({ baseUrl: '/jupyter/services/ngsci/api/v1', token: 't', fetch });
  assert.equal(
    based.signInUrl(),
    '/jupyter/services/ngsci/oauth_login?next=%2Fjupyter%2Fservices%2Fngsci%2Fsigned_in',
  );

  session = json(200, { user: 'rita', admin: false, csrf: 'c', expiresAt: 'soon' });
  assert.deepEqual(await adminAccess(api, true), { kind: 'refused', user: 'rita' });
});

test("once the page's token is refused (its server stopped), reads go with this browser's sign-in, only if it is the page's user", async () => {
  const seen: { key: string; auth: string | null; credentials?: string }[] = [];
  let sessionUser = 'rita';
  const { fetch: routes } = fakeFetch({
    'GET /session': () =>
      json(200, { user: sessionUser, admin: false, csrf: 'c', expiresAt: 'soon' }),
    'GET /budget': ({ headers }) =>
      headers.get('authorization')
        ? json(401, { code: 'unauthenticated', message: 'not valid', requestId: 'r' })
        : json(200, { spentMicros: 170_000, budgets: [] }),
    'POST /instances/default/stop': () =>
      json(401, { code: 'unauthenticated', message: 'not valid', requestId: 'r' }),
  });
  const fetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    seen.push({
      key: `${init.method} ${new URL(String(input), 'http://hub.test').pathname.replace(base, '')}`,
      auth: headers.get('authorization'),
      credentials: init.credentials,
    });
    return routes(input, init);
  }) as typeof globalThis.fetch;

  // another user's sign-in in this browser (an admin looking at rita's page): never used
  sessionUser = 'root';
  const other = new NgsciApi({ baseUrl: base, token: 'page-token', fetch, user: 'rita' });
  const err = (await other.budget().catch((e: unknown) => e)) as NgsciApiError;
  assert.equal(err.code, 'unauthenticated', "not another user's figures");
  // no page user given: no fallback at all
  const plain = new NgsciApi({ baseUrl: base, token: 'page-token', fetch });
  await assert.rejects(plain.budget(), (e: NgsciApiError) => e.code === 'unauthenticated');

  sessionUser = 'rita';
  seen.length = 0;
  const api = new NgsciApi({ baseUrl: base, token: 'page-token', fetch, user: 'rita' });
  assert.equal((await api.budget()).spentMicros, 170_000);
  // from then on reads go with the sign-in at once (the token does not come back)
  assert.equal((await api.budget()).spentMicros, 170_000);
  assert.deepEqual(
    seen.map((s) => `${s.key} ${s.auth ? 'token' : s.credentials}`),
    [
      'GET /budget token',
      'GET /session same-origin',
      'GET /budget same-origin',
      'GET /budget same-origin',
    ],
  );
  // a change is not retried with the cookie: it stays refused
  await assert.rejects(api.stop('default'), (e: NgsciApiError) => e.code === 'unauthenticated');
});
