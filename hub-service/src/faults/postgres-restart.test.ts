/**
 * Faults: Postgres restarted under the service. A private cluster (never the shared server) sits
 * behind a proxy that freezes the exact query to interrupt: a meter cycle's ledger insert before
 * it reaches Postgres and after it committed, and a job claim whose answer is lost. The ledger is
 * then recomputed row by row (no gap, no overlap, no second twice, the missing time billed by the
 * next cycle), the meter keeps its lock and its loop without a restart of its own, and a job runs
 * exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { and, eq } from 'drizzle-orm';
import postgres from 'postgres';
import { openDatabase, seed, type Database } from '../db/client.js';
import { jobs } from '../db/schema.js';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { startPrivatePostgres, type PrivatePostgres } from '../testing/private-postgres.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import type { ProvisionContext, ProvisionRequest } from '../provisioners/types.js';
import type { Meter } from '../metering/meter.js';
import { cumulativeMicros, HOUR } from '../metering/money.js';
import {
  assertContiguous,
  ledgerOf,
  meteredInstance,
  startMeter,
} from '../testing/fault-metering.js';
import { PgProxy } from '../testing/pg-proxy.js';

/** A provisioner whose machines, once booting, wait for the test to let them come up. */
class GatedProvisioner extends ScriptedProvisioner {
  gate: Promise<void> | null = null;
  /** the instances booting now, waiting at the gate */
  readonly waiting = new Set<string>();
  override async start(req: ProvisionRequest, ctx: ProvisionContext) {
    const gate = this.gate;
    if (!gate) return super.start(req, ctx);
    this.started.push(req);
    await ctx.report({ state: 'starting', progress: 40, message: 'booting' });
    this.waiting.add(req.instanceId);
    await gate;
    this.waiting.delete(req.instanceId);
    return { targetUrl: `http://127.0.0.1:9${this.started.length}${req.baseUrl}`, ref: { pid: 1 } };
  }
}

let pg: PrivatePostgres;
let proxy: PgProxy;
let database: Database;
let direct: postgres.Sql;
let h: Harness;
const prov = new GatedProvisioner();

before(async () => {
  pg = await startPrivatePostgres();
  const url = await pg.createDatabase('faults');
  proxy = await PgProxy.start({ port: pg.port });
  database = await openDatabase({ url: proxy.url('faults'), dataDir: '' });
  await database.migrate();
  await seed(database.db);
  // the test's own eyes on the database, past the proxy
  direct = postgres(url, { max: 2, onnotice: () => {} });
  h = await harness({
    database,
    provisioners: new Map([['local', prov]]),
    env: {
      DATABASE_URL: proxy.url('faults'),
      NGSCI_JOB_STALE_AFTER: '10',
      NGSCI_HOME_GB: '0',
    },
  });
});

after(async () => {
  await h?.close();
  await database?.close().catch(() => {});
  await direct?.end({ timeout: 2 }).catch(() => {});
  await proxy?.close();
  await pg?.close();
});

/** Postgres away for a moment: stopped (sessions ended), then started again on the same port. */
async function outage(mode: 'fast' | 'immediate', whileDown?: () => Promise<void>) {
  await pg.stop(mode);
  try {
    await whileDown?.();
  } finally {
    await pg.start();
  }
}

