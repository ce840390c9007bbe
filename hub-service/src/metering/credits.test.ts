/**
 * Cloud credit grants on the real Postgres server: the draw-down order (earliest expiry first),
 * grant validity days, exact µ$ at list price whatever the plan, that a restart or a replayed
 * meter cycle never applies credit twice, the statement per cloud and month, the alerts, the
 * placement choice, and the admin API over the app.
 */
import { grantRow } from '../testing/grant-row.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCatalog } from '../catalog.js';
import type { Database } from '../db/client.js';
import { seed } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { ACCESS, eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { Ledger, type IntervalRow } from './ledger.js';
import { intervalMicros } from './money.js';
import {
  choosePlacement,
  CreditAlerter,
  creditAlerts,
  Credits,
  drawDown,
  placementToAct,
} from './credits.js';

const grant = grantRow;

describe('drawDown (pure)', () => {
  test('usage takes the grant that expires first, then the next, to the µ$', () => {
    const grants = [
      grant(1, 'aws', 5_000_000, '2026-01-01', '2026-12-31'),
      grant(2, 'aws', 3_000_001, '2026-01-01', '2026-06-30'),
    ];
    const { used, applied } = drawDown(grants, [
      { cloud: 'aws', day: '2026-03-01', listMicros: 2_000_000 },
      { cloud: 'aws', day: '2026-03-02', listMicros: 2_000_000 },
    ]);
    assert.equal(used.get(2), 3_000_001);
    assert.equal(used.get(1), 999_999);
    assert.equal(applied.get('aws|2026-03-02'), 2_000_000);
  });

  test('a grant covers its own cloud and only the days from its start to its expiry (inclusive)', () => {
    const grants = [grant(1, 'gcp', 100, '2026-03-02', '2026-03-03')];
    const { used, applied } = drawDown(grants, [
      { cloud: 'gcp', day: '2026-03-01', listMicros: 10 },
      { cloud: 'gcp', day: '2026-03-02', listMicros: 10 },
      { cloud: 'aws', day: '2026-03-02', listMicros: 10 },
      { cloud: 'gcp', day: '2026-03-03', listMicros: 10 },
      { cloud: 'gcp', day: '2026-03-04', listMicros: 10 },
    ]);
    assert.equal(used.get(1), 20);
    assert.deepEqual([...applied.keys()].sort(), ['gcp|2026-03-02', 'gcp|2026-03-03']);
  });

  test('usage beyond every grant stays uncovered; the order of the input does not matter', () => {
    const grants = [grant(1, 'aws', 15, '2026-01-01', '2026-01-31')];
    const days = [
      { cloud: 'aws', day: '2026-01-02', listMicros: 10 },
      { cloud: 'aws', day: '2026-01-01', listMicros: 10 },
    ];
    const a = drawDown(grants, days);
    const b = drawDown(grants, [...days].reverse());
    assert.equal(a.used.get(1), 15);
    assert.deepEqual([...a.applied], [...b.applied]);
    assert.equal(a.applied.get('aws|2026-01-01'), 10);
    assert.equal(a.applied.get('aws|2026-01-02'), 5);
  });
});

describe('creditAlerts (pure)', () => {
  test('runs out within the window at the current burn', () => {
    const g = grant(1, 'aws', 1_000_000, '2026-01-01', '2027-01-01');
    const alerts = creditAlerts(
      [g],
      new Map([[1, 400_000]]),
      new Map([['aws', 100_000]]),
      '2026-03-01',
      30,
    );
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.kind, 'runs_out');
    assert.equal(alerts[0]!.on, '2026-03-07'); // 600_000 left at 100_000 a day
  });

  test('expires within the window with credit left; a grant far from both is quiet', () => {
    const soon = grant(1, 'gcp', 1_000_000, '2026-01-01', '2026-03-10');
    const far = grant(2, 'gcp', 10_000_000, '2026-01-01', '2027-03-10');
    const alerts = creditAlerts(
      [soon, far],
      new Map(),
      new Map([['gcp', 50_000]]),
      '2026-03-01',
      30,
    );
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.kind, 'expires_unused');
    assert.equal(alerts[0]!.grantId, 1);
    assert.equal(alerts[0]!.unusedMicros, 1_000_000 - 9 * 50_000);
  });
});

