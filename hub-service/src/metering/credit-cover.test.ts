/**
 * Credits that also lower researchers' charges (credit-cover.ts), on the real Postgres server:
 * each row's coverage, decided as the meter writes it, is recomputed from the ledger by the
 * credit replay and compared row by row; charges are recomputed from list, coverage and price;
 * the per-day totals still equal the rows; two writers at once, a cycle written twice and a
 * restart never spend a grant twice; and the admin setting over the API.
 */
import { grantRow } from '../testing/grant-row.js';
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { seed } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import { Ledger, resultRows, type IntervalRow } from './ledger.js';
import { intervalMicros } from './money.js';
import { Credits, dayOf, drawDownInOrder, usageInOrder, type GrantRow } from './credits.js';
import {
  chargedMicros,
  coverRows,
  CreditCover,
  rowListMicros,
  writeLowerCharges,
} from './credit-cover.js';

const grant = grantRow;

/** A compute row of stream `key`, `seconds` long from `start`, billed on from `billedFrom`. */
function row(opts: {
  key: string;
  cloud: string;
  start: string;
  seconds?: number;
  billedFrom?: number;
  rate: number;
  ppm: number;
  user?: string;
}): IntervalRow {
  const seconds = opts.seconds ?? 3600;
  const billedFrom = opts.billedFrom ?? 0;
  const startedAt = new Date(opts.start);
  return {
    meterKey: opts.key,
    kind: 'compute',
    userName: opts.user ?? 'ada',
    groups: ['lab'],
    instanceId: null,
    serverName: 'default',
    sizeId: 'gpu-t4',
    sizeClass: 'gpu',
    cloud: opts.cloud,
    region: 'r',
    spot: false,
    planId: 'p',
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

/** `n` rows of 1000 s of one stream, from `start`. */
const stream = (key: string, cloud: string, start: string, n: number, rate: number, ppm: number) =>
  Array.from({ length: n }, (_, i) =>
    row({
      key,
      cloud,
      start: new Date(Date.parse(start) + i * 1000_000).toISOString(),
      seconds: 1000,
      billedFrom: i * 1000,
      rate,
      ppm,
    }),
  );

describe('chargedMicros and coverRows (pure)', () => {
  test('the researcher pays the uncovered share of the price, rounded half up', () => {
    assert.equal(chargedMicros(1_500_000, 1_000_000, 0), 1_500_000);
    assert.equal(chargedMicros(1_500_000, 1_000_000, 1_000_000), 0);
    assert.equal(chargedMicros(1_500_000, 1_000_000, 400_000), 900_000);
    // 7 · 2/3 = 4.67 -> 5; a free plan stays free
    assert.equal(chargedMicros(7, 3, 1), 5);
    assert.equal(chargedMicros(0, 3, 1), 0);
    // no float: a price near 2^53 keeps every µ$
    assert.equal(chargedMicros(9_000_000_000_000_001, 2, 1), 4_500_000_000_000_001);
  });

  test('row by row takes what the replay over the same rows takes, and charges the rest', () => {
    const grants = [
      grant(1, 'aws', 700_000, '2026-03-01', '2026-03-02'),
      grant(2, 'aws', 5_000_000, '2026-03-01', '2026-12-31'),
    ];
    const rows = [
      ...stream('a', 'aws', '2026-03-01T20:00:00Z', 10, 1_234_567, 1_500_000),
      ...stream('b', 'local', '2026-03-01T20:00:00Z', 2, 1_000_000, 1_000_000),
    ];
    const used = new Map<number, number>();
    const covered = coverRows(grants, used, rows);
    const replay = drawDownInOrder(
      grants,
      rows.map((r) => ({
        cloud: r.cloud,
        day: dayOf(r.startedAt as Date),
        listMicros: rowListMicros(r),
      })),
    );
    assert.deepEqual(
      covered.map((r) => r.creditMicros),
      replay.taken,
    );
    assert.deepEqual(used, replay.used);
    // grant 1 (earliest expiry) first, then 2; 10 rows of 1000 s at 1.234567 $/h: 3.429353 $
    assert.equal(used.get(1), 700_000);
    assert.equal(used.get(2), intervalMicros(1_234_567, 0, 10_000, 1_000_000, 3600) - 700_000);
    for (const [i, r] of covered.entries()) {
      const list = rowListMicros(rows[i]!);
      assert.equal(r.amountMicros, chargedMicros(rows[i]!.amountMicros, list, r.creditMicros!));
      if (r.cloud === 'local') assert.equal(r.amountMicros, rows[i]!.amountMicros);
    }
  });
});

// ---- with Postgres

let pg: FreshPostgres;
let database: Database;

before(async () => {
  pg = await freshPostgres('credit_cover');
  database = await pg.open();
  await seed(database.db);
});
after(async () => pg?.drop());

interface Stored {
  id: number;
  meter_key: string;
  cloud: string;
  started_at: string | Date;
  rate_micros: string | number;
  billed_from: string | number;
  billed_to: string | number;
  rate_period_seconds: number;
  multiplier_ppm: number;
  amount_micros: string | number;
  credit_micros: string | number;
}

async function stored(): Promise<Stored[]> {
  return resultRows<Stored>(
    await database.db.execute(sql`select * from usage_intervals order by id`),
  );
}

/**
 * Recomputes every row from the ledger alone: the replay's draw-down, one piece per row in the
 * order written, must give each row exactly the credit it recorded, and its charge must be the
 * uncovered share of its price. Answers the rows and the replay.
 */
async function recompute(grants: GrantRow[]) {
  const rows = await stored();
  const pieces = rows.map((r) => ({
    cloud: ['aws', 'gcp', 'azure'].includes(r.cloud) ? r.cloud : '',
    day: dayOf(new Date(r.started_at)),
    listMicros: intervalMicros(
      Number(r.rate_micros),
      Number(r.billed_from),
      Number(r.billed_to),
      1_000_000,
      r.rate_period_seconds,
    ),
  }));
  const replay = drawDownInOrder(grants, pieces);
  for (const [i, r] of rows.entries()) {
    assert.equal(Number(r.credit_micros), replay.taken[i], `row ${r.id} credit`);
    const price = intervalMicros(
      Number(r.rate_micros),
      Number(r.billed_from),
      Number(r.billed_to),
      r.multiplier_ppm,
      r.rate_period_seconds,
    );
    assert.equal(
      Number(r.amount_micros),
      chargedMicros(price, pieces[i]!.listMicros, replay.taken[i]!),
      `row ${r.id} charge`,
    );
  }
  return { rows, replay };
}

describe('credit coverage as the ledger is written (Postgres)', () => {
  const now = new Date('2026-03-20T12:00:00Z');
  const credits = () => new Credits(database.db);

  beforeEach(async () => {
    // the ledger's delete trigger takes the rows out of the per-day totals too
    for (const table of ['usage_intervals', 'credit_grants', 'credit_settings'])
      await database.db.execute(sql.raw(`delete from ${table}`));
  });

  test('off (the default): rows record no coverage and researchers pay list price times plan', async () => {
    await credits().add({
      cloud: 'aws',
      amountMicros: 50_000_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-12-31',
      createdBy: 'root',
    });
    const ledger = new Ledger(database.db, new CreditCover(database.db));
    const rows = stream('a', 'aws', '2026-03-02T00:00:00Z', 4, 2_000_000, 1_500_000);
    await ledger.append(rows);
    const got = await stored();
    assert.deepEqual(
      got.map((r) => [Number(r.amount_micros), Number(r.credit_micros)]),
      rows.map((r) => [r.amountMicros, 0]),
    );
    // the organisation's replay still draws the grant down
    const s = await credits().statement('2026-03', now);
    assert.equal(s.creditsMicros, intervalMicros(2_000_000, 0, 4000, 1_000_000, 3600));
  });

  test('on: each row records the credit the replay gives it and is charged the rest; every sum follows', async () => {
    await writeLowerCharges(database.db, true, 'root');
    const small = await credits().add({
      cloud: 'aws',
      amountMicros: 1_000_001,
      startsOn: '2026-03-01',
      expiresOn: '2026-03-10',
      createdBy: 'root',
    });
    const big = await credits().add({
      cloud: 'aws',
      amountMicros: 2_500_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-12-31',
      createdBy: 'root',
    });
    const gcp = await credits().add({
      cloud: 'gcp',
      amountMicros: 10_000_000,
      startsOn: '2026-04-01',
      expiresOn: '2026-04-30',
      createdBy: 'root',
    });
    const ledger = new Ledger(database.db, new CreditCover(database.db));
    // three cycles, streams interleaved as the meter writes them; an odd rate and a 1.5 plan;
    // GCP usage in March (before its grant) and local usage are never covered
    const a = stream('a', 'aws', '2026-03-09T22:00:00Z', 9, 1_234_567, 1_500_000);
    const b = stream('b', 'aws', '2026-03-09T22:00:00Z', 9, 777_777, 1_000_000);
    const g = stream('g', 'gcp', '2026-03-09T22:00:00Z', 9, 2_000_000, 1_000_000);
    const l = stream('l', 'local', '2026-03-09T22:00:00Z', 9, 2_000_000, 1_000_000);
    for (let c = 0; c < 3; c++)
      await ledger.append([a, b, g, l].flatMap((s) => s.slice(c * 3, c * 3 + 3)));
    const grants = await credits().list();
    const { rows, replay } = await recompute(grants);
    const covered = rows.reduce((s, r) => s + Number(r.credit_micros), 0);
    assert.ok(covered > 0);
    // every grant of the cloud used up (list cost exceeds them), none beyond its amount
    assert.equal(replay.used.get(small.id), 1_000_001);
    assert.equal(replay.used.get(big.id), 2_500_000);
    assert.equal(replay.used.get(gcp.id), 0);
    assert.equal(covered, 3_500_001);
    // the organisation's statement (the replay) applies exactly what the rows recorded
    const s = await credits().statement('2026-03', now);
    assert.equal(s.creditsMicros, covered);
    // researchers' spend is the rows' sum: the per-day totals agree with them
    assert.deepEqual(await new Ledger(database.db).totalsDrift(), []);
    const spend = await new Ledger(database.db).userSpend(
      'ada',
      new Date('2026-03-01T00:00:00Z'),
      new Date('2026-04-01T00:00:00Z'),
    );
    assert.equal(
      spend,
      rows.reduce((s, r) => s + Number(r.amount_micros), 0),
    );
    const full = [...a, ...b, ...g, ...l].reduce((s, r) => s + r.amountMicros, 0);
    assert.ok(spend < full, `${spend} < ${full}`);
  });

  test('two writers at once, a cycle written twice and a restart never spend a grant twice', async () => {
    await writeLowerCharges(database.db, true, 'root');
    await credits().add({
      cloud: 'azure',
      amountMicros: 2_000_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-03-31',
      createdBy: 'root',
    });
    // two replicas (a pool each) in a leadership hand-over write different streams at once
    const other = (await pg.open()).db;
    const one = new Ledger(database.db, new CreditCover(database.db));
    const two = new Ledger(other, new CreditCover(other));
    await Promise.all([database.db.execute(sql`select 1`), other.execute(sql`select 1`)]);
    const x = stream('x', 'azure', '2026-03-05T00:00:00Z', 6, 1_800_000, 1_000_000);
    const y = stream('y', 'azure', '2026-03-05T00:00:00Z', 6, 1_800_000, 1_000_000);
    await Promise.all([one.append(x.slice(0, 3)), two.append(y.slice(0, 3))]);
    await Promise.all([one.append(y.slice(0, 3)), two.append(x.slice(0, 3))]); // replays
    // a restart: a new writer with nothing remembered carries on
    const three = new Ledger(other, new CreditCover(other));
    await Promise.all([three.append(x.slice(3)), one.append(y.slice(3))]);
    const { rows, replay } = await recompute(await credits().list());
    assert.equal(rows.length, 12);
    const covered = rows.reduce((s, r) => s + Number(r.credit_micros), 0);
    // 12 rows of 1000 s at 1.8 $/h: 6 $ of list cost, 2 $ of credit (each writer on its own
    // would have given its first three rows 1.5 $)
    assert.equal(covered, 2_000_000);
    assert.equal(
      [...replay.used.values()].reduce((s, u) => s + u, 0),
      2_000_000,
    );
    assert.deepEqual(await new Ledger(database.db).totalsDrift(), []);
  });

  test('a cycle that repeats a written row decides the rest after it as the replay does', async () => {
    await writeLowerCharges(database.db, true, 'root');
    await credits().add({
      cloud: 'aws',
      amountMicros: 1_200_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-03-31',
      createdBy: 'root',
    });
    const ledger = new Ledger(database.db, new CreditCover(database.db));
    const s = stream('s', 'aws', '2026-03-05T00:00:00Z', 4, 1_800_000, 1_000_000);
    const t = stream('t', 'aws', '2026-03-05T00:00:00Z', 4, 1_800_000, 1_000_000);
    await ledger.append(s.slice(0, 1));
    // the written row (which took credit) comes again ahead of new rows: it is dropped, and the
    // new rows must not be decided as if it had taken credit a second time
    const ok = await ledger.append([s[0]!, t[0]!, t[1]!]);
    assert.equal(ok.length, 2);
    const { rows } = await recompute(await credits().list());
    assert.equal(
      rows.reduce((a, r) => a + Number(r.credit_micros), 0),
      1_200_000,
    );
  });

  test('turned off, rows are charged in full again; rows written before keep their charge', async () => {
    await writeLowerCharges(database.db, true, 'root');
    await credits().add({
      cloud: 'gcp',
      amountMicros: 100_000_000,
      startsOn: '2026-03-01',
      expiresOn: '2026-03-31',
      createdBy: 'root',
    });
    let clock = 0;
    const ledger = new Ledger(database.db, new CreditCover(database.db, { clock: () => clock }));
    const s = stream('s', 'gcp', '2026-03-05T00:00:00Z', 4, 1_800_000, 1_000_000);
    await ledger.append(s.slice(0, 2));
    await writeLowerCharges(database.db, false, 'root');
    clock += 11_000; // the setting is read again after 10 s
    await ledger.append(s.slice(2));
    const rows = await stored();
    assert.deepEqual(
      rows.map((r) => Number(r.amount_micros)),
      [0, 0, s[2]!.amountMicros, s[3]!.amountMicros],
    );
    assert.deepEqual(
      rows.map((r) => Number(r.credit_micros)),
      [500_000, 500_000, 0, 0],
    );
  });
});

describe('the replay in write order (Postgres)', () => {
  test('its pieces are the runs of each cloud and day in row-id order, late rows included', async () => {
    for (const table of ['usage_intervals', 'credit_grants', 'credit_settings'])
      await database.db.execute(sql.raw(`delete from ${table}`));
    const ledger = new Ledger(database.db);
    const at = (key: string, cloud: string, start: string) =>
      row({ key, cloud, start, seconds: 600, rate: 1_000_003 + key.length, ppm: 1_000_000 });
    // cycles around two midnights: streams interleaved, rows of a day written after the next
    // day's (a stream written late, a stop closed late), three clouds and local
    const cycles: IntervalRow[][] = [
      [at('a', 'aws', '2026-03-01T23:40:00Z'), at('g', 'gcp', '2026-03-01T23:40:00Z')],
      [at('a2', 'aws', '2026-03-02T00:00:00Z'), at('b', 'aws', '2026-03-01T23:50:00Z')],
      [at('a3', 'aws', '2026-03-02T00:10:00Z'), at('z', 'azure', '2026-03-01T12:00:00Z')],
      [at('c', 'aws', '2026-03-01T23:55:00Z'), at('l', 'local', '2026-03-01T23:55:00Z')],
      [at('a4', 'aws', '2026-03-02T00:20:00Z'), at('g2', 'gcp', '2026-03-02T00:20:00Z')],
      [at('a5', 'aws', '2026-03-02T10:00:00Z'), at('a6', 'aws', '2026-03-02T11:00:00Z')],
      [at('d', 'aws', '2026-03-02T23:59:00Z'), at('e', 'aws', '2026-03-03T00:01:00Z')],
      [at('f', 'aws', '2026-03-02T23:58:00Z'), at('h', 'aws', '2026-03-03T05:00:00Z')],
      [at('i', 'aws', '2026-03-03T06:00:00Z'), at('g3', 'gcp', '2026-03-01T22:00:00Z')],
    ];
    for (const c of cycles) await ledger.append(c);
    const naive = async (afterId: number) => {
      const all = (await stored()).filter(
        (r) => Number(r.id) > afterId && ['aws', 'gcp', 'azure'].includes(r.cloud),
      );
      const runs: Array<{ cloud: string; day: string; listMicros: number }> = [];
      const open = new Map<string, { cloud: string; day: string; listMicros: number }>();
      for (const r of all) {
        const day = dayOf(new Date(r.started_at));
        const list = intervalMicros(
          Number(r.rate_micros),
          Number(r.billed_from),
          Number(r.billed_to),
          1_000_000,
          r.rate_period_seconds,
        );
        const run = open.get(r.cloud);
        if (run && run.day === day) run.listMicros += list;
        else {
          const next = { cloud: r.cloud, day, listMicros: list };
          runs.push(next);
          open.set(r.cloud, next);
        }
      }
      return runs;
    };
    const got = await usageInOrder(database.db, '2026-03-01');
    assert.deepEqual(got.pieces, await naive(0));
    assert.ok(got.pieces.filter((p) => p.cloud === 'aws').length >= 5, 'late rows make runs');
    const ids = (await stored()).map((r) => Number(r.id));
    assert.equal(got.top, Math.max(...ids));
    // read on from a row: only what was written after it
    const mid = ids[7]!;
    assert.deepEqual((await usageInOrder(database.db, '2026-03-01', mid)).pieces, await naive(mid));
  });
});

describe('the lower-charges setting over the API', () => {
  let h: Harness;
  let admin: string;
  let user: string;
  before(async () => {
    h = await harness({ database });
    admin = h.token({ name: 'root', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
    user = h.token({ name: 'ada' });
  });
  after(async () => h?.close());

  test('admins read and set it; others are refused; bad input is refused with a code', async () => {
    await database.db.execute(sql`truncate credit_settings`);
    const put = (body: unknown, token = admin) =>
      h.request('/api/v1/admin/credits/settings', {
        method: 'PUT',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const first = await h.request('/api/v1/admin/credits/settings', { token: admin });
    assert.equal(first.status, 200);
    assert.equal(((await first.json()) as { lowerCharges: boolean }).lowerCharges, false);
    const on = await put({ lowerCharges: true });
    assert.equal(on.status, 200);
    const saved = (await on.json()) as { lowerCharges: boolean; updatedBy: string };
    assert.deepEqual([saved.lowerCharges, saved.updatedBy], [true, 'root']);
    const list = (await (await h.request('/api/v1/admin/credits', { token: admin })).json()) as {
      lowerCharges: boolean;
    };
    assert.equal(list.lowerCharges, true);
    for (const bad of [{}, { lowerCharges: 'yes' }, { lowerCharges: true, extra: 1 }]) {
      const res = await put(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(((await res.json()) as { code: string }).code, 'validation_failed');
    }
    assert.equal((await put({ lowerCharges: false }, user)).status, 403);
    assert.equal((await h.request('/api/v1/admin/credits/settings', { token: user })).status, 403);
    const off = await put({ lowerCharges: false });
    assert.equal(((await off.json()) as { lowerCharges: boolean }).lowerCharges, false);
  });
});
