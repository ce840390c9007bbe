/**
 * The meter's read of the active instances at N running servers (default 10,000), side by side in
 * the same run: every row (`InstanceStore.inStates`, what each cycle read before) and the
 * incremental read (`metering/instance-snapshot.ts`, what a cycle reads now: only the rows changed
 * since the last read, nothing here). Alternated, 7 of each; wall time and this process's CPU.
 * Postgres at 127.0.0.1:5432, a database of its own, dropped afterwards.
 *
 *   npm run meter:snapshot -w @ngsci/bench [-- --servers 100000]
 */
import { ACTIVE_STATES } from '@ngsci/contract';
import { freshPostgres } from '../../hub-service/src/testing/fresh-postgres.js';
import { instances } from '../../hub-service/src/db/schema.js';
import { InstanceStore } from '../../hub-service/src/instances/store.js';
import { InstanceSnapshot } from '../../hub-service/src/metering/instance-snapshot.js';
import { runningInstance } from './seed-rows.js';

const i = process.argv.indexOf('--servers');
const n = i > 0 ? Number(process.argv[i + 1]) : 10_000;
const pg = await freshPostgres('ngsci_bench_snapshot');
try {
  const d = await pg.open();
  const start = Date.now();
  for (let k = 0; k < n; k += 1000)
    await d.db
      .insert(instances)
      .values(
        Array.from({ length: Math.min(1000, n - k) }, (_, j) =>
          runningInstance(`user${String(k + j).padStart(6, '0')}`, new Date(start)),
        ),
      );
  const store = new InstanceStore(d.db);
  const snap = new InstanceSnapshot(d.db, ACTIVE_STATES, 1000);
  await snap.read(); // the first read is a full one
  const runs = {
    every: { ms: [] as number[], cpu: [] as number[] },
    changed: { ms: [] as number[], cpu: [] as number[] },
  };
  const time = async (into: { ms: number[]; cpu: number[] }, read: () => Promise<unknown>) => {
    const c = process.cpuUsage();
    const t = performance.now();
    await read();
    into.ms.push(performance.now() - t);
    const u = process.cpuUsage(c);
    into.cpu.push((u.user + u.system) / 1000);
  };
  for (let r = 0; r < 7; r++) {
    await time(runs.every, () => store.inStates([...ACTIVE_STATES]));
    await time(runs.changed, () => snap.read());
  }
  const median = (xs: number[]) =>
    Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! * 10) / 10;
  console.log(
    `${n} running instances: every row ${median(runs.every.ms)} ms (CPU ${median(runs.every.cpu)} ms); ` +
      `rows changed since the last read ${median(runs.changed.ms)} ms (CPU ${median(runs.changed.cpu)} ms; ${snap.lastRead.rows} rows)`,
  );
} finally {
  await pg.drop();
}