describe('choosePlacement (pure)', () => {
  const catalog = buildCatalog({ clouds: ['aws', 'gcp', 'azure'], defaultCloud: 'aws' });

  test('no credits: the lowest list price, and on a tie the default cloud', () => {
    const p = choosePlacement(catalog, { size: 'gpu-l4' }, new Map());
    assert.equal(p?.cloud, 'gcp'); // 0.7068 $/h against AWS 0.8048
    const t4 = choosePlacement(catalog, { size: 'gpu-t4' }, new Map());
    assert.equal(t4?.cloud, 'aws'); // AWS and Azure both 0.526 $/h; AWS is the default
    assert.match(t4!.reason, /^on AWS: the lowest list price/);
  });

  test('credits that cover the expected run win over a lower list price', () => {
    const p = choosePlacement(
      catalog,
      { size: 'gpu-t4' },
      new Map([['gcp', [{ remainingMicros: 50_000_000_000, expiresOn: '2027-03-31' }]]]),
    );
    assert.equal(p?.cloud, 'gcp');
    assert.equal(p?.reason, 'on GCP: covered by research credits until 2027-03-31');
    assert.equal(p?.options[0]?.netMicros, 0);
  });

  test('partial credit counts by what is left to pay', () => {
    // 8 h of gpu-t4: AWS 4.208 $, GCP 4.32 $; 0.5 $ of GCP credit leaves 3.82 $ to pay there
    const p = choosePlacement(
      catalog,
      { size: 'gpu-t4' },
      new Map([['gcp', [{ remainingMicros: 500_000, expiresOn: '2027-03-31' }]]]),
    );
    assert.equal(p?.cloud, 'gcp');
    assert.equal(p?.options[0]?.netMicros, 4_320_000 - 500_000);
    assert.match(p!.reason, /credits cover \$0\.500 of the expected \$4\.32/);
  });

  test('spot prices decide a spot launch; clouds the hub does not provision are not candidates', () => {
    const spot = choosePlacement(catalog, { size: 'gpu-t4', spot: true }, new Map());
    assert.equal(spot?.cloud, 'azure');
    const awsOnly = buildCatalog({ clouds: ['aws'], defaultCloud: 'aws' });
    const only = choosePlacement(awsOnly, { size: 'gpu-t4' }, new Map());
    assert.equal(only?.cloud, 'aws');
    assert.equal(only?.reason, 'on AWS: the only cloud this hub offers gpu-t4 on');
    assert.equal(choosePlacement(awsOnly, { size: 'gpu-a100' }, new Map()), null);
  });

  test('a size or pair only one cloud offers goes there unless that is the default; pairs are placed by credits', () => {
    // gpu-v100: GCP only; gpu-a10g: AWS (the default) only; xl.a100: Azure only
    const v100 = placementToAct(catalog, choosePlacement(catalog, { size: 'gpu-v100' }, new Map()));
    assert.equal(v100?.cloud, 'gcp');
    assert.equal(v100?.reason, 'on GCP: the only cloud this hub offers gpu-v100 on');
    const a10g = choosePlacement(catalog, { size: 'gpu-a10g' }, new Map());
    assert.equal(a10g?.cloud, 'aws');
    assert.equal(placementToAct(catalog, a10g), null);
    assert.equal(
      placementToAct(catalog, choosePlacement(catalog, { size: 'xl.a100' }, new Map()))?.cloud,
      'azure',
    );
    // a pair weighs its clouds like a named size: the cheapest list price, then credits
    const pair = choosePlacement(catalog, { size: 'm.t4' }, new Map());
    assert.ok(pair && pair.options.length > 1, 'm.t4 is offered on several clouds');
    const cheapest = [...pair.options].sort(
      (a, b) => a.ratePerHourMicros - b.ratePerHourMicros,
    )[0]!;
    assert.equal(pair.cloud, cheapest.cloud);
    const other = pair.options.find((o) => o.cloud !== pair.cloud)!;
    const credited = choosePlacement(
      catalog,
      { size: 'm.t4' },
      new Map([[other.cloud, [{ remainingMicros: 50_000_000_000, expiresOn: '2027-03-31' }]]]),
    );
    assert.equal(credited?.cloud, other.cloud);
    assert.match(credited!.reason, /covered by research credits until 2027-03-31$/);
  });
});

