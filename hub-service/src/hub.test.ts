/**
 * HubClient's listing of users against a hub that paginates as JupyterHub 6 does
 * (jupyterhub/apihandlers/base.py): `offset`/`limit`, at most 200 a page whatever is asked,
 * `{items, _pagination: {offset, limit, total, next}}` only for a client that sends
 * `Accept: application/jupyterhub-pagination+json`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { HubClient } from './hub.js';

const MAX = 200;
let users: string[] = [];
let requests: string[] = [];
/** called after each page is answered: lets a test change the hub while it is read */
let afterPage: () => void = () => {};
let server: Server;
let url = '';

before(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://hub');
    requests.push(u.search);
    const paginated = (req.headers.accept ?? '').includes('application/jupyterhub-pagination+json');
    const offset = Number(u.searchParams.get('offset') ?? 0);
    const limit = Math.min(Number(u.searchParams.get('limit') ?? (paginated ? 50 : MAX)), MAX);
    const items = users.slice(offset, offset + limit).map((name) => ({
      name,
      admin: name.endsWith('9'),
      groups: ['lab'],
      roles: ['user'],
      created: '2026-01-05T09:12:44.318000Z',
      servers: {
        '': { name: '', ready: true, pending: null, url: `/user/${name}/`, last_activity: null },
      },
    }));
    const next = offset + limit < users.length ? offset + limit : null;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify(
        paginated
          ? {
              items,
              _pagination: {
                offset,
                limit,
                total: users.length,
                next: next === null ? null : { offset: next, limit, url: `${url}?offset=${next}` },
              },
            }
          : items,
      ),
    );
    afterPage();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

const hub = () => new HubClient({ apiUrl: `${url}/hub/api`, token: 't' });
const named = (n: number) => Array.from({ length: n }, (_, i) => `u${String(i).padStart(5, '0')}`);

test('every page of 1,050 users is read, once each, in the hub order, whatever page size was asked', async () => {
  users = named(1050);
  requests = [];
  afterPage = () => {};
  const listed = await hub().listActiveUsers(500);
  assert.deepEqual(
    listed.map((u) => u.name),
    users,
  );
  // the hub's cap (200) decides the pages: 6 of them, each asked for once, active users only
  assert.equal(requests.length, 6);
  assert.ok(requests.every((q) => q.includes('state=active')));
  assert.deepEqual(
    requests.map((q) => new URLSearchParams(q).get('offset')).sort((a, b) => Number(a) - Number(b)),
    ['0', '200', '400', '600', '800', '1000'],
  );
  // only what the service reads is kept of each model
  assert.deepEqual(Object.keys(listed[0]!).sort(), ['admin', 'groups', 'name', 'servers']);
  assert.equal(listed[0]!.servers?.['']?.url, `/user/${users[0]}/`);
});

test('users who join while the listing is read are listed too, and nobody twice', async () => {
  users = named(450);
  const before = [...users];
  requests = [];
  let changed = false;
  afterPage = () => {
    // after the first page: 300 users join, and 5 more land in front of everyone (everyone
    // moves 5 places down, so names cross page boundaries and would be read twice)
    if (changed) return;
    changed = true;
    users = [...['a1', 'a2', 'a3', 'a4', 'a5'], ...users, ...named(750).slice(450)];
  };
  const listed = await hub().listActiveUsers(200);
  const names = listed.map((u) => u.name);
  assert.equal(new Set(names).size, names.length, 'nobody twice');
  for (const u of [...before, ...named(750).slice(450)])
    assert.ok(names.includes(u), `${u} is listed`);
});

test('the admins are every admin user of the hub, every page', async () => {
  users = named(430);
  afterPage = () => {};
  const admins = await hub().listAdmins();
  assert.deepEqual(
    admins,
    users.filter((u) => u.endsWith('9')),
  );
});

test('a read on a connection the hub closed is asked again once; a write never is', async () => {
  users = named(3);
  afterPage = () => {};
  let calls = 0;
  const closedOnce = (async (input: string | URL | Request, init?: RequestInit) => {
    calls++;
    if (calls === 1) throw new TypeError('fetch failed');
    return fetch(input, init);
  }) as typeof fetch;
  const client = new HubClient({ apiUrl: `${url}/hub/api`, token: 't', fetch: closedOnce });
  assert.equal((await client.listActiveUsers()).length, 3);
  assert.equal(calls, 2);

  calls = 0;
  const refusing = (async () => {
    calls++;
    throw new TypeError('fetch failed');
  }) as typeof fetch;
  const writer = new HubClient({ apiUrl: `${url}/hub/api`, token: 't', fetch: refusing });
  await assert.rejects(writer.stopServer('u00001', ''), { code: 'hub_unreachable' });
  assert.equal(calls, 1, 'a stop is not sent twice');
});
