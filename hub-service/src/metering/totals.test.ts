/**
 * The ledger's per-day totals (usage_user_days, usage_group_days), which every budget check and
 * month figure reads, recomputed from the rows after each way a write can go: cycles across a
 * day and a month boundary, a replayed cycle from a second replica (also at the same moment), a
 * statement that fails half-way, a transaction rolled back, a restarted service, an admin's hand
 * edit, and rows that existed before the migration. On Postgres (127.0.0.1:5432) and on PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { MIGRATIONS_DIR, openMemoryDatabase, type Database, type Db } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { Ledger, resultRows, type Stream } from './ledger.js';
import { HOUR, STORAGE_MONTH_SECONDS } from './money.js';

// 22:30 on the last day of May: cycles cross midnight, the day and the month
const T0 = new Date('2026-05-31T22:30:00.000Z');
const at = (min: number) => new Date(T0.getTime() + min * 60_000);
const MAY = [new Date('2026-05-01T00:00:00Z'), new Date('2026-06-01T00:00:00Z')] as const;
const JUNE = [new Date('2026-06-01T00:00:00Z'), new Date('2026-07-01T00:00:00Z')] as const;
const JUNE_1 = [new Date('2026-06-01T00:00:00Z'), new Date('2026-06-02T00:00:00Z')] as const;

function compute(id: string, user: string, groups: string[], size: 'cpu' | 'gpu'): Stream {
  return {
    key: id,
    kind: 'compute',
    user,
    groups,
    instanceId: id,
    server: 'default',
    size: size === 'gpu' ? 'gpu-t4' : 'cpu-small',
    sizeClass: size,
    cloud: 'aws',
    region: 'us-east-1',
    spot: false,
    planId: 'private',
    multiplierPpm: 1_000_000,
    rateMicros: size === 'gpu' ? 526_000 : 96_123,
    ratePeriodSeconds: HOUR,
    anchor: T0,
    closeAt: null,
    minimumSeconds: 60,
    lastActivity: at(10),
  };
}

const STREAMS: Stream[] = [
  compute('00000000-0000-4000-8000-00000000000a', 'ada', ['lab', 'physics'], 'gpu'),
  compute('00000000-0000-4000-8000-00000000000b', 'ada', ['lab', 'physics'], 'cpu'),
  // a group named twice on a row counts the row once, as `groups @> array[g]` does
  compute('00000000-0000-4000-8000-00000000000c', 'bob', ['lab', 'lab'], 'cpu'),
  {
    ...compute('home:ada', 'ada', ['lab', 'physics'], 'cpu'),
    kind: 'storage',
    instanceId: null,
    server: null,
    size: 'home-volume',
    sizeClass: 'storage',
    cloud: 'any',
    region: 'any',
    rateMicros: 800_000,
    ratePeriodSeconds: STORAGE_MONTH_SECONDS,
    minimumSeconds: 0,
    lastActivity: null,
  },
];

/** Every figure the totals answer equals the same figure summed over the rows. */
async function assertExact(ledger: Ledger, db: Db, what: string) {
  const user0 = 'ada';
  assert.deepEqual(await ledger.totalsDrift(), [], `${what}: totals differ from the rows`);
  for (const user of ['ada', 'bob']) {
    for (const [from, to] of [MAY, JUNE, JUNE_1]) {
      assert.equal(
        await ledger.userSpend(user, from, to),
        await ledger.userSpendFromRows(user, from, to),
        `${what}: ${user}'s spend ${from.toISOString()}`,
      );
    }
    // GET /budget's one read (day, month, GPU seconds): each the figure asked on its own,
    // whole days from the totals, a range that is not whole days from the rows
    const partial = [new Date('2026-05-31T22:40:00Z'), new Date('2026-06-01T00:10:00Z')] as const;
    for (const windows of [
      [JUNE_1, JUNE],
      [MAY, JUNE_1],
      [partial, JUNE],
    ] as const) {
      assert.deepEqual(
        await ledger.userSums(user, windows, JUNE),
        {
          spend: [
            await ledger.userSpendFromRows(user, ...windows[0]),
            await ledger.userSpendFromRows(user, ...windows[1]),
          ],
          gpuSeconds: await ledger.gpuSeconds(user, ...JUNE),
        },
        `${what}: ${user}'s sums of one read`,
      );
    }
  }
  // the usage chart: whole days from the totals, a partial first and last day from the rows
  for (const g of ['day', 'month'] as const) {
    for (const [from, to] of [
      [new Date('2026-05-31T10:17:00Z'), new Date('2026-06-01T03:00:00Z')],
      [MAY[0], JUNE[1]],
    ] as const) {
      assert.deepEqual(
        await ledger.series(user0, from, to, g),
        await ledger.seriesFromRows(user0, from, to, g),
        `${what}: usage by ${g}`,
      );
    }
  }
  const rowsOf = async (q: ReturnType<typeof sql>) =>
    Number(resultRows<{ s: string | null }>(await db.execute(q))[0]?.s ?? 0);
  for (const g of ['lab', 'physics']) {
    assert.equal(
      await ledger.groupSpend(g, ...JUNE),
      await rowsOf(
        sql`select sum(amount_micros) as s from usage_intervals where groups @> array[${g}]::text[]
          and started_at >= ${JUNE[0].toISOString()} and started_at < ${JUNE[1].toISOString()}`,
      ),
      `${what}: group ${g}`,
    );
  }
  assert.equal(
    await ledger.gpuSeconds('ada', ...JUNE),
    await rowsOf(
      sql`select sum(billed_to - billed_from) as s from usage_intervals where user_name = 'ada'
        and size_class = 'gpu' and started_at >= ${JUNE[0].toISOString()}`,
    ),
    `${what}: GPU seconds`,
  );
}