// ---- with Postgres

let pg: FreshPostgres;
let database: Database;

before(async () => {
  pg = await freshPostgres('credits');
  database = await pg.open();
  await seed(database.db);
});
after(async () => pg?.drop());

/** One hour-long compute row of a stream, billed from `fromS` to `toS` seconds. */
function row(opts: {
  key: string;
  cloud: string;
  start: string;
  seconds?: number;
  billedFrom?: number;
  rate: number;
  ppm: number;
}): IntervalRow {
  const seconds = opts.seconds ?? 3600;
  const billedFrom = opts.billedFrom ?? 0;
  const startedAt = new Date(opts.start);
  return {
    meterKey: opts.key,
    kind: 'compute',
    userName: 'ada',
    groups: [],
    instanceId: null,
    serverName: 'default',
    sizeId: 'gpu-t4',
    sizeClass: 'gpu',
    cloud: opts.cloud,
    region: 'r',
    spot: false,
    planId: opts.ppm === 0 ? 'nonprofit' : 'private',
    multiplierPpm: opts.ppm,
    rateMicros: opts.rate,
    ratePeriodSeconds: 3600,
    startedAt,
    endedAt: new Date(startedAt.getTime() + seconds * 1000),
    billedFrom,
    billedTo: billedFrom + seconds,
    activeSeconds: 0,
    idleSeconds: seconds,
    final: false,
    amountMicros: intervalMicros(opts.rate, billedFrom, billedFrom + seconds, opts.ppm, 3600),
  };
}

