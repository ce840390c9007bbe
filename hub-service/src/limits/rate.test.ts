/**
 * Rate limits through the real app: changes are counted per signed-in user or instance agent,
 * launches and resizes have their own tighter budget, and failed token lookups are bounded per
 * client address (as the hub's proxy forwards it), so a burst of made-up tokens costs the hub a
 * bounded number of calls. Refusals are 429 `rate_limited` with Retry-After.
 */
import { after, before, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { createApp } from '../app.js';
import { Authenticator } from '../auth.js';
import { ACCESS, BRIDGE_SECRET, harness, type Harness } from '../testing/harness.js';
import { defaultLimits, type LimitSettings } from './settings.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => h.close());

/** The harness's services and fake hub behind an app with these limits. */
function appWith(limits: Partial<LimitSettings>, hubDelayMs = 0) {
  const hub = h.services.hub;
  // a hub that takes a while to answer, as one under load does
  const slowHub = Object.assign(Object.create(hub) as typeof hub, {
    whoami: async (token: string) => {
      await new Promise((r) => setTimeout(r, hubDelayMs));
      return hub.whoami(token);
    },
  });
  const auth = new Authenticator({
    hub: hubDelayMs ? slowHub : hub,
    accessScopes: [ACCESS],
    adminScope: 'custom:ngsci:admin',
    cacheSeconds: 30,
  });
  const app = createApp({
    ...h.services,
    auth,
    bridgeSecret: BRIDGE_SECRET,
    prefix: h.config.JUPYTERHUB_SERVICE_PREFIX,
    version: 'test',
    limits: { ...defaultLimits, ...limits },
  });
  /** a request as it arrives from `peer` (the proxy, or a client that reached the port itself) */
  const request = (
    path: string,
    init: { method?: string; token?: string; body?: unknown; peer?: string; xff?: string } = {},
  ) => {
    const headers = new Headers();
    if (init.token) headers.set('authorization', `token ${init.token}`);
    if (init.xff) headers.set('x-forwarded-for', init.xff);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    return app.request(
      `${h.config.JUPYTERHUB_SERVICE_PREFIX}api/v1${path}`,
      {
        method: init.method ?? 'GET',
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      },
      { incoming: { socket: { remoteAddress: init.peer ?? '127.0.0.1' } } },
    );
  };
  return Object.assign(request, { app });
}

/** The app behind a real HTTP server on loopback, as the hub's proxy reaches it; closed after `use`. */
async function listening<T>(
  app: { fetch: Hono['fetch'] },
  use: (url: string) => Promise<T>,
): Promise<T> {
  let server!: ServerType;
  await new Promise<void>((ready) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready());
  });
  try {
    const { port } = server.address() as AddressInfo;
    return await use(`http://127.0.0.1:${port}${h.config.JUPYTERHUB_SERVICE_PREFIX}api/v1`);
  } finally {
    await new Promise((done) => server.close(done));
  }
}

const code = async (res: Response) => ((await res.json()) as { code: string }).code;
const hubLookups = () => h.hubCalls.filter((c) => c === 'GET /user').length;

