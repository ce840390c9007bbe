/**
 * Backup and restore as docs/operations.md tells an operator to do it: `pg_dump --format=custom`
 * of the service's database, `pg_restore` into a new empty database, the service started on it.
 * Written through the service's own code (instances, quotas, the meter's ledger across midnight
 * and a month boundary), then every table compared row by row, the per-day totals checked
 * against the ledger (the totals' triggers must not fire a second time as the rows are loaded),
 * and the statements the service computes compared. The restored database then takes new
 * cycles of the meter and its totals stay exact. On Postgres at 127.0.0.1:5432.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { Ledger, type Stream } from '../metering/ledger.js';
import { HOUR, STORAGE_MONTH_SECONDS } from '../metering/money.js';
import { statementCsv, statementFor } from '../metering/statements.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { meteredInstance } from '../testing/fault-metering.js';
import { openDatabase, type Database } from './client.js';
import { quotas } from './schema.js';

const run = promisify(execFile);
const ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

// 22:30 on the last day of May: the ledger crosses midnight, the day and the month
const T0 = new Date('2026-05-31T22:30:00.000Z');
const at = (min: number) => new Date(T0.getTime() + min * 60_000);

function stream(id: string, user: string, groups: string[], gpu: boolean): Stream {
  return {
    key: id,
    kind: 'compute',
    user,
    groups,
    instanceId: id,
    server: 'default',
    size: gpu ? 'gpu-t4' : 'cpu-small',
    sizeClass: gpu ? 'gpu' : 'cpu',
    cloud: 'aws',
    region: 'us-east-1',
    spot: false,
    planId: 'private',
    multiplierPpm: 1_000_000,
    rateMicros: gpu ? 526_000 : 96_123,
    ratePeriodSeconds: HOUR,
    anchor: T0,
    closeAt: null,
    minimumSeconds: 60,
    lastActivity: at(10),
  };
}

function home(user: string, groups: string[]): Stream {
  return {
    ...stream(`home:${user}`, user, groups, false),
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
  };
}

/** Every row of every table of the service (and the migrations' record), as text, in order. */
async function snapshot(url: string): Promise<Map<string, string[]>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql<{ schema: string; name: string }[]>`
      select table_schema as schema, table_name as name from information_schema.tables
      where table_schema in ('public', 'drizzle') and table_type = 'BASE TABLE'
      order by 1, 2`;
    const out = new Map<string, string[]>();
    for (const t of tables) {
      const rows = await sql.unsafe<{ j: string }[]>(
        `select to_jsonb(t)::text as j from "${t.schema}"."${t.name}" t order by 1`,
      );
      out.set(
        `${t.schema}.${t.name}`,
        rows.map((r) => r.j),
      );
    }
    return out;
  } finally {
    await sql.end();
  }
}

async function statements(database: Database) {
  const ledger = new Ledger(database.db);
  const out: Record<string, unknown> = {};
  for (const user of ['ada', 'bob']) {
    for (const month of ['2026-05', '2026-06']) {
      const s = await statementFor(ledger, user, month);
      out[`${user} ${month}`] = { json: s, csv: statementCsv(s) };
    }
  }
  return out;
}

let source: FreshPostgres;
let dir: string;
const restoredName = `ngsci_restored_${randomBytes(4).toString('hex')}`;
const restoredUrl = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${restoredName}`;
  return u.toString();
})();
let restored: Database | undefined;

async function asAdmin(statement: string) {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

before(async () => {
  source = await freshPostgres('ngsci_backup');
  dir = mkdtempSync(join(tmpdir(), 'ngsci-backup-'));
});

after(async () => {
  await restored?.close();
  await asAdmin(`drop database if exists ${restoredName} with (force)`);
  await source.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('pg_dump and pg_restore into a new database: ledger, totals and statements identical', async () => {
  const db = await source.open();
  const ada = await meteredInstance(db, 'ada', T0, 526_000);
  const bob = await meteredInstance(db, 'bob', T0, 96_123);
  await db.db.insert(quotas).values([
    { subjectKind: 'user', subjectName: 'ada', monthlyBudgetMicros: 50_000_000, hardStop: true },
    { subjectKind: 'group', subjectName: 'lab', monthlyBudgetMicros: 200_000_000 },
  ]);
  const streams = [
    stream(ada, 'ada', ['lab', 'physics'], true),
    stream(bob, 'bob', ['lab'], false),
    home('ada', ['lab', 'physics']),
  ];
  const ledger = new Ledger(db.db);
  for (const min of [5, 20, 29, 31, 45, 75, 95]) await ledger.accrue(streams, at(min), 300);
  assert.deepEqual(await ledger.totalsDrift(), [], 'source: totals equal the rows');

  // the commands of docs/operations.md "Backup and restore"
  const file = join(dir, 'ngsci.dump');
  await run('pg_dump', [
    '--format=custom',
    '--no-owner',
    `--dbname=${source.url}`,
    `--file=${file}`,
  ]);
  assert.ok(statSync(file).size > 0, 'the dump has content');
  await asAdmin(`create database ${restoredName}`);
  await run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${restoredUrl}`, file]);

  const before_ = await snapshot(source.url);
  const after_ = await snapshot(restoredUrl);
  assert.deepEqual([...after_.keys()], [...before_.keys()], 'the same tables');
  for (const [table, rows] of before_) {
    assert.deepEqual(after_.get(table), rows, `${table}: identical row by row`);
  }
  assert.ok(before_.get('public.usage_intervals')!.length > 10, 'a ledger worth comparing');
  assert.ok(before_.get('public.usage_user_days')!.length > 0);
  assert.ok(before_.get('public.usage_group_days')!.length > 0);

  // the service starts on the restored database: nothing left to migrate, the same statements
  restored = await openDatabase({ url: restoredUrl, dataDir: '' });
  await restored.migrate();
  const ledgerAfter = new Ledger(restored.db);
  assert.deepEqual(await ledgerAfter.totalsDrift(), [], 'restored: totals equal the rows');
  const fromSource = await statements(db);
  assert.ok(
    (fromSource['ada 2026-06'] as { json: { totalMicros: number } }).json.totalMicros > 0,
    'a statement with money on it',
  );
  assert.deepEqual(await statements(restored), fromSource, 'statements identical');
  assert.deepEqual(await snapshot(restoredUrl), after_, 'starting the service changed nothing');

  // the meter carries on on the restored database: new rows (the ids' sequence restored too),
  // the triggers in place, totals still exact, no second copy of a row already written
  const spendBefore = await ledgerAfter.userSpend(
    'ada',
    new Date('2026-06-01T00:00:00Z'),
    new Date('2026-07-01T00:00:00Z'),
  );
  const again = await ledgerAfter.accrue(streams, at(95), 300);
  assert.equal(again.written, 0, 'a cycle already in the backup writes nothing');
  const next = await ledgerAfter.accrue(streams, at(140), 300);
  assert.ok(next.written > 0, 'a new cycle writes rows');
  assert.deepEqual(await ledgerAfter.totalsDrift(), [], 'restored, after a cycle: totals exact');
  assert.ok(
    (await ledgerAfter.userSpend(
      'ada',
      new Date('2026-06-01T00:00:00Z'),
      new Date('2026-07-01T00:00:00Z'),
    )) > spendBefore,
    "the new cycle counts in ada's month",
  );
});