describe('Credits over the ledger (Postgres)', () => {
  const now = new Date('2026-03-20T12:00:00Z');
  // an odd rate so the cumulative rounding matters: 333_333 µ$/h
  const RATE = 333_333;
  const rows: IntervalRow[] = [];

  before(async () => {
    // a non-profit researcher on AWS (billed 0, but the cloud bills list price), split into
    // rows of 1000 s so the day sums need the cumulative rounding to be exact
    for (let i = 0; i < 6; i++)
      rows.push(
        row({
          key: 'inst-aws',
          cloud: 'aws',
          start: new Date(Date.parse('2026-03-01T00:00:00Z') + i * 1000_000).toISOString(),
          seconds: 1000,
          billedFrom: i * 1000,
          rate: RATE,
          ppm: 0,
        }),
      );
    // a private researcher on GCP in February and March; local usage bills no cloud
    rows.push(
      row({
        key: 'inst-gcp',
        cloud: 'gcp',
        start: '2026-02-27T10:00:00Z',
        rate: 2_000_000,
        ppm: 1_000_000,
      }),
    );
    rows.push(
      row({
        key: 'inst-gcp2',
        cloud: 'gcp',
        start: '2026-03-05T10:00:00Z',
        rate: 2_000_000,
        ppm: 1_000_000,
      }),
    );
    rows.push(
      row({
        key: 'inst-local',
        cloud: 'local',
        start: '2026-03-05T10:00:00Z',
        rate: 9_000_000,
        ppm: 1_000_000,
      }),
    );
    const ledger = new Ledger(database.db);
    assert.equal((await ledger.append(rows)).length, rows.length);
  });

  test('usage per cloud and day is the exact list price, plan multiplier left out', async () => {
    const credits = new Credits(database.db);
    const usage = await credits.usageByDay('2026-02-01', '2026-04-01');
    const aws = usage.filter((u) => u.cloud === 'aws').reduce((s, u) => s + u.listMicros, 0);
    // 6000 s at 333_333 µ$/h: 555_555 µ$ exactly (the stream's R(6000)), though each row rounds
    assert.equal(aws, intervalMicros(RATE, 0, 6000, 1_000_000, 3600));
    assert.equal(aws, 555_555);
    assert.ok(!usage.some((u) => u.cloud === 'local'));
  });

  test('grants draw down earliest expiry first; the statement splits list, credits and net', async () => {
    const credits = new Credits(database.db);
    const late = await credits.add({
      cloud: 'aws',
      amountMicros: 1_000_000,
      startsOn: '2026-01-01',
      expiresOn: '2026-12-31',
      createdBy: 'root',
    });
    const early = await credits.add({
      cloud: 'aws',
      amountMicros: 100_001,
      startsOn: '2026-01-01',
      expiresOn: '2026-06-30',
      note: 'research credits',
      createdBy: 'root',
    });
    // GCP credit from March only: February's GCP hour stays uncovered
    const gcp = await credits.add({
      cloud: 'gcp',
      amountMicros: 50_000_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-03-31',
      createdBy: 'root',
    });
    const s = await credits.summary(now, { alertDays: 30, burnDays: 14 });
    const byId = new Map(s.grants.map((g) => [g.id, g]));
    assert.equal(byId.get(early.id)!.usedMicros, 100_001);
    assert.equal(byId.get(early.id)!.state, 'used_up');
    assert.equal(byId.get(late.id)!.usedMicros, 555_555 - 100_001);
    assert.equal(byId.get(late.id)!.remainingMicros, 1_000_000 - (555_555 - 100_001));
    assert.equal(byId.get(gcp.id)!.usedMicros, 2_000_000);

    const march = await credits.statement('2026-03', now);
    const awsM = march.clouds.find((c) => c.cloud === 'aws')!;
    assert.deepEqual(awsM, {
      cloud: 'aws',
      listMicros: 555_555,
      creditsMicros: 555_555,
      netMicros: 0,
    });
    const gcpM = march.clouds.find((c) => c.cloud === 'gcp')!;
    assert.deepEqual(gcpM, {
      cloud: 'gcp',
      listMicros: 2_000_000,
      creditsMicros: 2_000_000,
      netMicros: 0,
    });
    const feb = await credits.statement('2026-02', now);
    assert.deepEqual(
      feb.clouds.find((c) => c.cloud === 'gcp'),
      {
        cloud: 'gcp',
        listMicros: 2_000_000,
        creditsMicros: 0,
        netMicros: 2_000_000,
      },
    );
    assert.equal(feb.netMicros, feb.listMicros - feb.creditsMicros);
  });

  test('a restart (a new pool and a new reader) and a replayed meter cycle apply nothing twice', async () => {
    const before_ = await new Credits(database.db).summary(now, { alertDays: 30, burnDays: 14 });
    // the meter replays the same rows after a crash: every insert is dropped as a replay
    assert.equal((await new Ledger(database.db).append(rows)).length, 0);
    const second = await pg.open(); // another replica, or the service after a restart
    const afterRestart = await new Credits(second.db).summary(now, { alertDays: 30, burnDays: 14 });
    assert.deepEqual(
      afterRestart.grants.map((g) => [g.id, g.usedMicros]),
      before_.grants.map((g) => [g.id, g.usedMicros]),
    );
    // asked again and again, the draw-down does not move
    const again = await new Credits(second.db).summary(now, { alertDays: 30, burnDays: 14 });
    assert.deepEqual(again.grants, afterRestart.grants);
  });

  test('placement reads what each cloud has left today', async () => {
    const credits = new Credits(database.db);
    const catalog = buildCatalog({ clouds: ['aws', 'gcp', 'azure'], defaultCloud: 'aws' });
    // GCP: 48 $ left until 2026-03-31 covers 8 h of gpu-t4 (4.32 $)
    const p = await credits.placement(catalog, { size: 'gpu-t4' }, now);
    assert.equal(p?.cloud, 'gcp');
    assert.equal(p?.reason, 'on GCP: covered by research credits until 2026-03-31');
    // after that grant's expiry nothing covers the run: the lowest list price again
    const april = await credits.placement(
      catalog,
      { size: 'gpu-t4' },
      new Date('2026-04-02T00:00:00Z'),
    );
    assert.equal(april?.cloud, 'aws');
  });

  test('removing a grant gives its credit back to the other grants of the cloud', async () => {
    const credits = new Credits(database.db);
    const list = await credits.list();
    const early = list.find((g) => g.note === 'research credits')!;
    await credits.remove(early.id);
    const s = await credits.summary(now, { alertDays: 30, burnDays: 14 });
    const late = s.grants.find((g) => g.cloud === 'aws')!;
    assert.equal(late.usedMicros, 555_555);
  });
});

