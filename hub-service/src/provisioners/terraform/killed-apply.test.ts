/**
 * Fault: terraform killed with SIGKILL in the middle of `apply` (the OOM killer, an operator's
 * kill -9). The terraform binary is a TEST DOUBLE here (testdata/fake-terraform.mjs, replaying
 * recorded `-json` output slowly): there is no terraform binary or cloud account on the CI
 * machine. Everything around it is real: the job worker, the instance store and the ledger on the
 * Postgres server at 127.0.0.1:5432 (a fresh database for this file), the terraform provisioner
 * and executor with cdktf synthesis. The start must fail with a reason the user reads, a destroy
 * must run in the instance's workdir (kept, marked destroyed, so reconciliation leaves it alone),
 * no instance may be left running, and nothing may be billed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { buildCatalog } from '../../catalog.js';
import { openDatabase, type Database } from '../../db/client.js';
import { instanceSecrets } from '../../db/schema.js';
import { JobQueue } from '../../instances/jobs.js';
import { Resizes } from '../../instances/resize.js';
import { InstanceStore } from '../../instances/store.js';
import { Worker } from '../../instances/worker.js';
import { createLogger } from '../../logger.js';
import { Ledger } from '../../metering/ledger.js';
import type { Notice } from '../../notify/types.js';
import { SecretBox } from '../../secrets.js';
import { jobTagFor } from '../../services.js';
import { eventually } from '../../testing/harness.js';
import {
  FAKE_TERRAFORM,
  TEST_DOUBLE_terraformProvisioner,
} from '../../testing/terraform-double.js';
import { DESTROYED_MARKER } from './provisioner.js';
import { PLAN_FILE } from './executor.js';

const ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `ngsci_killed_apply_${randomBytes(4).toString('hex')}`;
const root = mkdtempSync(join(tmpdir(), 'ngsci-killed-apply-'));
const box = new SecretBox('killed-apply-test-secret-0123456789');
const catalog = buildCatalog({ clouds: ['local', 'aws'], defaultCloud: 'local' });
let database: Database;
let worker: Worker | null = null;

before(async () => {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  database = await openDatabase({ url: url.toString(), dataDir: '' });
  await database.migrate();
});

after(async () => {
  await worker?.close();
  await database?.close();
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  rmSync(root, { recursive: true, force: true });
});

/** Live processes of the double running `command` in `workdir`. */
function doubles(command: string, workdir: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(FAKE_TERRAFORM) || argv[argv.indexOf(FAKE_TERRAFORM) + 1] !== command)
        continue;
      if (readlinkSync(`/proc/${d}/cwd`) === workdir) found.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('terraform killed mid-apply: the start fails with a reason, the stack is destroyed, nothing runs or bills', async (t) => {
  // every line 150 ms apart: an apply long enough to be killed in its middle
  const { terraform } = TEST_DOUBLE_terraformProvisioner(root, 'slow', 'bootstrap-token-FAKE-77');
  const store = new InstanceStore(database.db);
  const queue = new JobQueue(database.db);
  const notices: Notice[] = [];
  worker = new Worker({
    db: database.db,
    store,
    queue,
    box,
    logger: createLogger('silent'),
    catalog: () => catalog,
    provisioners: new Map([['cloud=aws', terraform]]),
    jobTag: jobTagFor,
    heartbeatSeconds: 0.2,
    staleAfterSeconds: 2,
    notifier: { send: async (n) => void notices.push(n) },
    resizes: new Resizes({
      store,
      hub: { getServer: async () => null, startServer: async () => 'started' },
      logger: createLogger('silent'),
    }),
  });
  await worker.start();

  const created = await store.create(
    {
      userName: 'kim',
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud: 'aws',
      region: 'us-east-1',
      spot: false,
      state: 'requested',
      listRatePerHourMicros: 526_000,
      baseUrl: '/user/kim/',
    },
    'requested',
  );
  const id = created!.id;
  await database.db.insert(instanceSecrets).values({
    instanceId: id,
    ciphertext: box.seal(JSON.stringify({ JUPYTERHUB_API_TOKEN: 'hub-token-FAKE-0042' })),
  });
  await queue.enqueue(id, 'start', 'cloud=aws');
  worker.kick();

  // the instance's own apply (its home disk stack is applied first, in another workdir)
  const workdir = terraform.instanceWorkdir(id);
  const [pid] = await eventually(
    async () => {
      const found = doubles('apply', workdir);
      return found.length ? found : null;
    },
    "terraform apply of the instance's stack",
    30_000,
  );
  // a line or two of progress first, so the kill lands in the middle
  await eventually(
    async () => (await store.events(id)).some((e) => /aws_instance.*Creating/.test(e.message)),
    'apply progress',
    10_000,
  ).catch(() => undefined);
  assert.deepEqual(doubles('apply', workdir), [pid], 'the apply was still running');
  process.kill(pid!, 'SIGKILL');

  // the start fails, and the user reads why
  const failed = await eventually(async () => {
    const row = await store.get(id);
    return row?.state === 'failed' ? row : null;
  }, 'the start to fail');
  assert.equal(failed.errorCode, 'provision_failed');
  assert.match(failed.errorMessage ?? '', /terraform apply failed/);
  assert.equal(failed.readyAt, null, 'it never became ready');
  t.diagnostic(`the user reads: ${failed.errorMessage}`);
  assert.ok(failed.stoppedAt, 'its end is recorded');
  const events = (await store.events(id)).map((e) => e.message);
  assert.ok(
    events.some((m) => /^start failed: terraform apply failed/.test(m)),
    events.join(' | '),
  );
  assert.equal(notices.length, 1);
  assert.equal(notices[0]?.user, 'kim');
  assert.match(notices[0]?.title ?? '', /failed to start/);
  assert.match(notices[0]?.body ?? '', /terraform apply failed/);
  assert.ok(
    !JSON.stringify([failed.errorMessage, events, notices]).includes('hub-token-FAKE-0042'),
    'no credential in what the user sees',
  );

  // a destroy runs in the instance's workdir; the workdir stays, marked destroyed
  await eventually(
    async () => (await store.events(id)).some((e) => e.message === 'machine removed'),
    'the destroy after the failed start',
    30_000,
  );
  const calls = readFileSync(join(workdir, 'fake-terraform.calls.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { argv?: string[] });
  const commands = calls.map((c) => c.argv?.[0]).filter(Boolean);
  assert.ok(
    commands.lastIndexOf('destroy') > commands.indexOf('apply'),
    `destroy after the apply: ${commands.join(' ')}`,
  );
  assert.ok(existsSync(join(workdir, DESTROYED_MARKER)), 'the workdir is marked destroyed');
  assert.ok(!existsSync(join(workdir, PLAN_FILE)), 'the saved plan (config values) is gone');
  assert.ok(
    !(await terraform.liveInstanceIds()).includes(id),
    'reconciliation does not count it as live',
  );
  assert.deepEqual(doubles('apply', workdir), [], 'no terraform left running');
  assert.deepEqual(doubles('destroy', workdir), []);

  // jobs: the start failed, one stop destroyed, nothing left queued or running
  const jobs = (await database.db.execute(
    sql`select kind, state from jobs where instance_id = ${id} order by id`,
  )) as unknown as Array<{ kind: string; state: string }>;
  assert.deepEqual(
    jobs.map((j) => `${j.kind}:${j.state}`),
    ['start:failed', 'stop:done'],
  );
  const final = await store.get(id);
  assert.equal(final?.state, 'failed', 'the instance keeps its failure for the user to read');

  // nothing billed: the meter has no stream for it, and no usage row exists
  const ledger = new Ledger(database.db);
  assert.deepEqual(
    (await ledger.unclosed(new Date(Date.now() - 3_600_000))).map((r) => r.id),
    [],
    'the meter has nothing to close',
  );
  const usage = (await database.db.execute(
    sql`select count(*)::int as n from usage_intervals where meter_key = ${id}`,
  )) as unknown as Array<{ n: number }>;
  assert.equal(usage[0]?.n, 0);
});
