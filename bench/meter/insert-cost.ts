/**
 * Where a worst-case meter cycle's ledger insert goes: 10,000 rows (one per stream, as a cycle
 * that writes every stream makes) appended through Ledger.append, timed as the service runs it,
 * then with the per-day totals trigger, the read-cache trigger and the user index taken away one
 * by one, so each one's share shows. A database of its own on 127.0.0.1:5432, dropped at the end.
 *
 *   npm run meter:insert -w @ngsci/bench [-- --rows 10000 --reps 5]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, seed } from '../../hub-service/src/db/client.js';
import { Ledger, type IntervalRow } from '../../hub-service/src/metering/ledger.js';

const PG = process.env.NGSCI_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const N = Number(arg('rows', '10000'));
const REPS = Number(arg('reps', '5'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const name = `ngsci_bench_insert_${randomBytes(4).toString('hex')}`;
const admin = postgres(PG, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const url = new URL(PG);
url.pathname = `/${name}`;
const database = await openDatabase({ url: url.toString(), dataDir: '' });
try {
  await database.migrate();
  await seed(database.db);
  const ledger = new Ledger(database.db);
  const direct = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const streams = Array.from({ length: N }, (_, i) => ({
    key: `compute:${randomUUID()}`,
    user: `user${i % Math.ceil(N / 2)}`,
    instanceId: randomUUID(),
  }));
  let t = Date.parse('2026-11-30T10:00:00Z');
  const rowsAt = (from: number, to: number): IntervalRow[] =>
    streams.map((s) => ({
      meterKey: s.key,
      kind: 'compute',
      userName: s.user,
      groups: ['class-a'],
      instanceId: s.instanceId,
      serverName: 'default',
      sizeId: 'cpu-small',
      sizeClass: 'cpu',
      cloud: 'local',
      region: 'localhost',
      spot: false,
      planId: 'standard',
      multiplierPpm: 1_000_000,
      rateMicros: 96_000,
      ratePeriodSeconds: 3600,
      startedAt: new Date(from),
      endedAt: new Date(to),
      billedFrom: (from - Date.parse('2026-11-30T00:00:00Z')) / 1000,
      billedTo: (to - Date.parse('2026-11-30T00:00:00Z')) / 1000,
      activeSeconds: (to - from) / 1000,
      idleSeconds: 0,
      final: false,
      amountMicros: 400,
      creditMicros: 0,
    }));
  const round = async (label: string) => {
    const ms: number[] = [];
    for (let r = 0; r < REPS + 1; r++) {
      const rows = rowsAt(t, t + 15_000);
      t += 15_000;
      const t0 = performance.now();
      const written = await ledger.append(rows);
      const took = performance.now() - t0;
      if (written.length !== N) throw new Error(`${label}: wrote ${written.length} of ${N}`);
      if (r > 0) ms.push(took); // the first is a warm-up
    }
    const m = median(ms);
    console.log(
      `${label.padEnd(58)} ${m.toFixed(1).padStart(7)} ms  ${((m * 1000) / N).toFixed(1)} µs a row`,
    );
    return m;
  };
  console.log(`${N} rows an insert, median of ${REPS}`);
  await round('as the service writes (both triggers, three indexes)');
  await direct.unsafe('alter table usage_intervals disable trigger ngsci_reads_insert');
  await round('without the read-cache notify trigger');
  await direct.unsafe('alter table usage_intervals disable trigger usage_totals_insert');
  await round('without it and the per-day totals trigger');
  await direct.unsafe('drop index usage_intervals_user_start');
  await round('without both triggers and the (user, start) index');
  await direct.end();
} finally {
  await database.close();
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}