describe('admin credits API', () => {
  let h: Harness;
  let admin: string;
  let user: string;
  before(async () => {
    h = await harness({ database });
    admin = h.token({ name: 'root', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
    user = h.token({ name: 'ada' });
  });
  after(async () => h?.close());

  test('admins record, list and remove grants; bad input is refused with a code', async () => {
    const post = (body: unknown, token = admin) =>
      h.request('/api/v1/admin/credits', {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ok = await post({
      cloud: 'azure',
      amountMicros: 50_000_000_000,
      startsOn: '2026-01-01',
      expiresOn: '2027-03-31',
      note: 'startup programme',
    });
    assert.equal(ok.status, 201);
    const created = (await ok.json()) as { id: number; createdBy: string; remainingMicros: number };
    assert.equal(created.createdBy, 'root');
    assert.equal(created.remainingMicros, 50_000_000_000);

    for (const bad of [
      { cloud: 'local', amountMicros: 1, startsOn: '2026-01-01', expiresOn: '2026-01-02' },
      { cloud: 'aws', amountMicros: 0, startsOn: '2026-01-01', expiresOn: '2026-01-02' },
      { cloud: 'aws', amountMicros: 1.5, startsOn: '2026-01-01', expiresOn: '2026-01-02' },
      { cloud: 'aws', amountMicros: 1, startsOn: '2026-02-30', expiresOn: '2026-03-02' },
      // found by the API fuzzer: an empty day threw in the refinement (a 500)
      { cloud: 'aws', amountMicros: 1, startsOn: '', expiresOn: '2026-03-02' },
      { cloud: 'aws', amountMicros: 1, startsOn: '2026-01-01', expiresOn: 'x' },
      { cloud: 'aws', amountMicros: 1, startsOn: '2026-03-02', expiresOn: '2026-03-01' },
    ]) {
      const res = await post(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(((await res.json()) as { code: string }).code, 'validation_failed');
    }
    assert.equal(
      (
        await post(
          { cloud: 'aws', amountMicros: 1, startsOn: '2026-01-01', expiresOn: '2026-01-02' },
          user,
        )
      ).status,
      403,
    );
    assert.equal((await h.request('/api/v1/admin/credits', { token: user })).status, 403);

    const list = (await (await h.request('/api/v1/admin/credits', { token: admin })).json()) as {
      grants: Array<{ id: number }>;
    };
    assert.ok(list.grants.some((g) => g.id === created.id));

    const csv = await h.request('/api/v1/admin/credits/statement/2026-03?format=csv', {
      token: admin,
    });
    assert.equal(csv.status, 200);
    assert.match(await csv.text(), /^month,cloud,list_micros,credits_micros,net_micros\r\n/);

    const del = await h.request(`/api/v1/admin/credits/${created.id}`, {
      method: 'DELETE',
      token: admin,
    });
    assert.equal(del.status, 200);
    const gone = await h.request(`/api/v1/admin/credits/${created.id}`, {
      method: 'DELETE',
      token: admin,
    });
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { code: string }).code, 'not_found');
  });

  test('any user may ask where a size would be placed', async () => {
    const res = await h.request('/api/v1/placement?size=cpu-small', { token: user });
    assert.equal(res.status, 200);
    const p = (await res.json()) as { cloud: string; reason: string };
    assert.equal(p.cloud, 'local');
    assert.match(p.reason, /^on this machine: the only cloud/);
    const bad = await h.request('/api/v1/placement?size=no-such-size', { token: user });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'unknown_size');
  });
});

describe('placement of a launch that names no cloud (the app, a hub on AWS and GCP)', () => {
  let h: Harness;
  let user: string;
  before(async () => {
    const provisioners = new Map([
      ['cloud=aws', new ScriptedProvisioner()],
      ['cloud=gcp', new ScriptedProvisioner()],
    ]);
    h = await harness({
      database,
      provisioners: provisioners as never,
      env: { NGSCI_CLOUDS: 'aws,gcp', NGSCI_DEFAULT_CLOUD: 'aws' },
    });
    user = h.token({ name: 'placed' });
    // the grants of the tests above are no business of this hub's launches
    const credits = new Credits(database.db);
    for (const g of await credits.list()) await credits.remove(g.id);
  });
  after(async () => h?.close());

  const launch = async (body: Record<string, unknown>) => {
    const res = await h.request('/api/v1/instances', {
      method: 'POST',
      token: user,
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202, await res.clone().text());
    return (await res.json()) as { id: string; cloud: string; placement?: string };
  };
  const stop = async (server: string) => {
    await h.request(`/api/v1/instances/${server}/stop`, { method: 'POST', token: user });
    await eventually(async () => {
      const rows = await h.services.store.list({ user: 'placed', includeEnded: true });
      return rows.every((r) => r.serverName !== server || ['stopped', 'failed'].includes(r.state))
        ? true
        : null;
    }, `server ${server} stopped`);
  };

  test('without credits the lowest list price; with GCP credits covering the run, GCP, and it says why', async () => {
    // gpu-t4: AWS 0.526 $/h, GCP 0.54 $/h
    const cheap = await launch({ server: 'one', size: 'gpu-t4' });
    assert.equal(cheap.cloud, 'aws');
    assert.match(cheap.placement ?? '', /^on AWS: the lowest list price/);
    await stop('one');

    const today = new Date().toISOString().slice(0, 10);
    const credits = new Credits(database.db);
    const g = await credits.add({
      cloud: 'gcp',
      amountMicros: 50_000_000_000,
      startsOn: today,
      expiresOn: '2099-03-31',
      createdBy: 'root',
    });
    try {
      const covered = await launch({ server: 'two', size: 'gpu-t4' });
      assert.equal(covered.cloud, 'gcp');
      assert.equal(covered.placement, 'on GCP: covered by research credits until 2099-03-31');
      await stop('two');

      // a cloud the researcher names is kept, and says nothing about placement
      const named = await launch({ server: 'three', size: 'gpu-t4', cloud: 'aws' });
      assert.equal(named.cloud, 'aws');
      assert.equal(named.placement, undefined);
      await stop('three');

      // the spawn form (the hub's own, through the bridge) with no cloud: placed the same, and the
      // progress event carries the reason
      const res = await h.bridge('/start', {
        method: 'POST',
        body: JSON.stringify({
          user: 'placed',
          server: 'four',
          options: { size: 'gpu-t4' },
          env: {},
          baseUrl: '/user/placed/four/',
        }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const row = (await h.services.store.latest('placed', 'four'))!;
      assert.equal(row.cloud, 'gcp');
      const events = await h.services.store.events(row.id, 0);
      assert.match(events[0]!.message, /\(on GCP: covered by research credits until 2099-03-31\)$/);

      // the spawn form's catalog carries the same choice per size, with its reason
      const cat = (await (await h.bridge('/catalog?user=placed')).json()) as {
        placements: Record<string, { cloud: string; reason: string }>;
      };
      assert.deepEqual(cat.placements['gpu-t4'], {
        cloud: 'gcp',
        region: 'us-central1',
        reason: 'on GCP: covered by research credits until 2099-03-31',
      });
    } finally {
      await credits.remove(g.id);
    }
  });

  test('a size or a pair only GCP offers goes to GCP; a pair is placed by credits like a named size', async () => {
    // gpu-v100 is offered on GCP only, and the hub's default cloud is AWS
    const only = await launch({ server: 'seven', size: 'gpu-v100' });
    assert.equal(only.cloud, 'gcp');
    assert.equal(only.placement, 'on GCP: the only cloud this hub offers gpu-v100 on');
    await stop('seven');
    // the spawn form with a pair only GCP offers (m.v100), and no cloud
    const res = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user: 'placed',
        server: 'eight',
        options: { cpu: 'm', gpu: 'v100' },
        env: {},
        baseUrl: '/user/placed/eight/',
      }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const row = (await h.services.store.latest('placed', 'eight'))!;
    assert.deepEqual([row.sizeId, row.cloud], ['m.v100', 'gcp']);
    await stop('eight');
    // the form's catalog says where those go, so it no longer asks the user to pick the cloud
    const cat = (await (await h.bridge('/catalog?user=placed')).json()) as {
      placements: Record<string, { cloud: string; reason: string }>;
    };
    assert.equal(cat.placements['gpu-v100']?.cloud, 'gcp');
    assert.equal(cat.placements['m.v100']?.cloud, 'gcp');
    assert.equal(cat.placements['gpu-a10g'], undefined); // AWS only: the default cloud anyway

    // a pair on several clouds: with GCP credits covering the run, GCP
    const today = new Date().toISOString().slice(0, 10);
    const credits = new Credits(database.db);
    const g = await credits.add({
      cloud: 'gcp',
      amountMicros: 50_000_000_000,
      startsOn: today,
      expiresOn: '2099-03-31',
      createdBy: 'root',
    });
    try {
      const pair = await launch({ server: 'nine', cpu: 'm', gpu: 't4' });
      assert.equal(pair.cloud, 'gcp');
      assert.equal(pair.placement, 'on GCP: covered by research credits until 2099-03-31');
      await stop('nine');
    } finally {
      await credits.remove(g.id);
    }
  });

  test("the spawn form's Automatic cloud: a spot start with no cloud goes by spot prices, as the catalog said", async () => {
    // gpu-t4 without credits: on demand AWS 0.526 $/h < GCP 0.54 $/h; spot GCP 0.1958 < AWS 0.2104
    const cat = (await (await h.bridge('/catalog?user=placed')).json()) as {
      placements: Record<string, { cloud: string; reason: string }>;
      spotPlacements: Record<string, { cloud: string; reason: string }>;
    };
    assert.equal(cat.placements['gpu-t4']?.cloud, 'aws');
    assert.equal(cat.spotPlacements['gpu-t4']?.cloud, 'gcp');
    assert.match(
      cat.spotPlacements['gpu-t4']!.reason,
      /^on GCP: the lowest list price, \$0\.1958\/h/,
    );
    // what the spawner sends for "Automatic": no cloud (spawner-bridge options.py)
    const res = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user: 'placed',
        server: 'five',
        options: { size: 'gpu-t4', spot: true },
        env: {},
        baseUrl: '/user/placed/five/',
      }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const row = (await h.services.store.latest('placed', 'five'))!;
    assert.deepEqual([row.cloud, row.spot], ['gcp', true]);
    const events = await h.services.store.events(row.id, 0);
    assert.ok(events[0]!.message.endsWith(`(${cat.spotPlacements['gpu-t4']!.reason})`));
    // a cloud the form does not know is refused before anything starts
    const bad = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user: 'placed',
        server: 'six',
        options: { size: 'gpu-t4', cloud: 'auto' },
        env: {},
        baseUrl: '/user/placed/six/',
      }),
    });
    assert.equal(bad.status, 400);
    assert.equal(await h.services.store.latest('placed', 'six'), null);
  });
});

