/**
 * An upgrade from the previous release: a database migrated only up to that release's last
 * migration (0007_email_confirmation) holds data written with plain SQL valid for its schema
 * (instances, quotas, a ledger across midnight and a month boundary); the service then starts as
 * it always does (migrate() on start). Every row is still there with the values it had, the new
 * columns are empty, the new per-day totals equal the sums of the old rows (0009 fills them), the
 * statements read the same money, and the meter's next writes keep the totals exact.
 * On Postgres at 127.0.0.1:5432.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { Ledger, type Stream } from '../metering/ledger.js';
import { HOUR } from '../metering/money.js';
import { statementFor } from '../metering/statements.js';
import { MIGRATIONS_DIR, openDatabase, type Database } from './client.js';

const ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** the previous release's last migration */
const PREVIOUS = '0007_email_confirmation';

const name = `ngsci_upgrade_${randomBytes(4).toString('hex')}`;
const url = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
})();
let dir: string;
let database: Database | undefined;

async function asAdmin(statement: string) {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

/** The migrations folder as the previous release shipped it: the journal up to PREVIOUS. */
function previousRelease(): string {
  const folder = join(dir, 'drizzle');
  cpSync(MIGRATIONS_DIR, folder, { recursive: true });
  const path = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(path, 'utf8')) as { entries: Array<{ tag: string }> };
  const last = journal.entries.findIndex((e) => e.tag === PREVIOUS);
  assert.ok(last >= 0, `${PREVIOUS} is in the journal`);
  assert.ok(journal.entries.length > last + 1, 'this release has migrations after it');
  journal.entries = journal.entries.slice(0, last + 1);
  writeFileSync(path, JSON.stringify(journal));
  return folder;
}

const IDS = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000b2'];

/** A ledger as the previous release wrote it: 10-minute rows, none across an hour. */
function oldLedgerRows() {
  const rows: string[] = [];
  const start = Date.parse('2026-05-31T22:30:00Z');
  const kinds = [
    {
      id: IDS[0],
      user: 'ada',
      groups: ['lab', 'physics'],
      size: 'gpu-t4',
      cls: 'gpu',
      rate: 526_000,
    },
    { id: IDS[1], user: 'bob', groups: ['lab'], size: 'cpu-small', cls: 'cpu', rate: 96_123 },
  ];
  for (const k of kinds) {
    for (let i = 0; i < 12; i++) {
      const from = new Date(start + i * 600_000).toISOString();
      const to = new Date(start + (i + 1) * 600_000).toISOString();
      const amount = Math.ceil((k.rate * 600) / HOUR);
      rows.push(
        `('${k.id}', 'compute', '${k.user}', '{${k.groups.join(',')}}', '${k.id}', 'default', ` +
          `'${k.size}', '${k.cls}', 'aws', 'us-east-1', false, 'private', 1000000, ${k.rate}, 3600, ` +
          `'${from}', '${to}', ${i * 600}, ${(i + 1) * 600}, ${i < 3 ? 600 : 0}, ${i < 3 ? 0 : 600}, ` +
          `${i === 11}, ${amount})`,
      );
    }
  }
  // a home volume, billed by the month's seconds
  rows.push(
    `('home:ada', 'storage', 'ada', '{lab,physics}', null, null, 'home-volume', 'storage', 'any', ` +
      `'any', false, 'private', 1000000, 800000, 2592000, '2026-05-31T23:00:00Z', ` +
      `'2026-06-01T01:00:00Z', 0, 7200, 0, 0, false, 2222)`,
  );
  return rows;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ngsci-upgrade-'));
  await asAdmin(`create database ${name}`);
});

