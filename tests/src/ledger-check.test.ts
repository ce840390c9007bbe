/**
 * The ledger checker the fault tests rely on must itself catch what it claims to: a gap, an
 * overlap, a second billed twice, a start that never became ready but billed, a stop not closed,
 * a wrong price. Rows are written by hand into a fresh, migrated Postgres database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase } from '../../hub-service/src/db/client.js';
import { checkLedger } from './ledger-check.js';
import { createPostgresDatabase } from './stack.js';

let pg: { url: string; drop: () => Promise<void> };
let sql: postgres.Sql;

before(async () => {
  pg = await createPostgresDatabase();
  const database = await openDatabase({ url: pg.url, dataDir: '' });
  await database.migrate();
  await database.close();
  sql = postgres(pg.url, { max: 1, onnotice: () => {} });
});

after(async () => {
  await sql?.end();
  await pg?.drop();
});

const RATE = 3_600_000; // 1000 µ$ a second: easy to check by eye
const T0 = Date.parse('2026-11-02T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);

async function instanceRow(opts: { ready: number | null; stopped: number | null; state: string }) {
  const id = randomUUID();
  await sql`insert into instances ${sql({
    id,
    user_name: 'ledger',
    server_name: 'default',
    size_id: 'cpu-small',
    cloud: 'local',
    region: 'localhost',
    state: opts.state,
    list_rate_per_hour_micros: RATE,
    base_url: '/user/ledger/',
    ready_at: opts.ready === null ? null : at(opts.ready),
    stopped_at: opts.stopped === null ? null : at(opts.stopped),
  })}`;
  return id;
}

/** A usage row from second `from` to `to` of the stream (wall clock = billed seconds here). */
async function usage(
  id: string,
  from: number,
  to: number,
  opts: { final?: boolean; amount?: number; billedFrom?: number; billedTo?: number } = {},
) {
  const billedFrom = opts.billedFrom ?? from;
  const billedTo = opts.billedTo ?? to;
  await sql`insert into usage_intervals ${sql({
    meter_key: id,
    kind: 'compute',
    user_name: 'ledger',
    instance_id: id,
    server_name: 'default',
    size_id: 'cpu-small',
    size_class: 'cpu',
    cloud: 'local',
    region: 'localhost',
    plan_id: 'private',
    multiplier_ppm: 1_000_000,
    rate_micros: RATE,
    rate_period_seconds: 3600,
    started_at: at(from),
    ended_at: at(to),
    billed_from: billedFrom,
    billed_to: billedTo,
    final: opts.final ?? false,
    amount_micros: opts.amount ?? (billedTo - billedFrom) * 1000,
  })}`;
}

const problemsOf = async (id: string) => (await checkLedger(sql, { instanceIds: [id] })).problems;

test('a right ledger passes; each kind of wrong one is named', async () => {
  const good = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(good, 0, 30);
  await usage(good, 30, 95, { final: true });
  assert.deepEqual(await problemsOf(good), []);

  const short = await instanceRow({ ready: 0, stopped: 20, state: 'stopped' });
  await usage(short, 0, 20, { final: true, billedTo: 60 });
  assert.deepEqual(await problemsOf(short), [], 'the 60 s minimum');

  const gap = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(gap, 0, 30);
  await usage(gap, 40, 95, { final: true, billedFrom: 30 });
  assert.match((await problemsOf(gap)).join('\n'), /\(gap\)/);

  const twice = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(twice, 0, 30);
  await usage(twice, 20, 95, { final: true });
  const p = (await problemsOf(twice)).join('\n');
  assert.match(p, /\(overlap\)/);
  assert.match(p, /billed 105 s, it ran 95 s/);

  const neverReady = await instanceRow({ ready: null, stopped: 5, state: 'failed' });
  await usage(neverReady, 0, 5, { final: true });
  assert.match((await problemsOf(neverReady)).join('\n'), /never ready, yet billed/);

  const open = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(open, 0, 30);
  assert.match((await problemsOf(open)).join('\n'), /not closed/);
  assert.deepEqual(
    (await checkLedger(sql, { instanceIds: [open], requireClosed: false })).problems,
    [],
    'mid-run, an open stream is fine',
  );

  const lost = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(lost, 0, 90, { final: true });
  assert.match((await problemsOf(lost)).join('\n'), /closed at .* stopped at/);

  const mispriced = await instanceRow({ ready: 0, stopped: 95, state: 'stopped' });
  await usage(mispriced, 0, 95, { final: true, amount: 95_001 });
  assert.match(
    (await problemsOf(mispriced)).join('\n'),
    /priced 95001 µ\$, rate × seconds gives 95000/,
  );
});
