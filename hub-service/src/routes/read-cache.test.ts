/**
 * The read cache (read-cache.ts) answers exactly what the database would: two apps on one real
 * Postgres, one with the cache and one without, give the same bytes for every read route after
 * each kind of write — a meter cycle, a launch and a stop, a budget change, a plan change, writes
 * and a NOTIFY from "another replica", and a plan and a price override changed on another replica
 * (which the read cache never hears of: GET /budget's runway and GET /me's JSON kept in memory
 * check what they were made from) — and a dropped LISTEN connection empties the cache and stops
 * it answering until the LISTEN is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { seed, type Database } from '../db/client.js';
import { ACCESS, eventually, harness, type Harness } from '../testing/harness.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { Ledger, type Stream } from '../metering/ledger.js';
import { READS_CHANNEL, ReadCache } from './read-cache.js';

let pg: FreshPostgres;
let cachedDb: Database;
let other: Database;
let cache: ReadCache;
let stopCache: () => Promise<void>;
let cached: Harness;
let plain: Harness;
const heard: string[] = [];
const prov = new ScriptedProvisioner();
const env = { NGSCI_HOME_GB: '10', NGSCI_LOG_LEVEL: 'silent' };

before(async () => {
  pg = await freshPostgres('ngsci_read_cache');
  cachedDb = await pg.open();
  await seed(cachedDb.db);
  other = await pg.open();
  cache = new ReadCache();
  const hear = cache.heard.bind(cache);
  cache.heard = (payload: string) => {
    heard.push(payload);
    hear(payload);
  };
  stopCache = await cache.follow({ database: cachedDb, logger: console });
  const provisioners = new Map([['local', prov]]);
  // its plans in memory are read again after 1 s (the meter interval), as a replica that missed
  // the notification of a plan change on another replica reads them again (plan-cache.ts)
  cached = await harness({
    database: cachedDb,
    readCache: cache,
    provisioners,
    env: { ...env, NGSCI_METER_INTERVAL: '1' },
  });
  // the reference: no cache, and the plans read again on every request
  plain = await harness({
    database: other,
    provisioners,
    env: { ...env, NGSCI_METER_INTERVAL: '0.001' },
  });
});
after(async () => {
  await cached?.close();
  await plain?.close();
  await stopCache?.();
  await pg?.drop();
});

const USER = { name: 'ada', groups: ['lab'] };
const ADMIN = { name: 'boss', scopes: [ACCESS, 'custom:ngsci:admin'] };
const tokens = () => ({ cached: cached.token(USER), plain: plain.token(USER) });

/**
 * Waits until every notification sent before now has reached the cache: Postgres delivers a
 * listening connection's notifications in commit order, so one sent now arrives after them.
 */
let barriers = 0;
async function barrier(): Promise<void> {
  const mark = JSON.stringify([`barrier-${++barriers}`]);
  await other.db.execute(sql`select pg_notify(${READS_CHANNEL}, ${mark})`);
  await eventually(async () => heard.includes(mark) || null, `notification ${mark}`);
}

function routes(at: Date): string[] {
  const day = at.toISOString().slice(0, 10);
  const month = at.toISOString().slice(0, 7);
  return [
    '/api/v1/budget',
    '/api/v1/usage',
    `/api/v1/usage?granularity=hour&from=${day}T00:00:00Z`,
    `/api/v1/usage?granularity=month&from=${month}-01T00:00:00Z&to=${day}T23:00:00Z`,
    '/api/v1/instances',
    '/api/v1/instances?all=true',
    '/api/v1/instances/default',
    '/api/v1/billing/statements',
    '/api/v1/me',
  ];
}

/**
 * At one instant on both apps' clocks: each route from the cached app twice (the second from
 * memory) and from the plain one, byte for byte the same. Returns how many answers were hits.
 */
async function same(what: string): Promise<number> {
  const at = new Date();
  cached.services.metering.now = () => at;
  plain.services.metering.now = () => at;
  const t = tokens();
  const hits = cache.stats.hits;
  const headers = { 'x-request-id': 'compare' };
  const read = async (h: Harness, path: string, token: string) => {
    const res = await h.request(path, { token, headers });
    return `${res.status} ${await res.text()}`;
  };
  for (const path of routes(at)) {
    // the worker may change an instance while the three reads run (a launch or a stop going on):
    // the reference is read before and after, and the comparison is made again if it moved
    for (let attempt = 1; ; attempt++) {
      const before = await read(plain, path, t.plain);
      const fill = await read(cached, path, t.cached);
      const again = await read(cached, path, t.cached);
      const after = await read(plain, path, t.plain);
      if (before !== after && attempt < 20) continue;
      assert.equal(before, after, `${what}: ${path} kept changing`);
      assert.equal(fill, before, `${what}: ${path} (fill)`);
      assert.equal(again, before, `${what}: ${path} (again)`);
      break;
    }
  }
  return cache.stats.hits - hits;
}