after(async () => {
  await database?.close();
  await asAdmin(`drop database if exists ${name} with (force)`);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * New columns that an old row gets a value for rather than null: a row written before credits
 * could lower charges had no credit applied (0018).
 */
const NEW_COLUMN_DEFAULTS: Record<string, Record<string, unknown>> = {
  usage_intervals: { credit_micros: 0 },
};

test("the previous release's schema with data upgrades on start, data intact and totals filled", async () => {
  const old = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await migrate(drizzle(old), { migrationsFolder: previousRelease() });
    // data valid for the previous schema, in plain SQL
    await old.unsafe(`
      insert into instances (id, user_name, server_name, size_id, cloud, region, state,
        list_rate_per_hour_micros, base_url, created_at, ready_at, stopped_at)
      values ('${IDS[0]}', 'ada', 'default', 'gpu-t4', 'aws', 'us-east-1', 'stopped', 526000,
          '/user/ada/', '2026-05-31T22:29:00Z', '2026-05-31T22:30:00Z', '2026-06-01T00:30:00Z'),
        ('${IDS[1]}', 'bob', 'default', 'cpu-small', 'aws', 'us-east-1', 'stopped', 96123,
          '/user/bob/', '2026-05-31T22:29:00Z', '2026-05-31T22:30:00Z', '2026-06-01T00:30:00Z')`);
    await old.unsafe(`
      insert into instance_events (instance_id, state, progress, message)
      values ('${IDS[0]}', 'running', 100, 'server is ready'),
        ('${IDS[0]}', 'running', 100,
          'AWS announced it takes this spot machine back at 00:02:00 UTC; open documents are being saved')`);
    await old.unsafe(`
      insert into quotas (subject_kind, subject_name, monthly_budget_micros, hard_stop,
        idle_timeout_cpu_seconds, idle_timeout_gpu_seconds)
      values ('user', 'ada', 50000000, true, 1800, 900), ('group', 'lab', 200000000, false, null, null)`);
    await old.unsafe(`
      insert into usage_intervals (meter_key, kind, user_name, groups, instance_id, server_name,
        size_id, size_class, cloud, region, spot, plan_id, multiplier_ppm, rate_micros,
        rate_period_seconds, started_at, ended_at, billed_from, billed_to, active_seconds,
        idle_seconds, final, amount_micros)
      values ${oldLedgerRows().join(',\n')}`);
    const [{ has }] = await old<[{ has: boolean }]>`
      select to_regclass('usage_user_days') is not null as has`;
    assert.equal(has, false, 'the previous schema has no per-day totals');
  } finally {
    await old.end();
  }
  const snap = async () => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const out: Record<string, Array<Record<string, unknown>>> = {};
      for (const t of ['instances', 'quotas', 'usage_intervals']) {
        out[t] = (
          await sql.unsafe<{ j: Record<string, unknown> }[]>(
            `select to_jsonb(t) as j from ${t} t order by id`,
          )
        ).map((r) => r.j);
      }
      return out;
    } finally {
      await sql.end();
    }
  };
  const before_ = await snap();

  // the service starts: migrate() as on every start, from the release's own folder
  database = await openDatabase({ url, dataDir: '' });
  await database.migrate();

  const after_ = await snap();
  for (const [table, rows] of Object.entries(before_)) {
    const now = after_[table]!;
    assert.equal(now.length, rows.length, `${table}: every row still there`);
    rows.forEach((row, i) => {
      const kept = Object.fromEntries(Object.keys(row).map((k) => [k, now[i]![k]]));
      assert.deepEqual(kept, row, `${table} row ${i}: the values it had`);
      for (const k of Object.keys(now[i]!).filter((k) => !(k in row))) {
        const expected =
          k in (NEW_COLUMN_DEFAULTS[table] ?? {}) ? NEW_COLUMN_DEFAULTS[table]![k] : null;
        assert.equal(
          now[i]![k],
          expected,
          `${table}.${k}: a new column, ${String(expected)} on an old row`,
        );
      }
    });
  }

  // a spot notice recorded before events had a kind is known by its words (0022)
  const events = await postgres(url, { max: 1, onnotice: () => {} });
  try {
    const kinds = await events<{ kind: string | null }[]>`
      select kind from instance_events order by id`;
    assert.deepEqual(
      kinds.map((e) => e.kind),
      [null, 'spot_notice'],
    );
  } finally {
    await events.end();
  }

  // the per-day totals, which did not exist, are the sums of the old rows
  const ledger = new Ledger(database.db);
  assert.deepEqual(await ledger.totalsDrift(), [], 'the totals equal the rows');
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const journal = JSON.parse(
      readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'),
    ) as { entries: unknown[] };
    const [{ applied }] = await sql<[{ applied: number }]>`
      select count(*)::int as applied from drizzle.__drizzle_migrations`;
    assert.equal(applied, journal.entries.length, "every one of this release's migrations applied");
    const days = await sql<{ user_name: string; day: string; micros: string }[]>`
      select user_name, to_char(day, 'YYYY-MM-DD') as day, sum(micros)::text as micros
      from usage_user_days group by 1, 2 order by 1, 2`;
    const expected = await sql<{ user_name: string; day: string; micros: string }[]>`
      select user_name, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day,
        sum(amount_micros)::text as micros
      from usage_intervals group by 1, 2 order by 1, 2`;
    assert.deepEqual([...days], [...expected]);
    assert.deepEqual(
      days.map((d) => [d.user_name, d.day]),
      [
        ['ada', '2026-05-31'],
        ['ada', '2026-06-01'],
        ['bob', '2026-05-31'],
        ['bob', '2026-06-01'],
      ],
    );
    const groups = await sql<{ group_name: string; micros: string; rows: number }[]>`
      select group_name, sum(micros)::text as micros, sum(rows)::int as rows
      from usage_group_days group by 1 order by 1`;
    assert.deepEqual(
      groups.map((g) => [g.group_name, g.rows]),
      [
        ['lab', 25],
        ['physics', 13],
      ],
    );
  } finally {
    await sql.end();
  }

  // what a user reads: the month's statement and spend, the same money as the old rows hold
  const june = [new Date('2026-06-01T00:00:00Z'), new Date('2026-07-01T00:00:00Z')] as const;
  for (const user of ['ada', 'bob']) {
    for (const month of ['2026-05', '2026-06']) {
      const s = await statementFor(ledger, user, month);
      const from = new Date(`${month}-01T00:00:00Z`);
      const to = month === '2026-05' ? june[0] : june[1];
      assert.equal(s.totalMicros, await ledger.userSpendFromRows(user, from, to));
      assert.equal(await ledger.userSpend(user, from, to), s.totalMicros, `${user} ${month}`);
      assert.ok(s.totalMicros > 0, `${user} ${month}: money on the statement`);
    }
  }

  // the upgraded service's meter writes on after the old rows; the totals follow
  const stream: Stream = {
    key: 'home:bob',
    kind: 'storage',
    user: 'bob',
    groups: ['lab'],
    instanceId: null,
    server: null,
    size: 'home-volume',
    sizeClass: 'storage',
    cloud: 'any',
    region: 'any',
    spot: false,
    planId: 'private',
    multiplierPpm: 1_000_000,
    rateMicros: 800_000,
    ratePeriodSeconds: 2_592_000,
    anchor: new Date('2026-06-01T00:00:00Z'),
    closeAt: null,
    minimumSeconds: 0,
    lastActivity: null,
  };
  const written = await ledger.accrue([stream], new Date('2026-06-01T02:00:00Z'), 300);
  assert.ok(written.written > 0);
  assert.deepEqual(await ledger.totalsDrift(), [], 'after a new cycle: totals exact');

  // a second start finds nothing to apply
  await database.migrate();
  assert.deepEqual(await ledger.totalsDrift(), []);
});