describe('estimates with credit grants', () => {
  let h: Harness;
  let user: string;
  let admin: string;
  before(async () => {
    h = await harness({ database, env: { NGSCI_CLOUDS: 'aws,gcp', NGSCI_DEFAULT_CLOUD: 'aws' } });
    user = h.token({ name: 'planner' });
    admin = h.token({ name: 'root', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
  });
  after(async () => h?.close());
  const post = (body: unknown, token: string) =>
    h.request('/api/v1/estimate', { method: 'POST', token, body: JSON.stringify(body) });

  test("a grant tried in the scenario covers its cloud's instance hours, to the µ$", async () => {
    // 1000 h a month of gpu-t4 on AWS at 0.526 $/h: 526 $ a month, 12 months 6,312 $
    const scenario = {
      months: 12,
      instanceHours: [
        { size: 'gpu-t4', cloud: 'aws', hoursPerMonth: 1000 },
        { size: 'gpu-t4', cloud: 'gcp', hoursPerMonth: 10 },
      ],
      fixedMonthly: [{ name: 'support', monthlyMicros: 1_000_000 }],
      credits: [{ cloud: 'aws', amountMicros: 5_000_000_000 }],
    };
    const res = await post(scenario, user);
    assert.equal(res.status, 200, await res.clone().text());
    const e = (await res.json()) as {
      totalMicros: number;
      credits: { appliedMicros: number; netTotalMicros: number; summary: string };
    };
    assert.equal(e.totalMicros, (526_000_000 + 5_400_000 + 1_000_000) * 12);
    assert.equal(e.credits.appliedMicros, 5_000_000_000);
    assert.equal(e.credits.netTotalMicros, e.totalMicros - 5_000_000_000);
    assert.match(
      e.credits.summary,
      /^with the \$5,000\.00 AWS grant this scenario costs \$1,388\.80 over 12 months \(list \$6,388\.80\)$/,
    );

    // a grant bigger than the cloud's usage covers only that usage; an expired one nothing
    const big = (await (
      await post(
        {
          ...scenario,
          credits: [
            { cloud: 'gcp', amountMicros: 1e12 },
            { cloud: 'aws', amountMicros: 1e9, expiresOn: '2000-01-31' },
          ],
        },
        user,
      )
    ).json()) as { credits: { grants: Array<{ appliedMicros: number }> } };
    assert.deepEqual(
      big.credits.grants.map((g) => g.appliedMicros),
      [5_400_000 * 12, 0],
    );
  });

  test("the hub's recorded grants: admins only", async () => {
    const scenario = {
      months: 1,
      instanceHours: [{ size: 'gpu-t4', cloud: 'aws', hoursPerMonth: 100 }],
      useRecordedCredits: true,
    };
    const refused = await post(scenario, user);
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { code: string }).code, 'forbidden');
    const credits = new Credits(database.db);
    const g = await credits.add({
      cloud: 'aws',
      amountMicros: 10_000_000,
      // from today: the AWS usage of March 2026 above is not this grant's
      startsOn: new Date().toISOString().slice(0, 10),
      expiresOn: '2099-01-01',
      createdBy: 'root',
    });
    try {
      const e = (await (await post(scenario, admin)).json()) as {
        credits: { appliedMicros: number; grants: Array<{ source: string }> };
      };
      assert.equal(e.credits.appliedMicros, 10_000_000);
      assert.deepEqual(
        e.credits.grants.map((x) => x.source),
        ['recorded'],
      );
    } finally {
      await credits.remove(g.id);
    }
  });
});

