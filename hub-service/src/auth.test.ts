/**
 * The token cache: what the hub is asked, and when. Hub calls are counted on a stand-in for the
 * hub's `GET /user`; time is a fake clock.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator } from './auth.js';
import { ApiError } from './errors.js';
import type { HubClient, HubUserModel } from './hub.js';

const ACCESS = 'access:services!service=ngsci';

/** A stand-in for the hub: the tokens it knows, and every token it was asked about. */
function fakeHub(known: Map<string, string> = new Map()) {
  const asked: string[] = [];
  const hub = {
    async whoami(token: string): Promise<HubUserModel | null> {
      asked.push(token);
      await new Promise((r) => setTimeout(r, 5)); // an answer takes a while, as over HTTP
      const name = known.get(token);
      return name
        ? ({ kind: 'user', name, admin: false, groups: [], scopes: [ACCESS] } as HubUserModel)
        : null;
    },
    async getUser() {
      return null;
    },
  };
  return { hub: hub as unknown as HubClient, asked, known };
}

function authWith(
  hub: HubClient,
  opts: {
    cacheSeconds?: number;
    negativeCacheSeconds?: number;
    cacheEntries?: number;
    random?: () => number;
  } = {},
) {
  let now = 1_000_000;
  const auth = new Authenticator({
    hub,
    accessScopes: [ACCESS],
    adminScope: 'custom:ngsci:admin',
    cacheSeconds: opts.cacheSeconds ?? 30,
    negativeCacheSeconds: opts.negativeCacheSeconds,
    cacheEntries: opts.cacheEntries,
    now: () => now,
    // re-checked at the earliest point of the spread (half the lifetime) unless a test draws
    random: opts.random ?? (() => 0),
  });
  return { auth, advance: (seconds: number) => (now += seconds * 1000) };
}

const refused = (p: Promise<unknown>) =>
  assert.rejects(p, (e) => e instanceof ApiError && e.status === 401);