function scenario(
  name: string,
  open: () => Promise<{ first: Database; second: () => Promise<Database> }>,
) {
  describe(name, () => {
    let first: Database;
    let second: () => Promise<Database>;
    let ledger: Ledger;
    before(async () => {
      ({ first, second } = await open());
      ledger = new Ledger(first.db);
    });

    test('cycles across midnight and a month boundary: every total is the sum of its rows', async () => {
      for (const min of [5, 20, 29, 31, 45, 75, 95]) await ledger.accrue(STREAMS, at(min), 300);
      await assertExact(ledger, first.db, 'after cycles');
      const may = await ledger.userSpend('ada', ...MAY);
      const june = await ledger.userSpend('ada', ...JUNE);
      assert.ok(may > 0 && june > 0, 'spend on both sides of the boundary');
      // the months list reads the totals too: one entry per month, newest first
      const months = await ledger.months('ada');
      assert.deepEqual(
        months.map((m) => [m.month, m.totalMicros]),
        [
          ['2026-06', june],
          ['2026-05', may],
        ],
      );
    });

    test('a replayed cycle (a second replica, a restarted service) adds nothing', async () => {
      const before_ = await ledger.userSpend('ada', ...JUNE);
      // a fresh ledger knows no stream ends: it reads them, as after a restart
      const other = new Ledger((await second()).db);
      const again = await other.accrue(STREAMS, at(95), 300);
      assert.equal(again.written, 0);
      // an older cycle replayed against newer rows collides with what is there
      const stale = new Ledger((await second()).db);
      await stale.append((await Promise.all(STREAMS.map((s) => ledger.rowsOf(s.key)))).flat());
      assert.equal(await ledger.userSpend('ada', ...JUNE), before_);
      await assertExact(ledger, first.db, 'after replays');
    });

    test('two replicas writing the same cycle at once: each row and its totals once', async () => {
      const a = new Ledger((await second()).db);
      const b = new Ledger((await second()).db);
      const [ra, rb] = await Promise.all([
        a.accrue(STREAMS, at(130), 300),
        b.accrue(STREAMS, at(130), 300),
      ]);
      assert.ok(ra.written + rb.written > 0);
      await assertExact(ledger, first.db, 'after concurrent writers');
    });

    test('a statement that fails half-way and a rolled-back transaction add nothing', async () => {
      const before_ = await ledger.userSpend('ada', ...JUNE);
      const fresh = new Ledger(first.db);
      const rows = STREAMS.map((s) => ({
        meterKey: `${s.key}-x`,
        kind: s.kind,
        userName: s.user,
        groups: s.groups,
        sizeId: s.size,
        sizeClass: s.sizeClass,
        cloud: s.cloud,
        region: s.region,
        planId: s.planId,
        multiplierPpm: s.multiplierPpm,
        rateMicros: s.rateMicros,
        ratePeriodSeconds: s.ratePeriodSeconds,
        startedAt: at(150),
        endedAt: at(151),
        billedFrom: 0,
        billedTo: 60,
        amountMicros: 1_000,
      }));
      // the last row breaks a NOT NULL: the whole statement, its rows and its totals, is undone
      const broken = [
        ...rows,
        { ...rows[0]!, meterKey: 'broken', amountMicros: null as unknown as number },
      ];
      await assert.rejects(fresh.append(broken));
      await assert.rejects(
        first.db.transaction(async (tx) => {
          await new Ledger(tx as unknown as Db).append(rows);
          throw new Error('rolled back');
        }),
        /rolled back/,
      );
      assert.equal(await ledger.userSpend('ada', ...JUNE), before_);
      await assertExact(ledger, first.db, 'after a failed write');
      // the same rows written for real count once
      assert.equal((await fresh.append(rows)).length, rows.length);
      await assertExact(ledger, first.db, 'after the retry');
    });

    test('an admin edits or deletes rows by hand: the totals follow', async () => {
      await first.db.execute(
        sql`update usage_intervals set amount_micros = amount_micros + 7, user_name = 'bob'
          where meter_key = ${STREAMS[1]!.key} and started_at >= ${JUNE[0].toISOString()}`,
      );
      await first.db.execute(
        sql`delete from usage_intervals where meter_key = ${STREAMS[0]!.key} and started_at < ${JUNE[0].toISOString()}`,
      );
      await assertExact(ledger, first.db, 'after hand edits');
    });

    test('rows written before the totals existed are summed by the migration', async () => {
      // rows that bypass the triggers, as rows written before this version did
      await first.db.transaction(async (tx) => {
        await tx.execute(sql`alter table usage_intervals disable trigger user`);
        await new Ledger(tx as unknown as Db).accrue(STREAMS, at(200), 300);
        await tx.execute(sql`alter table usage_intervals enable trigger user`);
      });
      assert.notDeepEqual(await ledger.totalsDrift(), [], 'the rows are ahead of the totals');
      // the migration again, as an upgrade runs it (one transaction)
      const file = readFileSync(join(MIGRATIONS_DIR, '0009_usage_totals.sql'), 'utf8');
      await first.db.transaction(async (tx) => {
        for (const stmt of file.split('--> statement-breakpoint')) await tx.execute(sql.raw(stmt));
      });
      await assertExact(ledger, first.db, 'after the migration');
      // and the triggers it made keep them from then on
      await ledger.accrue(STREAMS, at(230), 300);
      await assertExact(ledger, first.db, 'after the migration and a cycle');
    });
  });
}

let pg: FreshPostgres;
scenario('on Postgres', async () => {
  pg = await freshPostgres('ngsci_totals');
  return { first: await pg.open(), second: () => pg.open() };
});
let lite: Database;
scenario('on PGlite', async () => {
  lite = await openMemoryDatabase();
  await lite.migrate();
  return { first: lite, second: async () => lite };
});
after(async () => {
  await pg?.drop();
  await lite?.close();
});