describe('CreditAlerter', () => {
  test('tells every admin once per grant and kind, at most once an hour', async () => {
    const credits = new Credits(database.db);
    for (const g of await credits.list()) await credits.remove(g.id);
    const g = await credits.add({
      cloud: 'azure',
      amountMicros: 7_000_000,
      startsOn: '2026-01-01',
      expiresOn: '2026-12-05',
      note: 'startup programme',
      createdBy: 'root',
    });
    const sent: Array<{ user: string; title: string; body: string; dedupeKey?: string }> = [];
    const alerter = new CreditAlerter({
      db: database.db,
      notifier: { send: async (n) => void sent.push(n) },
      admins: async () => ['root', 'ops'],
      logger: { warn: () => undefined } as never,
    });
    const now = new Date('2026-11-30T12:00:00Z');
    const alerts = await alerter.run(now);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.kind, 'expires_unused');
    assert.deepEqual(
      sent.map((n) => [n.user, n.dedupeKey]),
      [
        ['root', `credits:${g.id}:expires_unused`],
        ['ops', `credits:${g.id}:expires_unused`],
      ],
    );
    assert.match(sent[0]!.title, /Azure grant will expire unused/);
    assert.match(
      sent[0]!.body,
      /'startup programme' expires on 2026-12-05 with about \$7\.00 unused/,
    );
    // within the hour: not even looked at
    assert.deepEqual(await alerter.run(new Date(now.getTime() + 60_000)), []);
    assert.equal(sent.length, 2);
    await credits.remove(g.id);
  });
});
