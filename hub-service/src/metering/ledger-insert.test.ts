/**
 * The ledger's insert (ledger.ts insertBatch) sends a cycle's rows as one array parameter per column: every value
 * must come back exactly as written — texts that need quoting (quotes, backslashes, commas,
 * braces, the word NULL, control characters, non-ASCII), groups lists of any length, nulls,
 * µ$ beyond 2^31, booleans and millisecond timestamps — and a replayed row is reported as not
 * written. Postgres and PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryDatabase, type Database } from '../db/client.js';
import { seed } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { Ledger, type IntervalRow } from './ledger.js';

const T = new Date('2026-11-30T04:59:59.123Z');
const UUID = '00000000-0000-4000-8000-0000000000aa';

function row(n: number, over: Partial<IntervalRow>): IntervalRow {
  const startedAt = new Date(T.getTime() + n * 15_000);
  return {
    meterKey: `k${n}`,
    kind: 'compute',
    userName: 'ada',
    groups: [],
    instanceId: null,
    serverName: null,
    sizeId: 'cpu-small',
    sizeClass: 'cpu',
    cloud: 'aws',
    region: 'us-east-1',
    spot: false,
    planId: 'private',
    multiplierPpm: 1_000_000,
    rateMicros: 96_000,
    ratePeriodSeconds: 3600,
    startedAt,
    endedAt: new Date(startedAt.getTime() + 15_000),
    billedFrom: 0,
    billedTo: 15,
    activeSeconds: 10,
    idleSeconds: 5,
    final: false,
    amountMicros: 400,
    creditMicros: 0,
    ...over,
  };
}

const ROWS: IntervalRow[] = [
  row(0, { groups: ['lab', 'physics'], instanceId: UUID, serverName: 'default' }),
  row(1, {
    userName: 'o"brien\\x',
    creditMicros: 123,
    groups: ['a"b', 'c\\d', 'e,f', '{g}', 'NULL', '', ' sp ace '],
    serverName: 'my, "server"',
    spot: true,
    final: true,
  }),
  row(2, { userName: 'NULL', groups: ['x'], sizeClass: 'gpu', sizeId: 'gpu-t4' }),
  row(3, {
    kind: 'storage',
    sizeClass: 'storage',
    sizeId: 'home-volume',
    rateMicros: 5_000_000_000_000,
    ratePeriodSeconds: 2_628_000,
    billedTo: 3_000_000_000,
    amountMicros: 9_007_199_254_740,
  }),
  // control characters: JSON would escape them (\n), which an array literal does not read
  row(4, {
    userName: 'line\nbreak\ttab',
    groups: ['new\nline', 'back\\slash', 'é ü 日本'],
    serverName: 'cr\rlf\\n',
  }),
];

function check(name: string, open: () => Promise<Database>) {
  describe(name, () => {
    let database: Database;
    before(async () => {
      database = await open();
    });

    test('every value comes back as written; a replay is not written twice', async () => {
      const ledger = new Ledger(database.db);
      const ids = await ledger.append(ROWS);
      assert.deepEqual(
        [...ids].sort(),
        ROWS.map((r) => `${r.meterKey}@${(r.startedAt as Date).getTime()}`).sort(),
      );
      for (const r of ROWS) {
        const [got] = await ledger.rowsOf(r.meterKey);
        assert.ok(got, r.meterKey);
        const { id: _id, createdAt: _c, ...values } = got;
        assert.deepEqual(values, { ...r, instanceId: r.instanceId ?? null });
      }
      // the same rows again: nothing written, the totals unchanged
      assert.deepEqual(await ledger.append(ROWS), []);
      assert.deepEqual(await ledger.totalsDrift(), []);
      // a batch where one row is new: only that one is reported
      const fresh = row(9, { meterKey: 'k0' });
      assert.deepEqual(await ledger.append([...ROWS, fresh]), [
        `k0@${(fresh.startedAt as Date).getTime()}`,
      ]);
    });

    test('a value that is not an integer is refused before anything is written', async () => {
      const ledger = new Ledger(database.db);
      await assert.rejects(ledger.append([row(20, { meterKey: 'bad', amountMicros: 0.5 })]));
      assert.deepEqual(await ledger.rowsOf('bad'), []);
    });
  });
}

let pg: FreshPostgres;
before(async () => {
  pg = await freshPostgres('ngsci_ledger_insert');
});
after(async () => {
  await pg?.drop();
});

check('on Postgres', async () => {
  const d = await pg.open();
  await seed(d.db);
  return d;
});
check('on PGlite', async () => {
  const d = await openMemoryDatabase();
  await d.migrate();
  return d;
});
