/**
 * The meter's incremental read of active instances (instance-snapshot.ts) answers exactly what a
 * full read answers after every change: inserts, state changes into and out of the active states,
 * a transaction that began before the last read but commits after a later one (out of order), a
 * rolled-back change, and a row deleted by hand (gone at the next full read). Postgres and PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { sql } from 'drizzle-orm';
import { ACTIVE_STATES } from '@ngsci/contract';
import { openMemoryDatabase, type Database } from '../db/client.js';
import { instances } from '../db/schema.js';
import { InstanceStore } from '../instances/store.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { InstanceSnapshot } from './instance-snapshot.js';

const T = new Date('2026-11-30T08:00:00Z');

async function addInstance(database: Database, user: string, state: string): Promise<string> {
  const id = randomUUID();
  await database.db.insert(instances).values({
    id,
    userName: user,
    serverName: 'default',
    sizeId: 'cpu-small',
    cloud: 'local',
    region: 'localhost',
    spot: false,
    state,
    listRatePerHourMicros: 96_000,
    baseUrl: `/user/${user}/`,
    targetUrl: `http://127.0.0.1:1/user/${user}/`,
    createdAt: T,
    readyAt: state === 'running' ? T : null,
  });
  return id;
}

const setState = (database: Database, id: string, state: string) =>
  database.db.execute(sql`update instances set state = ${state} where id = ${id}`);

/** the incremental read, compared with a full read, both sorted by id */
async function same(snap: InstanceSnapshot, store: InstanceStore, what: string) {
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
  const got = (await snap.read()).sort(byId);
  const want = (await store.inStates([...ACTIVE_STATES])).sort(byId);
  assert.deepEqual(got, want, what);
  return got;
}

function check(name: string, open: () => Promise<Database>, direct?: () => postgres.Sql) {
  describe(name, () => {
    let database: Database;
    before(async () => {
      database = await open();
    });

    test('every read equals a full read; only changed rows are read again', async () => {
      const store = new InstanceStore(database.db);
      const snap = new InstanceSnapshot(database.db, ACTIVE_STATES, 1000);
      const a = await addInstance(database, 'ada', 'running');
      const b = await addInstance(database, 'bo', 'starting');
      await addInstance(database, 'cy', 'stopped');
      await same(snap, store, 'first read');
      assert.equal(snap.lastRead.full, true);
      assert.equal(snap.lastRead.rows, 2);
      await same(snap, store, 'nothing changed');
      assert.equal(snap.lastRead.full, false);
      // how many rows an incremental read takes again depends on every transaction open on the
      // server (another test's keeps the xmin back: more rows, still the same answer), so the
      // counts are checked where this test is alone: PGlite
      if (!direct) assert.equal(snap.lastRead.rows, 0);
      await setState(database, b, 'running');
      const c = await addInstance(database, 'di', 'running');
      await same(snap, store, 'one changed, one new');
      assert.equal(snap.lastRead.full, false);
      if (!direct) assert.equal(snap.lastRead.rows, 2);
      await setState(database, a, 'stopped');
      const rows = await same(snap, store, 'one left the active states');
      assert.deepEqual(rows.map((r) => r.id).sort(), [b, c].sort());
      // a change rolled back is never seen
      await database.db
        .transaction(async (tx) => {
          await tx.execute(sql`update instances set state = 'stopping' where id = ${b}`);
          throw new Error('rolled back');
        })
        .catch(() => {});
      await same(snap, store, 'after a rollback');
    });

    if (direct)
      test('a transaction that commits after a later one is still seen', async () => {
        const store = new InstanceStore(database.db);
        const snap = new InstanceSnapshot(database.db, ACTIVE_STATES, 1000);
        const a = await addInstance(database, 'eve', 'running');
        const b = await addInstance(database, 'fay', 'running');
        await same(snap, store, 'first read');
        const slow = direct();
        try {
          let commit!: () => void;
          const committed = new Promise<void>((r) => (commit = r));
          let began!: () => void;
          const begun = new Promise<void>((r) => (began = r));
          // an older transaction changes a and stays open...
          const older = slow.begin(async (tx) => {
            await tx`update instances set state = 'stopping' where id = ${a}`;
            began();
            await committed;
          });
          await begun;
          // ...while a newer one changes b and commits, and the meter reads in between
          await setState(database, b, 'stopping');
          await same(snap, store, 'the newer change seen, the older not yet committed');
          commit();
          await older;
          const rows = await same(snap, store, 'the older change, committed last, is seen');
          assert.equal(rows.find((r) => r.id === a)?.state, 'stopping');
        } finally {
          await slow.end();
        }
      });

    test('a row deleted by hand leaves at the next full read', async () => {
      const store = new InstanceStore(database.db);
      const snap = new InstanceSnapshot(database.db, ACTIVE_STATES, 3);
      const gone = await addInstance(database, 'gil', 'running');
      await same(snap, store, 'full read');
      await same(snap, store, 'incremental read');
      await database.db.execute(sql`delete from instances where id = ${gone}`);
      // incremental: a deletion stamps nothing, so the row is still there...
      assert.ok((await snap.read()).some((r) => r.id === gone));
      assert.equal(snap.lastRead.full, false);
      // ...until the next full read (every third here)
      await same(snap, store, 'the next full read');
      assert.equal(snap.lastRead.full, true);
      assert.ok(!(await snap.read()).some((r) => r.id === gone));
    });
  });
}

let pg: FreshPostgres;
before(async () => {
  pg = await freshPostgres('ngsci_instance_snapshot');
});
after(async () => {
  await pg?.drop();
});

check(
  'on Postgres',
  () => pg.open(),
  () => postgres(pg.url, { max: 1, onnotice: () => {} }),
);
check('on PGlite', async () => {
  const d = await openMemoryDatabase();
  await d.migrate();
  return d;
});
