/**
 * The job queue against the real Postgres server at 127.0.0.1:5432 (a fresh database for this
 * file, dropped afterwards) and against PGlite: claims never collide, and the reaper hands back
 * stop jobs and fails start jobs whose worker stopped heartbeating.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { openMemoryDatabase, type Database } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { instances } from '../db/schema.js';
import { JobQueue } from './jobs.js';

let pg: FreshPostgres;
let pgA: Database;
let pgB: Database;
let lite: Database;

before(async () => {
  pg = await freshPostgres('ngsci_jobs');
  // two pools: two service replicas competing for the same queue
  pgA = await pg.open();
  pgB = await pg.open();
  lite = await openMemoryDatabase();
  await lite.migrate();
});

after(async () => {
  await pg?.drop();
  await lite?.close();
});

let n = 0;
async function instanceIn(db: Database): Promise<string> {
  n += 1;
  const [row] = await db.db
    .insert(instances)
    .values({
      userName: `jobs${n}`,
      serverName: 'default',
      sizeId: 'cpu-small',
      cloud: 'aws',
      region: 'us-east-1',
      state: 'provisioning',
      listRatePerHourMicros: 96_000,
      baseUrl: '/',
    })
    .returning();
  return row!.id;
}

describe('job queue on real Postgres', () => {
  test('two workers claiming at the same time never get the same job (SKIP LOCKED)', async () => {
    const a = new JobQueue(pgA.db);
    const b = new JobQueue(pgB.db);
    const total = 40;
    for (let i = 0; i < total; i++)
      await a.enqueue(await instanceIn(pgA), i % 2 ? 'stop' : 'start', 'cloud=aws');
    const claimAll = async (q: JobQueue) => {
      const got: number[] = [];
      for (;;) {
        const batch = await Promise.all([
          q.claim(['cloud=aws']),
          q.claim(['cloud=aws']),
          q.claim(['cloud=aws']),
        ]);
        const ids = batch.filter((j) => j !== null).map((j) => j.id);
        if (!ids.length) return got;
        got.push(...ids);
      }
    };
    const [byA, byB] = await Promise.all([claimAll(a), claimAll(b)]);
    const all = [...byA, ...byB];
    assert.equal(all.length, total, 'every job claimed');
    assert.equal(new Set(all).size, total, 'no job claimed twice');
    assert.ok(byA.length > 0 && byB.length > 0, 'both workers got work');
    const owners = await pgA.db.execute(
      sql`select count(distinct claimed_by)::int as n from jobs where state = 'running'`,
    );
    assert.equal(Number((owners as unknown as Array<{ n: number }>)[0]?.n), 2);
    await pgA.db.execute(sql`update jobs set state = 'done'`);
  });

  test('a worker that stops heartbeating: its stop job goes back to the queue, its start job fails', async () => {
    const dead = new JobQueue(pgA.db);
    const alive = new JobQueue(pgB.db);
    const stopJob = await dead.enqueue(await instanceIn(pgA), 'stop', 'cloud=gcp');
    const startJob = await dead.enqueue(await instanceIn(pgA), 'start', 'cloud=gcp');
    assert.equal((await dead.claim(['cloud=gcp']))?.id, stopJob.id);
    assert.equal((await dead.claim(['cloud=gcp']))?.id, startJob.id);
    // a heartbeat keeps the jobs; silence for longer than the staleness limit loses them
    await dead.heartbeat(stopJob.id);
    assert.deepEqual(await alive.reap(60), { requeued: [], failed: [] });
    await pgA.db.execute(
      sql`update jobs set heartbeat_at = now() - interval '2 minutes' where claimed_by = ${dead.workerId}`,
    );
    const { requeued, failed } = await alive.reap(60);
    assert.deepEqual(
      requeued.map((j) => j.id),
      [stopJob.id],
    );
    assert.deepEqual(
      failed.map((j) => j.id),
      [startJob.id],
    );
    assert.equal(failed[0]?.error, 'worker lost');
    const again = await alive.claim(['cloud=gcp']);
    assert.equal(again?.id, stopJob.id, 'another worker picks the stop up');
    assert.equal(again?.attempts, 2);
    assert.equal(
      (await dead.heartbeat(stopJob.id)).cancelRequested,
      true,
      'the dead worker, if it wakes, learns the job is no longer its own',
    );
  });

  test('cancel: a queued start is cancelled at once, a running one is asked to stop through its heartbeat', async () => {
    const q = new JobQueue(pgA.db);
    const id = await instanceIn(pgA);
    const running = await q.enqueue(id, 'start', 'cloud=azure');
    assert.equal((await q.claim(['cloud=azure']))?.id, running.id);
    const queued = await q.enqueue(id, 'start', 'cloud=azure');
    assert.equal((await q.heartbeat(running.id)).cancelRequested, false);
    await q.cancelStarts(id);
    assert.equal((await q.heartbeat(running.id)).cancelRequested, true);
    const rows = (await pgA.db.execute(
      sql`select id, state from jobs where id = ${queued.id}`,
    )) as unknown as Array<{ state: string }>;
    assert.equal(rows[0]?.state, 'cancelled');
  });
});

describe('failed stops (real Postgres and PGlite)', () => {
  for (const [name, db] of [
    ['real Postgres', () => pgA],
    ['PGlite', () => lite],
  ] as const) {
    test(`${name}: the failure streak, the stops to retry, and no second retry once one is queued`, async () => {
      const q = new JobQueue(db().db);
      const other = new JobQueue((name === 'PGlite' ? lite : pgB).db);
      const id = await instanceIn(db());
      await db().db.execute(sql`update instances set state = 'stopping' where id = ${id}`);
      const first = await q.enqueue(id, 'stop', 'cloud=aws');
      await q.finish(first.id, 'done');
      assert.equal(await q.stopFailures(id), 0);
      const a = await q.enqueue(id, 'stop', 'cloud=aws');
      await q.finish(a.id, 'failed', 'boom');
      const b = await q.enqueue(id, 'stop', 'cloud=aws');
      await q.finish(b.id, 'failed', 'boom');
      assert.equal(await q.stopFailures(id), 2, 'failures since the last successful stop');
      const due = (await q.unfinishedStops()).filter((s) => s.instanceId === id);
      assert.deepEqual(
        due.map((s) => ({ jobId: s.jobId, failures: s.failures, tag: s.tag })),
        [{ jobId: b.id, failures: 2, tag: 'cloud=aws' }],
      );
      const raced = await Promise.all([
        q.retryStop(id, 'cloud=aws', b.id),
        other.retryStop(id, 'cloud=aws', b.id),
      ]);
      assert.equal(raced.filter(Boolean).length >= 1, true);
      assert.equal(await q.retryStop(id, 'cloud=aws', b.id), false, 'already queued');
      assert.deepEqual(
        (await q.unfinishedStops()).filter((s) => s.instanceId === id),
        [],
        'a queued stop is not a stop to retry',
      );
    });
  }
});

describe('job queue on PGlite', () => {
  test('claims in order, once each, only for the asked tags', async () => {
    const q = new JobQueue(lite.db);
    const id = await instanceIn(lite);
    const first = await q.enqueue(id, 'start', 'local');
    await q.enqueue(id, 'stop', 'cloud=aws');
    const second = await q.enqueue(id, 'stop', 'local');
    const got = await Promise.all([q.claim(['local']), q.claim(['local']), q.claim(['local'])]);
    assert.deepEqual(got.map((j) => j?.id ?? null).sort(), [first.id, second.id, null].sort());
    assert.equal(await q.pending(id, 'stop'), true);
  });
});