/** Waits for a condition; a read that meets a connection the restart closed counts as not yet. */
const until = <T>(fn: () => Promise<T | null | undefined | false>, what: string, ms?: number) =>
  eventually(() => fn().catch(() => null), what, ms);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('Postgres restarted during a meter cycle', () => {
  const RATE = 3_600_000; // $3.60 an hour: one µ$ a millisecond, so a lost second shows
  const T0 = new Date('2026-05-10T12:40:00.000Z');
  const at = (min: number) => new Date(T0.getTime() + min * 60_000);
  let fakeNow = T0;
  let meter: Meter;
  let instanceId: string;

  before(async () => {
    instanceId = await meteredInstance(database, 'metered', T0, RATE);
    // the service's own lock: one connection through the proxy, which the restart kills
    meter = startMeter(h, database, { now: () => fakeNow, lockUrl: proxy.url('faults') });
  });

  after(async () => meter?.close());

  const newestEnd = async () =>
    (await ledgerOf(direct, instanceId)).at(-1)?.ended_at.getTime() ?? 0;
  const billedUpTo = (t: Date, what: string) =>
    until(async () => (await newestEnd()) === t.getTime(), what, 15_000);

  test('the meter bills while Postgres is up', async () => {
    fakeNow = at(5);
    await billedUpTo(at(5), 'the first cycle');
    assert.equal(meter.leader, true);
  });

  test('restart before the insert reached Postgres: the next cycle bills the missing time', async () => {
    // the ledger insert: its kind column goes as an array literal ({"compute"}) in every Bind
    const held = proxy.trap({ match: (t) => t.includes('{"compute"'), hold: 'request' });
    fakeNow = at(12);
    await held;
    await outage('fast', async () => {
      // cycles fail meanwhile (the lock and the queries cannot reach the server)
      fakeNow = at(30);
      await sleep(800);
    });
    await billedUpTo(at(30), 'a cycle after the restart');
    assertContiguous(await ledgerOf(direct, instanceId), T0, at(30), 'after a lost insert');
    assert.equal(meter.leader, true, 'the meter took its lock again');
  });

  test('restart after the insert committed but before its answer: nothing twice, no gap', async () => {
    // T0+41 min is 13:21, in the hour of the newest row; T0+95 min is past 14:00
    const held = proxy.trap({ match: (t) => t.includes('{"compute"'), hold: 'reply' });
    fakeNow = at(41);
    await held;
    await billedUpTo(at(41), 'the insert whose answer is lost, committed');
    await outage('immediate', async () => {
      fakeNow = at(95);
      await sleep(800);
    });
    await billedUpTo(at(95), 'a cycle after the restart');
    assertContiguous(await ledgerOf(direct, instanceId), T0, at(95), 'after a lost answer');
  });

  test('the stream closes once, and the sum is the price of every second exactly once', async () => {
    await h.services.store.transition(instanceId, 'stopping', 0, 'stopping');
    await h.services.store.transition(instanceId, 'stopped', 100, 'stopped', {
      stoppedAt: at(100),
    });
    fakeNow = at(101);
    await until(async () => (await ledgerOf(direct, instanceId)).some((r) => r.final), 'final row');
    const rows = await ledgerOf(direct, instanceId);
    assertContiguous(rows, T0, at(100), 'closed');
    assert.equal(rows.filter((r) => r.final).length, 1, 'one final row');
    const seconds = 100 * 60;
    assert.equal(
      rows.reduce((a, r) => a + r.amount_micros, 0),
      cumulativeMicros(RATE, seconds, 1_000_000, HOUR),
      'the rows add up to the price of 100 minutes',
    );
    // the per-day totals budgets read, recomputed from the rows after both restarts: no drift
    assert.deepEqual(await h.services.metering.ledger.totalsDrift(), []);
    // the loop went on by itself: its newest report is of this cycle's clock
    await until(async () => meter.last?.at === at(101).toISOString(), 'a fresh report');
    assert.equal(meter.leader, true);
  });
});

