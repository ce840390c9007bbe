/**
 * Faults: the disk of the database's data directory fills up during a write. A private Postgres
 * cluster lives on a small tmpfs (never the shared server); the test fills that disk with a file
 * and sends writes that need new space: an agent's audit batch (a hash chain, written in one
 * transaction) and a launch through the bridge (an instance row, its sealed environment and its
 * start job). Each must answer a 503 with a code, leave no partial row behind, and, once the file
 * is gone (and Postgres started again if it stopped), the service must work with its data intact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { openDatabase, seed, type Database } from '../db/client.js';
import { ACCESS, eventually, harness, type Harness } from '../testing/harness.js';
import {
  mountTmpfs,
  startPrivatePostgres,
  type PrivatePostgres,
} from '../testing/private-postgres.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import {
  assertContiguous,
  ledgerOf,
  meteredInstance,
  startMeter,
} from '../testing/fault-metering.js';
import type { Meter } from '../metering/meter.js';

const DISK_MB = 96;

let disk: ReturnType<typeof mountTmpfs>;
let pg: PrivatePostgres;
let database: Database;
let direct: postgres.Sql;
let h: Harness;
let admin: string;
let meter: Meter;
let meteredId: string;
const T0 = new Date('2026-05-10T12:40:00.000Z');
const at = (min: number) => new Date(T0.getTime() + min * 60_000);
let fakeNow = T0;
const billedUpTo = (t: Date, what: string) =>
  eventually(
    async () => (await ledgerOf(direct, meteredId)).at(-1)?.ended_at.getTime() === t.getTime(),
    what,
    15_000,
  );
const prov = new ScriptedProvisioner();
const fillFile = () => join(disk.dir, 'fill');

before(async () => {
  // a refused mount fails the file with the reason: a full-disk test on an unbounded disk proves nothing
  disk = mountTmpfs(DISK_MB);
  pg = await startPrivatePostgres({
    parentDir: disk.dir,
    walSegmentMb: 1,
    settings: { min_wal_size: "'4MB'", max_wal_size: "'8MB'", restart_after_crash: 'on' },
  });
  const url = await pg.createDatabase('diskfull');
  database = await openDatabase({ url, dataDir: '' });
  await database.migrate();
  await seed(database.db);
  direct = postgres(url, { max: 2, onnotice: () => {} });
  h = await harness({
    database,
    provisioners: new Map([['local', prov]]),
    env: { DATABASE_URL: url, NGSCI_HOME_GB: '0', NGSCI_AGENT_RATE_PER_MINUTE: '0' },
  });
  admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
  // a machine billed by the meter all along: its ledger must come out whole
  meteredId = await meteredInstance(database, 'metered', T0, 3_600_000);
  meter = startMeter(h, database, { now: () => fakeNow, lockUrl: url });
});

after(async () => {
  await meter?.close();
  await h?.close();
  await database?.close().catch(() => {});
  await direct?.end({ timeout: 2 }).catch(() => {});
  await pg?.close();
  disk?.unmount();
});

/** Fills the disk to its last byte with one file. */
function fillDisk(): number {
  const fd = openSync(fillFile(), 'w');
  const block = Buffer.alloc(1 << 20, 0x5a);
  let written = 0;
  try {
    for (;;) {
      try {
        written += writeSync(fd, block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        // the last partial megabyte too
        for (let small = 4096; ;) {
          try {
            written += writeSync(fd, block.subarray(0, small));
          } catch {
            if (small === 1) break;
            small = Math.max(1, small >> 1);
          }
        }
        return written;
      }
    }
  } finally {
    closeSync(fd);
  }
}

const freeBytes = () => {
  const s = statfsSync(disk.dir);
  return s.bavail * s.bsize;
};

/** A batch of file events on long, random (incompressible) paths: it needs new pages. */
const batch = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    path: `/data/${randomBytes(600).toString('hex')}/${i}`,
    op: 'read',
    at: '2026-11-20T10:00:00Z',
  }));

/** A spawn through the bridge, as JupyterHub sends it, with an environment of about `envBytes`. */
const launch = (user: string, envBytes: number) =>
  h.bridge('/start', {
    method: 'POST',
    body: JSON.stringify({
      user,
      server: '',
      options: { size: 'cpu-small' },
      env: { JUPYTERHUB_API_TOKEN: randomBytes(Math.ceil(envBytes / 2)).toString('hex') },
      baseUrl: `/user/${user}/`,
    }),
  });

async function audited(instanceId: string) {
  const rows = await direct<Array<{ n: number; digest: string | null }>>`
    select count(*)::int as n, md5(string_agg(hash, ',' order by id)) as digest
    from audit_events where chain = ${instanceId}`;
  return rows[0]!;
}

async function verify() {
  const res = await h.request('/api/v1/admin/audit/verify', { token: admin });
  assert.equal(res.status, 200);
  return (await res.json()) as { intact: boolean; events: number; breaks: unknown[] };
}

