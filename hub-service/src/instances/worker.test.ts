/**
 * The job runner's crash and resume paths against the real Postgres server at 127.0.0.1:5432
 * (a fresh database for this file): a worker that dies mid-job is reaped by another, which
 * finishes its stops and fails its starts (then destroys what they made); and a start running
 * terraform (a test double of the binary: there is no terraform or cloud account on the CI
 * machine) that hangs is cancelled, then killed, and its machine destroyed afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { buildCatalog } from '../catalog.js';
import type { Database } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { instanceSecrets } from '../db/schema.js';
import { createLogger } from '../logger.js';
import type { Provisioner, ProviderRef } from '../provisioners/types.js';
import { SecretBox } from '../secrets.js';
import { jobTagFor } from '../services.js';
import { ApiError } from '../errors.js';
import type { NewSecurityEvent } from '../security/events.js';
import { eventually } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { TEST_DOUBLE_terraformProvisioner } from '../testing/terraform-double.js';
import { JobQueue } from './jobs.js';
import { Resizes } from './resize.js';
import { InstanceStore } from './store.js';
import { Worker, stopRetryDelayMs, type WorkerOptions } from './worker.js';

const root = mkdtempSync(join(tmpdir(), 'ngsci-worker-'));
const box = new SecretBox('worker-test-secret-0123456789');
const catalog = buildCatalog({ clouds: ['local', 'aws'], defaultCloud: 'local' });
let database: Database;
let store: InstanceStore;
const workers: Worker[] = [];

let pg: FreshPostgres;

before(async () => {
  pg = await freshPostgres('ngsci_worker');
  database = await pg.open();
  store = new InstanceStore(database.db);
});

after(async () => {
  for (const w of workers) await w.close();
  await pg?.drop();
  rmSync(root, { recursive: true, force: true });
});

function worker(
  provisioners: Map<string, Provisioner>,
  extra: Partial<WorkerOptions> = {},
): { w: Worker; queue: JobQueue } {
  const queue = new JobQueue(database.db);
  const w = new Worker({
    ...extra,
    db: database.db,
    store,
    queue,
    box,
    logger: createLogger('silent'),
    catalog: () => catalog,
    provisioners,
    jobTag: jobTagFor,
    heartbeatSeconds: 0.2,
    // a job is lost after 6 s without a heartbeat (the reaper looks every 1.5 s): long enough
    // that a loaded machine's slow heartbeat does not hand a live job to a second run
    staleAfterSeconds: 6,
    // no resizes here (resize.test.ts has them): a hub that has no servers
    resizes: new Resizes({
      store,
      hub: { getServer: async () => null, startServer: async () => 'started' },
      logger: createLogger('silent'),
    }),
  });
  workers.push(w);
  return { w, queue };
}

let n = 0;
async function instance(cloud: 'local' | 'aws', state = 'requested'): Promise<string> {
  n += 1;
  const row = await store.create(
    {
      userName: `wk${n}`,
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud,
      region: cloud === 'aws' ? 'us-east-1' : 'localhost',
      spot: false,
      state,
      listRatePerHourMicros: 526_000,
      baseUrl: `/user/wk${n}/`,
    },
    'requested',
  );
  await database.db.insert(instanceSecrets).values({
    instanceId: row!.id,
    ciphertext: box.seal(JSON.stringify({ JUPYTERHUB_API_TOKEN: 'hub-token-FAKE-0011' })),
  });
  return row!.id;
}

const stateOf = async (id: string) => (await store.get(id))?.state;
const messages = async (id: string) => (await store.events(id)).map((e) => e.message);

describe('worker crash and resume (real Postgres)', () => {
  test('a worker that dies mid-job: another reaps it, finishes the stop, fails the start and stops it', async () => {
    const running = await instance('local', 'stopping');
    const starting = await instance('local', 'provisioning');
    // the dead worker: it claimed both jobs, then stopped heartbeating (kill -9)
    const dead = new JobQueue(database.db);
    const stopJob = await dead.enqueue(running, 'stop', 'local');
    const startJob = await dead.enqueue(starting, 'start', 'local');
    assert.equal((await dead.claim(['local']))?.id, stopJob.id);
    assert.equal((await dead.claim(['local']))?.id, startJob.id);
    await database.db.execute(
      sql`update jobs set heartbeat_at = now() - interval '1 minute' where claimed_by = ${dead.workerId}`,
    );

    const prov = new ScriptedProvisioner();
    const { w } = worker(new Map([['local', prov]]));
    await w.start(); // recover() reaps at once

    await eventually(
      async () => (await stateOf(running)) === 'stopped',
      'the reaped stop finished by the live worker',
    );
    assert.ok(prov.stopped.includes(running));
    await eventually(async () => prov.stopped.includes(starting), 'the failed start stopped');
    assert.equal(await stateOf(starting), 'failed');
    assert.equal((await store.get(starting))?.errorCode, 'provision_failed');
    assert.ok((await messages(starting)).some((m) => /restarted while provisioning/.test(m)));
    assert.equal(prov.started.length, 0, 'a reaped start is not run again behind the user’s back');
    await w.close();
  });

  test('a hanging terraform start (test double): cancel sends SIGINT, then SIGKILL; the machine is destroyed afterwards', async () => {
    const { terraform, scenarioFile, settings } = TEST_DOUBLE_terraformProvisioner(
      root,
      'hang',
      'bootstrap-token-FAKE-99',
    );
    const { w, queue } = worker(new Map([['cloud=aws', terraform]]));
    await w.start();
    const id = await instance('aws');
    await queue.enqueue(id, 'start', 'cloud=aws');
    w.kick();
    const homeDir = () => join(settings.workRoot, 'homes');
    await eventually(async () => (await stateOf(id)) === 'provisioning', 'terraform running');
    // wait until the double is inside `plan` (hanging), then cancel
    const calls = () => {
      try {
        const log = readFileSync(
          join(homeDir(), onlyChild(homeDir()), 'fake-terraform.calls.jsonl'),
          'utf8',
        );
        return log
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { argv?: string[]; signal?: string });
      } catch {
        return [];
      }
    };
    await eventually(
      async () => calls().some((c) => c.argv?.[0] === 'plan'),
      'terraform plan started',
    );
    const started = Date.now();
    await queue.cancelStarts(id);
    await eventually(async () => (await stateOf(id)) === 'failed', 'the start gave up', 10_000);
    assert.ok(
      Date.now() - started >= 400,
      'terraform got the grace period after SIGINT before the kill',
    );
    assert.equal((await store.get(id))?.errorCode, 'cancelled');
    assert.ok(
      calls().some((c) => c.signal === 'SIGINT'),
      'terraform was asked to stop first',
    );
    // the instance fails first, then the worker records how its job ended
    const jobs = await eventually(async () => {
      const rows = (await database.db.execute(
        sql`select kind, state from jobs where instance_id = ${id} order by id`,
      )) as unknown as Array<{ kind: string; state: string }>;
      return rows[0]?.state === 'running' ? null : rows;
    }, 'the start job to end');
    assert.deepEqual(jobs[0], { kind: 'start', state: 'cancelled' });
    assert.equal(jobs[1]?.kind, 'stop', 'a stop is queued to destroy what the start made');

    writeFileSync(scenarioFile, 'success');
    await eventually(
      async () => (await messages(id)).includes('machine removed'),
      'the machine destroyed',
      15_000,
    );
    assert.equal(
      await stateOf(id),
      'failed',
      'the instance keeps its failure for the user to read',
    );
    await w.close();
  });
});

/** A provisioner whose stops fail (as terraform destroy of a spot machine did) a number of times. */
class StopsFailFirst extends ScriptedProvisioner {
  stopAttempts = 0;
  constructor(private failures: number) {
    super();
  }
  override async stop(instanceId: string, ref: ProviderRef): Promise<void> {
    this.stopAttempts += 1;
    if (this.failures-- > 0)
      throw new ApiError(
        500,
        'provision_failed',
        "terraform destroy failed: UnsupportedOperation: You can't stop the Spot Instance",
      );
    await super.stop(instanceId, ref);
  }
}