describe('Postgres restarted during a job claim', () => {
  const launch = async (user: string) => {
    const res = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user,
        server: '',
        options: { size: 'cpu-small' },
        env: { JUPYTERHUB_API_TOKEN: 'server-token-secret' },
        baseUrl: `/user/${user}/`,
      }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const row = await h.services.store.latest(user, 'default');
    return row!.id;
  };

  const jobsOf = (instanceId: string) =>
    direct<Array<{ kind: string; state: string; attempts: number }>>`
      select kind, state, attempts from jobs where instance_id = ${instanceId} order by id`;

  /** the instance's state as the service reads it (a read may meet a connection the restart closed) */
  const state = async (id: string) =>
    (await h.services.store.get(id).catch(() => null))?.state ?? null;

  const startedFor = (id: string) => prov.started.filter((r) => r.instanceId === id).length;

  test('the claim committed but its answer was lost: the job still runs, once', async () => {
    const workerId = h.services.queue.workerId;
    const claimed = proxy.trap({
      // the claim's parameters: this worker's id and the tag it serves
      match: (t) => t.includes(workerId) && t.includes('local'),
      hold: 'reply',
      onlyWithRows: true,
    });
    const id = await launch('claimer');
    await claimed;
    await until(
      async () => (await jobsOf(id))[0]?.state === 'running',
      'the claim committed in Postgres',
    );
    assert.equal(startedFor(id), 0, 'the worker has not heard of its claim');
    await outage('fast', () => sleep(500));
    await until(async () => (await state(id)) === 'running', 'the instance running', 30_000);
    await until(async () => (await jobsOf(id))[0]?.state === 'done', 'the job done');
    assert.equal(startedFor(id), 1, 'the provisioner started the machine once');
    assert.deepEqual([...(await jobsOf(id))], [{ kind: 'start', state: 'done', attempts: 1 }]);
  });

  test('Postgres restarted while a claimed job runs: it finishes once, nothing reaped', async () => {
    let open!: () => void;
    prov.gate = new Promise<void>((r) => (open = r));
    const id = await launch('runner');
    await until(async () => prov.waiting.has(id), 'the machine booting');
    await outage('immediate', () => sleep(500));
    // the worker's heartbeats come back with the server
    const beat = async () =>
      (
        await direct<Array<{ ok: boolean }>>`
          select heartbeat_at > now() - interval '1 second' as ok from jobs
          where instance_id = ${id}`
      )[0]?.ok;
    await until(beat, 'a heartbeat after the restart', 30_000);
    open();
    prov.gate = null;
    await until(async () => (await state(id)) === 'running', 'the instance running');
    await until(async () => (await jobsOf(id))[0]?.state === 'done', 'the job done');
    assert.equal(startedFor(id), 1);
    assert.deepEqual([...(await jobsOf(id))], [{ kind: 'start', state: 'done', attempts: 1 }]);
    const failed = await database.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.instanceId, id), eq(jobs.state, 'failed')));
    assert.equal(failed.length, 0);
  });

  test('the machine comes up while Postgres is down: its start is recorded once it is back', async () => {
    let open!: () => void;
    prov.gate = new Promise<void>((r) => (open = r));
    const id = await launch('waiter');
    await until(async () => prov.waiting.has(id), 'the machine booting');
    await outage('fast', async () => {
      // the machine comes up now: the worker has it to record, and no database
      open();
      prov.gate = null;
      await until(async () => !prov.waiting.has(id), 'the machine up');
      await sleep(700);
    });
    // the worker's write backs off up to 5 s while the database is away: on a loaded machine the
    // next try may come well after Postgres is back
    const row = await until(
      async () => {
        const r = await h.services.store.get(id).catch(() => null);
        return r?.state === 'running' ? r : null;
      },
      'the instance recorded running',
      30_000,
    );
    assert.ok(row.readyAt, 'its billing starts (readyAt set)');
    assert.ok(row.targetUrl, 'the hub can reach it');
    await until(async () => (await jobsOf(id))[0]?.state === 'done', 'the job done', 30_000);
    assert.deepEqual([...(await jobsOf(id))], [{ kind: 'start', state: 'done', attempts: 1 }]);
    assert.equal(startedFor(id), 1);
  });

  test('requests while Postgres is down answer 503 database_unavailable, then work again', async () => {
    const token = h.token({ name: 'asker' });
    await pg.stop('fast');
    try {
      const res = await h.request('/api/v1/instances', { token });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { code: string; message: string; requestId: string };
      assert.equal(body.code, 'database_unavailable');
      assert.ok(body.requestId);
      assert.equal(res.headers.get('retry-after'), '5');
    } finally {
      await pg.start();
    }
    await until(
      async () => (await h.request('/api/v1/instances', { token })).status === 200,
      'the service answering again',
      30_000,
    );
  });
});