describe('the token cache', () => {
  test('a known token is asked about at most once per half of NGSCI_AUTH_CACHE_SECONDS', async () => {
    const f = fakeHub(new Map([['tok-a', 'alice']]));
    const { auth, advance } = authWith(f.hub, { cacheSeconds: 30 });
    const settled = () => new Promise((r) => setTimeout(r, 20));
    assert.equal((await auth.resolve('tok-a')).name, 'alice');
    advance(14);
    await auth.resolve('tok-a');
    assert.equal(f.asked.length, 1, 'fresh for half the lifetime');
    advance(2);
    await auth.resolve('tok-a');
    await settled();
    assert.equal(f.asked.length, 2, 'refreshed in the background when used in the second half');
    advance(15);
    await auth.resolve('tok-a');
    await settled();
    assert.equal(f.asked.length, 2, 'the refreshed entry is fresh again');
    advance(31);
    await auth.resolve('tok-a');
    assert.equal(f.asked.length, 3, 'unused past its lifetime: asked before answering');
  });

  test('tokens first seen together are re-checked spread over their life, never all at once', async () => {
    const n = 200;
    const tokens = Array.from({ length: n }, (_, i) => `tok-${i}`);
    const f = fakeHub(new Map(tokens.map((t, i) => [t, `user${i}`] as const)));
    // a fixed sequence of draws, evenly over [0, 1), so the test cannot be unlucky
    let draw = 0;
    const { auth, advance } = authWith(f.hub, {
      cacheSeconds: 30,
      random: () => (((draw++ * 0.618034) % 1) + 1) % 1,
    });
    await Promise.all(tokens.map((t) => auth.resolve(t))); // a class logs in at once
    f.asked.length = 0;
    const perSecond: number[] = [];
    // every token in use once a second from then on, as sidebars polling
    for (let second = 1; second <= 40; second++) {
      advance(1);
      const before = f.asked.length;
      await Promise.all(tokens.map((t) => auth.resolve(t)));
      await new Promise((r) => setTimeout(r, 10));
      perSecond.push(f.asked.length - before);
    }
    // none re-checked before half the lifetime (15 s), each by nine tenths (27 s) ...
    assert.deepEqual(perSecond.slice(0, 14), Array<number>(14).fill(0));
    assert.equal(
      perSecond.slice(0, 27).reduce((a, b) => a + b, 0),
      n,
      'every token re-checked once before it would have expired',
    );
    // ... spread over those 12 seconds: no second carries more than a sixth of them
    assert.ok(Math.max(...perSecond) <= n / 6, `re-checks per second: ${perSecond.join(' ')}`);
  });

  test('a refused token is remembered for a few seconds only, so a new token works soon', async () => {
    const f = fakeHub();
    const { auth, advance } = authWith(f.hub, { cacheSeconds: 30, negativeCacheSeconds: 5 });
    for (let i = 0; i < 10; i++) await refused(auth.resolve('tok-new'));
    assert.equal(f.asked.length, 1, 'ten tries of one bad token: one hub call');
    // the user makes the token on the hub's token page a moment later
    f.known.set('tok-new', 'bob');
    advance(6);
    assert.equal((await auth.resolve('tok-new')).name, 'bob');
    assert.equal(f.asked.length, 2);
  });

  test('concurrent requests with one token make one hub call', async () => {
    const f = fakeHub(new Map([['tok-a', 'alice']]));
    const { auth } = authWith(f.hub);
    const users = await Promise.all(Array.from({ length: 20 }, () => auth.resolve('tok-a')));
    assert.ok(users.every((u) => u.name === 'alice'));
    const bad = await Promise.allSettled(Array.from({ length: 20 }, () => auth.resolve('nope')));
    assert.ok(bad.every((r) => r.status === 'rejected'));
    assert.deepEqual(f.asked, ['tok-a', 'nope']);
  });

  test('the cache holds at most NGSCI_AUTH_CACHE_ENTRIES tokens; the least recently used go', async () => {
    const names = new Map(Array.from({ length: 5 }, (_, i) => [`tok-${i}`, `user${i}`] as const));
    const f = fakeHub(names);
    const { auth } = authWith(f.hub, { cacheEntries: 3 });
    await auth.resolve('tok-0');
    await auth.resolve('tok-1');
    await auth.resolve('tok-2');
    await auth.resolve('tok-0'); // used again: now tok-1 is the oldest
    await auth.resolve('tok-3'); // makes room by dropping tok-1
    f.asked.length = 0;
    await auth.resolve('tok-0');
    await auth.resolve('tok-2');
    await auth.resolve('tok-3');
    assert.deepEqual(f.asked, [], 'the three most recent are still cached');
    await auth.resolve('tok-1');
    assert.deepEqual(f.asked, ['tok-1'], 'the least recently used was dropped');
  });

  test('knows() tells a cached accepted token from a refused or unknown one', async () => {
    const f = fakeHub(new Map([['tok-a', 'alice']]));
    const { auth, advance } = authWith(f.hub, { cacheSeconds: 10 });
    assert.equal(auth.knows('tok-a'), false);
    await auth.resolve('tok-a');
    await refused(auth.resolve('nope'));
    assert.equal(auth.knows('tok-a'), true);
    assert.equal(auth.knows('nope'), false);
    advance(11);
    assert.equal(auth.knows('tok-a'), false, 'an expired entry is not known');
  });

  test('past half its life an accepted token is asked about in the background: nobody waits, and a revocation is still seen', async () => {
    let release!: () => void;
    let gate: Promise<void> = Promise.resolve();
    const f = fakeHub(new Map([['tok-a', 'alice']]));
    const slow = {
      ...f.hub,
      async whoami(token: string) {
        await gate;
        return f.hub.whoami(token);
      },
    } as unknown as HubClient;
    const { auth, advance } = authWith(slow, { cacheSeconds: 30, negativeCacheSeconds: 5 });
    await auth.resolve('tok-a');
    advance(16);
    gate = new Promise((r) => (release = r));
    // the hub does not answer yet: the cached acceptance is what the caller gets
    assert.equal((await auth.resolve('tok-a')).name, 'alice');
    assert.equal(auth.knows('tok-a'), true);
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(f.asked, ['tok-a', 'tok-a'], 'asked again once, in the background');
    f.known.delete('tok-a'); // the user revokes the token on the hub
    advance(16);
    assert.equal((await auth.resolve('tok-a')).name, 'alice', 'still within the cache lifetime');
    await new Promise((r) => setTimeout(r, 20));
    await refused(auth.resolve('tok-a'));
    assert.equal(f.asked.length, 3);
  });

  test('cache seconds of 0: every request asks the hub', async () => {
    const f = fakeHub(new Map([['tok-a', 'alice']]));
    const { auth } = authWith(f.hub, { cacheSeconds: 0, negativeCacheSeconds: 0 });
    await auth.resolve('tok-a');
    await auth.resolve('tok-a');
    await refused(auth.resolve('nope'));
    await refused(auth.resolve('nope'));
    assert.equal(f.asked.length, 4);
  });
});
