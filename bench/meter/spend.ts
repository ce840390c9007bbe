/**
 * Month-to-date spend for one user whose year of usage history sits in a ledger of more than a
 * million intervals, on Postgres at 127.0.0.1:5432 (a database of its own, dropped afterwards).
 * This is the query behind every budget check before a launch and GET /api/v1/budget.
 *
 *   npm run meter:spend -w @ngsci/bench [-- --rows-per-day 2880 --others 200000 --reps 200]
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase } from '../../hub-service/src/db/client.js';
import { Ledger } from '../../hub-service/src/metering/ledger.js';
import { monthStart, nextMonthStart } from '../../hub-service/src/metering/money.js';

const PG = process.env.NGSCI_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
// 2880 a day = one row every 30 s for a year, around the clock: 1,051,200 rows for this user alone
const perDay = Number(arg('rows-per-day', '2880'));
const others = Number(arg('others', '200000'));
const reps = Number(arg('reps', '200'));
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

const name = `ngsci_bench_spend_${randomBytes(4).toString('hex')}`;
const admin = postgres(PG, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const url = new URL(PG);
url.pathname = `/${name}`;
try {
  const database = await openDatabase({ url: url.toString(), dataDir: '/tmp' });
  await database.migrate();
  const raw = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const now = new Date();
  const step = Math.floor(86_400 / perDay);
  const t0 = performance.now();
  // a year of one user's compute, one row per `step` seconds, ending now
  await raw.unsafe(`
    insert into usage_intervals (meter_key, kind, user_name, groups, size_id, size_class, cloud, region, plan_id,
      multiplier_ppm, rate_micros, rate_period_seconds, started_at, ended_at, billed_from, billed_to, amount_micros)
    select 'inst-' || (g / 2880), 'compute', 'heavy', '{}', 'gpu-t4', 'gpu', 'aws', 'us-east-1', 'private',
      1000000, 526000, 3600, t, t + make_interval(secs => ${step}), (g % 2880) * ${step}, (g % 2880 + 1) * ${step}, 4383
    from generate_series(1, ${365 * perDay}) g,
      lateral (select timestamptz '${now.toISOString()}' - make_interval(secs => g * ${step})) x(t)`);
  // everyone else
  await raw.unsafe(`
    insert into usage_intervals (meter_key, kind, user_name, groups, size_id, size_class, cloud, region, plan_id,
      multiplier_ppm, rate_micros, rate_period_seconds, started_at, ended_at, billed_from, billed_to, amount_micros)
    select 'other-' || g, 'compute', 'user' || (g % 500), '{}', 'cpu-small', 'cpu', 'aws', 'us-east-1', 'private',
      1000000, 96000, 3600, t, t + interval '15 seconds', 0, 15, 400
    from generate_series(1, ${others}) g,
      lateral (select timestamptz '${now.toISOString()}' - make_interval(secs => (g * 157) % (365 * 86400))) x(t)`);
  await raw.unsafe('vacuum analyze usage_intervals');
  const [{ n }] = await raw<[{ n: string }]>`select count(*) as n from usage_intervals`;
  const [{ m }] = await raw<
    [{ m: string }]
  >`select count(*) as m from usage_intervals where user_name = 'heavy' and started_at >= ${monthStart(now)}`;
  console.log(
    `seeded ${Number(n).toLocaleString('en')} intervals (${(365 * perDay).toLocaleString('en')} for one user over a year; ${Number(m).toLocaleString('en')} of them this month) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const ledger = new Ledger(database.db);
  const from = monthStart(now);
  const to = nextMonthStart(now);
  const prev = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  for (let i = 0; i < 20; i++) await ledger.userSpend('heavy', from, to); // warm the cache, as a live service is
  const measure = async (f: Date, t: Date) => {
    const ms: number[] = [];
    let spent = 0;
    for (let i = 0; i < reps; i++) {
      const a = performance.now();
      spent = await ledger.userSpend('heavy', f, t);
      ms.push(performance.now() - a);
    }
    return { ms, spent };
  };
  const mtd = await measure(from, to);
  const full = await measure(prev, from);
  const line = (what: string, r: { ms: number[]; spent: number }) =>
    console.log(
      `${what}: p50 ${pct(r.ms, 50).toFixed(2)} ms, p95 ${pct(r.ms, 95).toFixed(2)} ms (${reps} queries; ${r.spent.toLocaleString('en')} µ$)`,
    );
  line('month-to-date spend', mtd);
  line('a whole previous month (the worst case: the last day of a month)', full);
  console.log(
    JSON.stringify({
      bench: 'meter:spend',
      intervals: Number(n),
      userIntervals: 365 * perDay,
      monthRows: Number(m),
      p50: pct(mtd.ms, 50),
      p95: pct(mtd.ms, 95),
      fullMonthP50: pct(full.ms, 50),
      fullMonthP95: pct(full.ms, 95),
    }),
  );
  await raw.end();
  await database.close();
} finally {
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}