const stream = (id: string, readyAt: Date): Stream => ({
  key: id,
  kind: 'compute',
  user: USER.name,
  groups: USER.groups,
  instanceId: id,
  server: 'default',
  size: 'cpu-small',
  sizeClass: 'cpu',
  cloud: 'local',
  region: 'localhost',
  spot: false,
  planId: 'private',
  multiplierPpm: 1_000_000,
  rateMicros: 96_000,
  ratePeriodSeconds: 3600,
  anchor: readyAt,
  closeAt: null,
  minimumSeconds: 60,
  lastActivity: null,
});

test('every read route answers the same bytes with and without the cache, across writes', async () => {
  assert.ok(cache.active, 'the LISTEN is in place');
  await same('nothing yet');
  assert.ok((await same('nothing yet, again')) > 0, 'the second pass came from memory');

  // another replica: an instance that has run 3 hours, then a meter cycle writing its rows
  const readyAt = new Date(Date.now() - 3 * 3_600_000);
  const row = await plain.runningInstance(USER.name, { readyAt, server: 'old' });
  await barrier();
  assert.ok((await same('an instance running on another replica')) > 0);
  const meter = new Ledger(other.db);
  await meter.accrue([stream(row.id, readyAt)], new Date(Date.now() - 60_000), 300);
  await barrier();
  assert.equal(cache.holds(USER.name), false, "the meter's rows dropped the user's copy");
  assert.ok((await same('a meter cycle on another replica')) > 0);

  // a launch and a stop through the cached app: read back at once, and once the worker is done
  const t = tokens();
  const launched = await cached.request('/api/v1/instances', {
    method: 'POST',
    token: t.cached,
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  assert.equal(launched.status, 202, await launched.clone().text());
  await same('right after a launch');
  await eventually(async () => {
    const r = await plain.request('/api/v1/instances/default', { token: t.plain });
    return ((await r.json()) as { state: string }).state === 'running' || null;
  }, 'the launch running');
  await barrier();
  await same('the launch running');
  const stopped = await cached.request('/api/v1/instances/default/stop', {
    method: 'POST',
    token: t.cached,
  });
  assert.equal(stopped.status, 202, await stopped.clone().text());
  await same('right after a stop');
  await eventually(async () => {
    const r = await plain.request('/api/v1/instances/default', { token: t.plain });
    return ((await r.json()) as { state: string }).state === 'stopped' || null;
  }, 'the stop done');
  await barrier();
  await same('the stop done');

  // a budget: set through the cached app (read back at once), changed through the other replica
  const admin = { cached: cached.token(ADMIN), plain: plain.token(ADMIN) };
  const created = await cached.request('/api/v1/admin/quotas', {
    method: 'POST',
    token: admin.cached,
    body: JSON.stringify({ subjectKind: 'user', subjectName: USER.name, monthlyBudgetMicros: 5e6 }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  await same('a budget set here');
  const { id } = (await created.json()) as { id: number };
  const changed = await plain.request(`/api/v1/admin/quotas/${id}`, {
    method: 'PUT',
    token: admin.plain,
    body: JSON.stringify({
      subjectKind: 'user',
      subjectName: USER.name,
      monthlyBudgetMicros: 1,
      hardStop: true,
    }),
  });
  assert.equal(changed.status, 200, await changed.clone().text());
  await barrier();
  await same('a budget changed on another replica');

  // a plan change (the multiplier of every live figure)
  const assigned = await cached.request('/api/v1/admin/plan-assignments', {
    method: 'PUT',
    token: admin.cached,
    body: JSON.stringify({ subjectKind: 'group', subjectName: 'lab', planId: 'nonprofit' }),
  });
  assert.equal(assigned.status, 200, await assigned.clone().text());
  await same('a plan change');

  // a plan's multiplier and label changed on another replica: nothing tells the read cache (the
  // plans are not per user); once this replica's plans in memory are read again, /me and the
  // runway's rates of /budget follow, while the user's settled figures stay kept
  const planned = await plain.request('/api/v1/admin/plans/nonprofit', {
    method: 'PUT',
    token: admin.plain,
    body: JSON.stringify({ label: 'Non-profit (changed elsewhere)', multiplierPpm: 650_000 }),
  });
  assert.equal(planned.status, 200, await planned.clone().text());
  await eventually(async () => {
    const r = await cached.request('/api/v1/me', { token: tokens().cached });
    return (
      ((await r.json()) as { plan: { multiplierPpm: number } }).plan.multiplierPpm === 650_000 ||
      null
    );
  }, 'the changed plan read again here');
  assert.ok(cache.holds(USER.name), 'the read cache heard nothing of the plan');
  assert.ok((await same('a plan changed on another replica')) > 0);

  // a price override set and removed on another replica: nothing tells the read cache (prices
  // are not per user); this replica's price book reloads it (on its PRICES_CHANNEL notification,
  // or its interval), and /budget's runway shows the new rate while the settled figures stay kept
  const choice = (
    (await (await cached.request('/api/v1/budget', { token: tokens().cached })).json()) as {
      runway: Array<{ size: string; cloud: string; rateMicrosPerHour: number }>;
    }
  ).runway[0]!;
  const priced = await plain.request('/api/v1/admin/prices', {
    method: 'PUT',
    token: admin.plain,
    body: JSON.stringify({
      size: choice.size,
      cloud: choice.cloud,
      onDemandMicrosPerHour: 1_234_567,
    }),
  });
  assert.equal(priced.status, 200, await priced.clone().text());
  await cached.services.metering.prices.refresh();
  assert.ok(cache.holds(USER.name), 'the read cache heard nothing of the price');
  assert.ok((await same('a price override set on another replica')) > 0);
  const rate = (
    (await (await cached.request('/api/v1/budget', { token: tokens().cached })).json()) as {
      runway: Array<{ rateMicrosPerHour: number }>;
    }
  ).runway[0]!.rateMicrosPerHour;
  assert.equal(rate, Math.round(1_234_567 * 0.65), 'the override at the changed plan');
  const unpriced = await plain.request(`/api/v1/admin/prices/${choice.size}/${choice.cloud}`, {
    method: 'DELETE',
    token: admin.plain,
  });
  assert.equal(unpriced.status, 204, await unpriced.clone().text());
  await cached.services.metering.prices.refresh();
  assert.ok(cache.holds(USER.name));
  assert.ok((await same('a price override removed on another replica')) > 0);

  // a NOTIFY from another replica names the user: the copy goes
  await same('before a notification');
  assert.ok(cache.holds(USER.name));
  await other.db.execute(sql`select pg_notify(${READS_CHANNEL}, ${JSON.stringify([USER.name])})`);
  await eventually(async () => !cache.holds(USER.name) || null, 'the copy dropped');
  // more than 100 rows in one statement: everyone's copy goes ('*')
  await same('before a large meter write');
  const many = Array.from({ length: 120 }, (_, i) => ({
    ...stream(`bulk-${i}`, readyAt),
    user: `bulk-${i}`,
    instanceId: null,
    key: `home:bulk-${i}`,
    kind: 'storage' as const,
    size: 'home-volume',
    sizeClass: 'storage' as const,
    minimumSeconds: 0,
  }));
  const cleared = cache.stats.cleared;
  await meter.accrue(many, new Date(), 300);
  await eventually(async () => cache.stats.cleared > cleared || null, 'everything dropped');
  assert.equal(cache.size, 0);
  await same('after a large meter write');
});

test('a dropped LISTEN connection empties the cache, which answers nothing until it is back', async () => {
  await same('before the drop');
  assert.ok(cache.size > 0 && cache.active);
  const drops = cache.stats.drops;
  const seen: Array<{ active: boolean; size: number }> = [];
  const drop = cache.dropped.bind(cache);
  cache.dropped = () => {
    drop();
    seen.push({ active: cache.active, size: cache.size });
  };
  const killed = await other.db.execute(sql`
    select pg_terminate_backend(pid) as ok from pg_stat_activity
    where datname = current_database() and query = ${`listen "${READS_CHANNEL}"`}`);
  assert.equal((killed as unknown as unknown[]).length, 1, 'the LISTEN connection was found');
  await eventually(async () => cache.stats.drops > drops || null, 'the drop seen');
  assert.deepEqual(seen[0], { active: false, size: 0 }, 'emptied and inactive on the drop');
  // a ledger write while it may be down: whenever the LISTEN is back, the copy is gone
  const row = await plain.runningInstance(USER.name, { server: 'late' });
  await new Ledger(other.db).accrue([stream(row.id, row.readyAt!)], new Date(), 300);
  await eventually(async () => cache.active || null, 'the LISTEN back');
  assert.equal(cache.holds(USER.name), false);
  await same('after the LISTEN came back');
});

test('off: nothing is kept', async () => {
  const off = new ReadCache({ enabled: false });
  await off.follow({ database: cachedDb, logger: console });
  assert.equal(off.active, false);
  let loads = 0;
  for (let i = 0; i < 3; i++) await off.get('u', 'k', async () => ++loads);
  assert.equal(loads, 3);
});
