/**
 * Month-to-date spend for one user in a ledger of 10 M intervals (a year of 1,000 users), on
 * Postgres at 127.0.0.1:5432 (a database of its own, dropped afterwards): the query behind every
 * budget check before a launch, GET /api/v1/budget, the admin users table and the meter's budget
 * enforcer. Side by side in the same run: through the per-day totals the service reads
 * (usage_user_days, kept by the ledger's triggers) and the old sum over the rows, with the ratio.
 *
 * The rows are made by generate_series in SQL, in chunks, through the same insert path as the
 * meter's (the table's triggers fill the totals as they go); a check then recomputes the totals
 * from the rows.
 *
 *   npm run meter:spend -w @ngsci/bench [-- --rows 10000000 --users 1000 --reps 500]
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase } from '../../hub-service/src/db/client.js';
import { Ledger } from '../../hub-service/src/metering/ledger.js';
import { liveFigures } from '../../hub-service/src/metering/live.js';
import { monthStart, nextMonthStart } from '../../hub-service/src/metering/money.js';

const PG = process.env.NGSCI_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const YEAR = 365 * 86_400;
const total = Number(arg('rows', '10000000'));
const users = Number(arg('users', '1000'));
const reps = Number(arg('reps', '500'));
// one user besides: a row every `heavy-every` seconds around the clock for the year (30: 1,051,200
// rows, 86,400 in a 30-day month), the worst case for a sum over the rows; 0 for none
const heavyEvery = Number(arg('heavy-every', '30'));
const heavyRows = heavyEvery > 0 ? Math.floor(YEAR / heavyEvery) : 0;
const chunk = 1_000_000;
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
  // each user's rows are spread evenly over the year before now: one every `step` seconds
  const perUser = Math.ceil((total - heavyRows) / users);
  const step = YEAR / perUser;
  const t0 = performance.now();
  const typical = total - heavyRows;
  for (let from = 0; from < typical; from += chunk) {
    const to = Math.min(typical, from + chunk) - 1;
    // row g: user g % users, its (g / users)-th interval back from now; 30 servers per user a year,
    // ten classes (groups) of a hundred users, a GPU size for one user in ten
    await raw.unsafe(`
      insert into usage_intervals (meter_key, kind, user_name, groups, size_id, size_class, cloud, region, plan_id,
        multiplier_ppm, rate_micros, rate_period_seconds, started_at, ended_at, billed_from, billed_to,
        active_seconds, idle_seconds, amount_micros)
      select 'inst-' || u || '-' || (k * 30 / ${perUser}), 'compute', 'user' || u, array['class-' || (u % 10)],
        case when u % 10 = 0 then 'gpu-t4' else 'cpu-small' end, case when u % 10 = 0 then 'gpu' else 'cpu' end,
        'aws', 'us-east-1', 'private', 1000000, case when u % 10 = 0 then 526000 else 96000 end, 3600,
        t, t + interval '60 seconds', k * 60, k * 60 + 60, 60, 0, case when u % 10 = 0 then 8767 else 1600 end
      from generate_series(${from}, ${to}) g,
        lateral (select g % ${users} as u, g / ${users} as k) x,
        lateral (select timestamptz '${now.toISOString()}' - make_interval(secs => (k + 1) * ${step})) y(t)`);
    process.stderr.write(
      `  seeded ${(to + 1).toLocaleString('en')} rows (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
    );
  }
  if (heavyRows)
    await raw.unsafe(`
      insert into usage_intervals (meter_key, kind, user_name, groups, size_id, size_class, cloud, region, plan_id,
        multiplier_ppm, rate_micros, rate_period_seconds, started_at, ended_at, billed_from, billed_to,
        active_seconds, idle_seconds, amount_micros)
      select 'heavy-' || (g / 2880), 'compute', 'heavy', array['class-0'], 'gpu-t4', 'gpu', 'aws', 'us-east-1',
        'private', 1000000, 526000, 3600, t, t + make_interval(secs => ${heavyEvery}), (g % 2880) * ${heavyEvery},
        (g % 2880 + 1) * ${heavyEvery}, ${heavyEvery}, 0, 4383
      from generate_series(1, ${heavyRows}) g,
        lateral (select timestamptz '${now.toISOString()}' - make_interval(secs => g * ${heavyEvery})) x(t)`);
  await raw.unsafe('vacuum analyze usage_intervals');
  await raw.unsafe('vacuum analyze usage_user_days');
  await raw.unsafe('vacuum analyze usage_group_days');
  const seedSeconds = (performance.now() - t0) / 1000;
  const [{ n }] = await raw<[{ n: string }]>`select count(*) as n from usage_intervals`;
  const [{ d }] = await raw<[{ d: string }]>`select count(*) as d from usage_user_days`;
  const monthRows = async (u: string) =>
    Number(
      (
        await raw<[{ m: string }]>`select count(*) as m from usage_intervals
          where user_name = ${u} and started_at >= ${monthStart(now)}`
      )[0].m,
    );
  const m = await monthRows('user1');
  const hm = await monthRows('heavy');
  console.log(
    `seeded ${Number(n).toLocaleString('en')} intervals of ${users.toLocaleString('en')} users over a year ` +
      `(${perUser.toLocaleString('en')} per user; user1 has ${m.toLocaleString('en')} this month; ` +
      `one heavy user ${heavyRows.toLocaleString('en')}, ${hm.toLocaleString('en')} this month) and ` +
      `${Number(d).toLocaleString('en')} per-day totals rows in ${seedSeconds.toFixed(0)} s`,
  );

  const ledger = new Ledger(database.db);
  const t1 = performance.now();
  const drift = await ledger.totalsDrift();
  console.log(
    `totals recomputed from every row: ${drift.length ? `${drift.length} DIFFER` : 'all equal'} (${((performance.now() - t1) / 1000).toFixed(1)} s)`,
  );

  const from = monthStart(now);
  const to = nextMonthStart(now);
  const parts = {
    db: database.db,
    ledger,
    settings: { homeGb: 0, homeGbMonthMicros: 0, defaultPlan: 'private' },
  };
  type Probe = (user: string) => Promise<number>;
  const probes: Array<[string, Probe]> = [
    ['totals (what the service reads)', (u) => ledger.userSpend(u, from, to)],
    ['sum over the rows (before)', (u) => ledger.userSpendFromRows(u, from, to)],
    [
      'the whole budget check figure (live.ts: totals + open streams)',
      async (u) => (await liveFigures(parts, u, [], now)).month.micros,
    ],
  ];
  // warm the cache, as a live service is
  for (const [, f] of probes) for (let i = 0; i < 50; i++) await f(`user${i % users}`);
  const results: Record<string, { p50: number; p99: number }> = {};
  for (const [what, f] of probes) {
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) {
      const u = `user${(i * 7919) % users}`;
      const a = performance.now();
      await f(u);
      ms.push(performance.now() - a);
    }
    results[what] = { p50: pct(ms, 50), p99: pct(ms, 99) };
    console.log(
      `month-to-date spend, ${what}: p50 ${pct(ms, 50).toFixed(2)} ms, p99 ${pct(ms, 99).toFixed(2)} ms (${reps} queries over ${Math.min(reps, users)} users)`,
    );
  }
  const heavy: Record<string, { p50: number; p99: number }> = {};
  if (heavyRows) {
    for (const [what, f] of probes) {
      const ms: number[] = [];
      for (let i = 0; i < Math.min(reps, 200); i++) {
        const a = performance.now();
        await f('heavy');
        ms.push(performance.now() - a);
      }
      heavy[what] = { p50: pct(ms, 50), p99: pct(ms, 99) };
      console.log(
        `  the heavy user (${hm.toLocaleString('en')} rows this month), ${what}: p50 ${pct(ms, 50).toFixed(2)} ms, p99 ${pct(ms, 99).toFixed(2)} ms`,
      );
    }
    const ht = heavy['totals (what the service reads)']!;
    const hr = heavy['sum over the rows (before)']!;
    console.log(
      `  heavy user, rows / totals: ${(hr.p50 / ht.p50).toFixed(1)}× at p50, ${(hr.p99 / ht.p99).toFixed(1)}× at p99; the two agree: ${
        (await ledger.userSpend('heavy', from, to)) ===
        (await ledger.userSpendFromRows('heavy', from, to))
      }`,
    );
  }
  const a = results['totals (what the service reads)']!;
  const b = results['sum over the rows (before)']!;
  // the same figure both ways (user1 was asked at least once)
  const same =
    (await ledger.userSpend('user1', from, to)) ===
    (await ledger.userSpendFromRows('user1', from, to));
  console.log(
    `rows / totals: ${(b.p50 / a.p50).toFixed(1)}× at p50, ${(b.p99 / a.p99).toFixed(1)}× at p99; the two agree: ${same}`,
  );
  const g = performance.now();
  for (let i = 0; i < 100; i++) await ledger.groupSpend(`class-${i % 10}`, from, to);
  const groupMs = (performance.now() - g) / 100;
  console.log(
    `a group budget's month (a class of 100 users), totals: ${groupMs.toFixed(2)} ms mean`,
  );
  console.log(
    JSON.stringify({
      bench: 'meter:spend',
      intervals: Number(n),
      users,
      totalsRows: Number(d),
      seedSeconds: Math.round(seedSeconds),
      totalsEqualRows: drift.length === 0,
      totals: a,
      rows: b,
      live: results['the whole budget check figure (live.ts: totals + open streams)'],
      groupMeanMs: groupMs,
      heavyMonthRows: hm,
      heavy,
    }),
  );
  await raw.end();
  await database.close();
} finally {
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}