describe('the database disk full during a write', () => {
  let agent: { id: string; token: string };
  const post = (events: unknown[]) =>
    h.request('/api/v1/agent/audit', {
      token: agent.token,
      method: 'POST',
      body: JSON.stringify({ events }),
    });
  let before_: { n: number; digest: string | null };
  const refused: Array<{ status: number; code: string }> = [];
  let launchRefused = '';

  test('a baseline is written while there is space', async () => {
    agent = await h.runningAgent('filler');
    for (let i = 0; i < 3; i++) assert.equal((await post(batch(20))).status, 202);
    // a launch while there is room: the instance tables have pages with space left in them
    assert.equal((await launch('warmup', 10)).status, 202);
    before_ = await audited(agent.id);
    assert.equal(before_.n, 60);
    fakeNow = at(5);
    await billedUpTo(at(5), 'the first meter cycle');
    assert.equal((await verify()).intact, true);
  });

  test('writes on a full disk answer 503 with a code, and store nothing', async () => {
    const filled = fillDisk();
    assert.ok(filled > 0 && freeBytes() < 4096, `the disk is full (${freeBytes()} bytes free)`);
    // meter cycles run on the full disk meanwhile (their inserts may or may not find room)
    fakeNow = at(30);
    // writes until the disk refuses one (the first may still fit in a page that has room)
    for (let i = 0; i < 20 && !refused.length; i++) {
      const res = await post(batch(200));
      if (res.status === 202) continue;
      const body = (await res.json()) as { code: string; message: string; requestId: string };
      refused.push({ status: res.status, code: body.code });
      assert.equal(res.status, 503);
      assert.ok(body.requestId);
      assert.match(body.code, /^(storage_full|database_unavailable)$/);
    }
    assert.ok(refused.length, 'a write on the full disk was refused');
  });

  test('a launch on a full disk is refused whole: no instance without its start job', async () => {
    // launches until one is refused (the instance tables may still have room in a page)
    for (let i = 0; i < 20; i++) {
      const user = `launcher${i}`;
      // a large environment: its sealed copy needs new pages where the instance row does not
      const res = await launch(user, 12_000);
      if (res.status === 202) continue;
      const body = (await res.json()) as { code: string };
      assert.equal(res.status, 503);
      assert.equal(body.code, 'storage_full');
      launchRefused = user;
      break;
    }
    assert.ok(launchRefused, 'a launch on the full disk was refused');
    const left = await direct`
      select i.state, (select count(*)::int from jobs j where j.instance_id = i.id) as jobs
      from instances i where i.user_name = ${launchRefused}`;
    assert.deepEqual([...left], [], 'the refused launch left no instance behind');
  });

  test('once space is freed the service works again and the data is intact', async () => {
    rmSync(fillFile());
    if (
      !(await direct`select 1`.then(
        () => true,
        () => false,
      ))
    ) {
      await pg.stop('immediate').catch(() => {});
      await pg.start();
    }
    const after_ = await eventually(
      async () => audited(agent.id).catch(() => null),
      'the database answering',
    );
    // every batch that was answered 202 is there in full, the refused one not at all
    assert.equal((after_.n - before_.n) % 200, 0, 'no partial batch');
    const v = await eventually(async () => verify().catch(() => null), 'verify');
    // the meter went on by itself: its ledger is whole, every second billed once
    fakeNow = at(75);
    await billedUpTo(at(75), 'a meter cycle after the disk was freed');
    assertContiguous(await ledgerOf(direct, meteredId), T0, at(75), 'across the full disk');
    assert.equal(v.intact, true, 'every hash chain verifies');
    const res = await eventually(async () => {
      const r = await post(batch(5));
      return r.status === 202 ? r : null;
    }, 'a write accepted again');
    assert.equal(res.status, 202);
    assert.equal((await audited(agent.id)).n, after_.n + 5);
    assert.equal((await verify()).intact, true);
    // the user whose launch was refused is not stuck behind a half-written instance
    assert.equal((await launch(launchRefused, 100)).status, 202);
    await eventually(
      async () => (await h.services.store.active(launchRefused, 'default'))?.state === 'running',
      'the launch after the disk was freed running',
    );
    // the launches that got through before are whole: each instance has its start job
    const orphans = await direct`
      select i.user_name from instances i
      where not exists (select 1 from jobs j where j.instance_id = i.id and j.kind = 'start')
        and i.cloud = 'local' and i.user_name <> 'filler'`;
    assert.deepEqual([...orphans], [], 'every launched instance has its start job');
  });
});

describe('the data directory full under the embedded database (PGlite, no DATABASE_URL)', () => {
  let liteDisk: ReturnType<typeof mountTmpfs>;
  let lite: Database;
  let hl: Harness;

  before(async () => {
    liteDisk = mountTmpfs(64);
    lite = await openDatabase({ dataDir: liteDisk.dir });
    await lite.migrate();
    await seed(lite.db);
    hl = await harness({ database: lite, env: { NGSCI_HOME_GB: '0' } });
  });

  after(async () => {
    await hl?.close();
    await lite?.close().catch(() => {});
    liteDisk?.unmount();
  });

  test('a write on the full disk answers 503 storage_full; after space is freed it works', async () => {
    const agent = await hl.runningAgent('lite');
    const post = (n: number) =>
      hl.request('/api/v1/agent/audit', {
        token: agent.token,
        method: 'POST',
        body: JSON.stringify({ events: batch(n) }),
      });
    assert.equal((await post(10)).status, 202);
    const fill = join(liteDisk.dir, 'fill');
    const fd = openSync(fill, 'w');
    const block = Buffer.alloc(1 << 16, 0x5a);
    for (const size of [block.length, 4096, 1]) {
      try {
        for (;;) writeSync(fd, block.subarray(0, size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
    closeSync(fd);
    let refused: { status: number; code: string } | null = null;
    for (let i = 0; i < 20 && !refused; i++) {
      const res = await post(200);
      if (res.status !== 202)
        refused = { status: res.status, code: ((await res.json()) as { code: string }).code };
    }
    assert.deepEqual(refused, { status: 503, code: 'storage_full' });
    rmSync(fill);
    assert.equal((await post(5)).status, 202, 'the embedded database writes again');
    const v = await hl.request('/api/v1/admin/audit/verify', {
      token: hl.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] }),
    });
    assert.equal(((await v.json()) as { intact: boolean }).intact, true);
  });
});