function assertRefused(res: Response) {
  assert.equal(res.status, 429);
  const retry = Number(res.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${retry}`);
}

describe('changes per caller', () => {
  test('a user gets NGSCI_WRITES_PER_MINUTE changes a minute; others and reads are not held up', async () => {
    const request = appWith({ NGSCI_WRITES_PER_MINUTE: 3 });
    const alice = h.token({ name: 'rate-alice' });
    const bob = h.token({ name: 'rate-bob' });
    const save = (token: string) =>
      request('/notifications/preferences', { method: 'PUT', token, body: {} });
    for (let i = 0; i < 3; i++) assert.equal((await save(alice)).status, 200);
    const refused = await save(alice);
    assertRefused(refused);
    const body = (await refused.json()) as { code: string; message: string; requestId: string };
    assert.equal(body.code, 'rate_limited');
    assert.match(body.message, /rate-alice: at most 3 a minute/);
    assert.equal(typeof body.requestId, 'string');
    assert.equal(refused.headers.get('ratelimit-limit'), '3');
    assert.equal((await save(bob)).status, 200, 'another user has their own budget');
    assert.equal((await request('/me', { token: alice })).status, 200, 'reads are not counted');
  });

  test("a user's tokens share one budget, whatever address they come from", async () => {
    const request = appWith({ NGSCI_WRITES_PER_MINUTE: 2 });
    const browser = h.token({ name: 'rate-carol' });
    const server = h.token({ name: 'rate-carol' });
    const ack = (token: string, xff: string) =>
      request('/notifications/ack', { method: 'POST', token, body: { upTo: 1 }, xff });
    assert.equal((await ack(browser, '198.51.100.1')).status, 200);
    assert.equal((await ack(server, '198.51.100.2')).status, 200);
    assertRefused(await ack(browser, '198.51.100.3'));
  });

  test('launches and resizes have their own budget, refused before the hub is asked', async () => {
    const request = appWith({ NGSCI_LAUNCHES_PER_MINUTE: 2 });
    const dave = h.token({ name: 'rate-dave' });
    const launch = (server: string) =>
      request('/instances', { method: 'POST', token: dave, body: { size: 'gpu-x999', server } });
    assert.equal(await code(await launch('a')), 'unknown_size');
    assert.equal(
      (
        await request('/instances/a/resize', {
          method: 'POST',
          token: dave,
          body: { size: 'gpu-x999' },
        })
      ).status,
      404,
    );
    const calls = h.hubCalls.length;
    const third = await request('/instances', {
      method: 'POST',
      token: dave,
      body: { size: 'cpu-small', server: 'b' },
    });
    assertRefused(third);
    assert.match(((await third.json()) as { message: string }).message, /launches and resizes/);
    assert.equal(h.hubCalls.length, calls, 'the hub was not asked to spawn');
    const other = await request('/notifications/preferences', {
      method: 'PUT',
      token: dave,
      body: {},
    });
    assert.equal(other.status, 200, 'other changes have their own budget');
  });

  test('an instance agent has its own budget, apart from its user and other instances', async () => {
    const request = appWith({ NGSCI_WRITES_PER_MINUTE: 2 });
    const agent = async (user: string) => (await h.runningAgent(user)).token;
    const one = await agent('rate-erin');
    const two = await agent('rate-frank');
    const report = (token: string) =>
      request('/agent/kernels', { method: 'POST', token, body: { total: 1, busy: 0 } });
    assert.equal((await report(one)).status, 202);
    assert.equal((await report(one)).status, 202);
    const refused = await report(one);
    assertRefused(refused);
    assert.match(((await refused.json()) as { message: string }).message, /agent of instance/);
    assert.equal((await report(two)).status, 202);
    const erin = h.token({ name: 'rate-erin' });
    const own = await request('/notifications/ack', {
      method: 'POST',
      token: erin,
      body: { upTo: 1 },
    });
    assert.equal(own.status, 200, "the agent's budget is not its user's");
  });

  test('the budget comes back after the minute', async () => {
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      const request = appWith({ NGSCI_WRITES_PER_MINUTE: 1 });
      const gina = h.token({ name: 'rate-gina' });
      const ack = () =>
        request('/notifications/ack', { method: 'POST', token: gina, body: { upTo: 1 } });
      assert.equal((await ack()).status, 200);
      assertRefused(await ack());
      mock.timers.tick(61_000);
      assert.equal((await ack()).status, 200);
    } finally {
      mock.timers.reset();
    }
  });

  test('0 turns a limit off', async () => {
    const request = appWith({ NGSCI_WRITES_PER_MINUTE: 0 });
    const hank = h.token({ name: 'rate-hank' });
    for (let i = 0; i < 5; i++)
      assert.equal(
        (await request('/notifications/ack', { method: 'POST', token: hank, body: { upTo: 1 } }))
          .status,
        200,
      );
  });
});

describe('failed token lookups per client address', () => {
  const random = () => `guess-${Math.random().toString(36).slice(2)}${Date.now()}`;

  test('a burst of made-up tokens makes at most NGSCI_AUTH_FAILURES_PER_MINUTE hub calls', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 5 });
    const ivy = h.token({ name: 'rate-ivy' });
    // a user behind the same address signed in before the burst
    assert.equal((await request('/me', { token: ivy, xff: '198.51.100.20' })).status, 200);
    const before = hubLookups();
    // 50 concurrent connections through the proxy, each with a made-up token
    const burst = await listening(request.app, (url) =>
      Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`${url}/me`, {
            headers: { authorization: `token ${random()}`, 'x-forwarded-for': '198.51.100.20' },
          }),
        ),
      ),
    );
    assert.ok(hubLookups() - before <= 5, `${hubLookups() - before} lookups: at most five`);
    const statuses = burst.map((r) => r.status);
    assert.ok(
      statuses.filter((s) => s === 429).length >= 45,
      `at least 45 refused without asking the hub: ${statuses.join(',')}`,
    );
    assert.ok(statuses.every((s) => s === 401 || s === 429));
    const refused = burst.find((r) => r.status === 429)!;
    assertRefused(refused);
    assert.equal(await code(refused), 'rate_limited');
    assert.equal(
      (await request('/me', { token: ivy, xff: '198.51.100.20' })).status,
      200,
      'a token already known keeps working from that address',
    );
    assert.equal(
      (await request('/me', { token: random(), xff: '198.51.100.21' })).status,
      401,
      'another address is still looked up',
    );
  });

  test('a good token does not use up the budget of failures', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 2 });
    for (let i = 0; i < 5; i++) {
      const fresh = h.token({ name: `rate-jo${i}` });
      assert.equal((await request('/me', { token: fresh, xff: '198.51.100.30' })).status, 200);
    }
    assert.equal((await request('/me', { token: random(), xff: '198.51.100.30' })).status, 401);
  });

  test('many concurrent requests with one new token are one lookup, not one failure each', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 2 }, 200);
    const tokens = [h.token({ name: 'rate-kim' }), h.token({ name: 'rate-lee' })];
    const before = hubLookups();
    const answers = await listening(request.app, (url) =>
      Promise.all(
        tokens.flatMap((t) =>
          Array.from({ length: 20 }, () =>
            fetch(`${url}/me`, {
              headers: { authorization: `token ${t}`, 'x-forwarded-for': '198.51.100.40' },
            }),
          ),
        ),
      ),
    );
    assert.deepEqual(
      [...new Set(answers.map((r) => r.status))],
      [200],
      'forty requests of two users signing in at once, from one address',
    );
    assert.equal(hubLookups() - before, 2, 'one hub lookup per token');
  });

  test('a classroom behind one address signing in at once waits its turn, none refused', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 3 }, 50);
    const tokens = Array.from({ length: 30 }, (_, i) => h.token({ name: `rate-class${i}` }));
    const answers = await listening(request.app, (url) =>
      Promise.all(
        tokens.map((t) =>
          fetch(`${url}/me`, {
            headers: { authorization: `token ${t}`, 'x-forwarded-for': '198.51.100.50' },
          }),
        ),
      ),
    );
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
    // and the failures of a guesser at that address are still bounded after them
    const before = hubLookups();
    const guesses = await listening(request.app, (url) =>
      Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${url}/me`, {
            headers: { authorization: `token ${random()}`, 'x-forwarded-for': '198.51.100.50' },
          }),
        ),
      ),
    );
    assert.ok(hubLookups() - before <= 3, `${hubLookups() - before} lookups: at most three`);
    assert.ok(guesses.filter((r) => r.status === 429).length >= 17);
  });

  test('a client that reaches the port itself cannot pick its address with X-Forwarded-For', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 3 });
    const answers = [];
    for (let i = 0; i < 6; i++)
      answers.push(
        (await request('/me', { token: random(), peer: '203.0.113.50', xff: `198.51.100.${i}` }))
          .status,
      );
    assert.deepEqual(answers, [401, 401, 401, 429, 429, 429]);
  });

  test('behind the proxy, only the address the proxy appended counts', async () => {
    const request = appWith({ NGSCI_AUTH_FAILURES_PER_MINUTE: 2 });
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(
        (await request('/me', { token: random(), xff: `10.9.9.${i}, 198.51.100.40` })).status,
      );
    assert.deepEqual(answers, [401, 401, 429, 429]);
  });
});