describe('a stop that fails (the machine may still run)', () => {
  test('stopRetryDelayMs: 1, 2, 5, 10, 30 minutes, then every 30', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 40].map((n) => stopRetryDelayMs(n) / 60_000),
      [0, 1, 2, 5, 10, 30, 30, 30],
    );
  });

  test('admins are alerted once per streak, the user sees it, the stop is retried with backoff until the instance is stopped', async () => {
    let skewMs = 0;
    const raised: NewSecurityEvent[] = [];
    const prov = new StopsFailFirst(2);
    const { w, queue } = worker(new Map([['local', prov]]), {
      now: () => new Date(Date.now() + skewMs),
      security: {
        raise: async (e) => {
          raised.push(e);
          return { id: raised.length } as never;
        },
      },
    });
    await w.start();
    const id = await instance('local', 'stopping');
    await queue.enqueue(id, 'stop', 'local');
    w.kick();
    const stopJobs = async () =>
      (await database.db.execute(
        sql`select state from jobs where instance_id = ${id} and kind = 'stop' order by id`,
      )) as unknown as Array<{ state: string }>;

    await eventually(
      async () => (await stopJobs())[0]?.state === 'failed',
      'the first stop failed',
      30_000,
    );
    assert.equal(await stateOf(id), 'stopping');
    assert.ok(
      (await messages(id)).some((m) =>
        /removing the machine failed \(attempt 1\): .*Spot Instance.*trying again in 1 min/.test(m),
      ),
      "the user's progress says the removal failed and will be retried",
    );
    assert.equal(raised.length, 1);
    assert.equal(raised[0]?.kind, 'destroy_failed');
    assert.equal(raised[0]?.severity, 'critical');
    assert.equal(raised[0]?.instanceId, id);
    assert.deepEqual(
      { cloud: raised[0]?.details?.cloud, attempt: raised[0]?.details?.attempt },
      { cloud: 'local', attempt: 1 },
    );
    assert.match(raised[0]?.message ?? '', /may still be running and billing/);

    // the reaper ticks every 1.5 s: within the minute of backoff nothing is queued again
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await stopJobs()).length, 1, 'no retry before the backoff');

    skewMs = stopRetryDelayMs(1) + 1000;
    await eventually(
      async () => (await stopJobs()).filter((j) => j.state === 'failed').length === 2,
      'the second stop ran and failed',
      30_000,
    );
    // the retry's note is written beside the job it queued, which may run first
    await eventually(
      async () => (await messages(id)).includes('trying again to remove the machine (attempt 2)'),
      "the retry's note",
    );
    assert.ok((await messages(id)).some((m) => /attempt 2\).*trying again in 2 min/.test(m)));
    assert.equal(raised.length, 1, 'one alert for the streak, not one per failure');

    // one minute more is not the two the second failure waits for
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await stopJobs()).length, 2, 'the backoff grows');

    skewMs += stopRetryDelayMs(2) + 1000;
    await eventually(
      async () => (await stateOf(id)) === 'stopped',
      'the third stop succeeded',
      30_000,
    );
    assert.equal(prov.stopAttempts, 3);
    assert.deepEqual(
      (await stopJobs()).map((j) => j.state),
      ['failed', 'failed', 'done'],
    );
    assert.equal(raised.length, 1);
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await stopJobs()).length, 3, 'a stopped instance is not stopped again');
    await w.close();
  });

  test('a stop cut short by a shutdown is queued again when the service is back', async () => {
    const prov = new StopsFailFirst(0);
    const id = await instance('local', 'stopping');
    const q = new JobQueue(database.db);
    const job = await q.enqueue(id, 'stop', 'local');
    await q.finish(job.id, 'cancelled', 'service shutting down');
    const { w } = worker(new Map([['local', prov]]));
    await w.start();
    await eventually(async () => (await stateOf(id)) === 'stopped', 'the stop ran again');
    await w.close();
  });
});

function onlyChild(dir: string): string {
  const entries = readdirSync(dir);
  if (entries.length !== 1) throw new Error(`expected one home workdir, found ${entries.length}`);
  return entries[0] as string;
}
