/**
 * One meter cycle over 1,000, 10,000 (and, with `--sizes …,100000`, 100,000) active servers, side
 * by side with jupyterhub-idle-culler scanning the same recorded hub response in the same run. The
 * recorded hub (fakehub.ts) runs in a process of its own and paginates as JupyterHub does. The ngsci cycle is the whole cycle:
 * read every page of the hub's users, accrue usage for every running instance into Postgres
 * (127.0.0.1:5432, a database of its own), reconcile, check budgets and take the culling decisions
 * (the meter's phases, as metering/index.ts buildMeter wires them for the service).
 *
 * Memory is printed per size: the meter process's RSS and V8 heap after its cycles, and its peak
 * RSS (which includes seeding the instances).
 *
 *   npm run meter -w @ngsci/bench [-- --sizes 1000,10000,100000 --reps 5] [--no-peer] [--no-worst]
 *     [--profile <prefix>]   a V8 CPU profile of the timed cycles: <prefix>-<servers>-<accrue every>.cpuprofile
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { openDatabase, seed } from '../../hub-service/src/db/client.js';
import { instances } from '../../hub-service/src/db/schema.js';
import { HubClient } from '../../hub-service/src/hub.js';
import { createLogger } from '../../hub-service/src/logger.js';
import { InstanceStore } from '../../hub-service/src/instances/store.js';
import { runningInstance } from './seed-rows.js';
import type { Lifecycle } from '../../hub-service/src/instances/lifecycle.js';
import { buildCatalog } from '../../hub-service/src/catalog.js';
import { Ledger } from '../../hub-service/src/metering/ledger.js';
import { buildMeter } from '../../hub-service/src/metering/index.js';
import type { MeterSettings } from '../../hub-service/src/metering/meter.js';
import { PriceBook } from '../../hub-service/src/metering/prices.js';
import { Quotas } from '../../hub-service/src/metering/quotas.js';
import { Orphans } from '../../hub-service/src/reconcile/orphans.js';
import { spawnFakeHub } from './fakehub.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const PG = process.env.NGSCI_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const sizes = arg('sizes', '1000,10000').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const peer = !process.argv.includes('--no-peer');
const worstCase = !process.argv.includes('--no-worst');
/** --profile <prefix>: a V8 CPU profile of the timed cycles only (not the seeding), per size and mode */
const profilePrefix = arg('profile', '');
const mb = (b: number) => Math.round(b / 1048576);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** how busy the machine was: the other work on it slows both sides */
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `ngsci_bench_meter_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(PG);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

/**
 * `accrueEvery` 60 is the default steady state: the meter runs every 15 s (a clock the bench moves
 * 15 s a cycle) and a stream is written once a minute, so a cycle writes about a quarter of the
 * streams (ready times are spread over a minute). 0 writes every stream every cycle: the worst case.
 */
async function ngsciCycle(
  n: number,
  hubUrl: string,
  dbUrl: string,
  accrueEvery: number,
): Promise<{
  ms: number[];
  /** the meter process's own CPU time per cycle (Postgres's and the hub's are not in it) */
  cpuMs: number[];
  rows: number[];
  hubServers: number;
  memory: { rssMb: number; heapUsedMb: number; heapRetainedMb: number };
}> {
  const database = await openDatabase({ url: dbUrl, dataDir: '/tmp' });
  await database.migrate();
  await seed(database.db);
  const start = Date.now();
  let clock = start;
  for (let i = 0; i < n; i += 1000) {
    await database.db.insert(instances).values(
      Array.from({ length: Math.min(1000, n - i) }, (_, k) => {
        const name = `user${String(i + k).padStart(5, '0')}`;
        // ready within the last minute, spread over it: streams come due in a staggered way, as in life
        const readyAt = new Date(start - ((i + k) % 60) * 1000 - 500);
        return runningInstance(name, readyAt);
      }),
    );
  }
  const logger = createLogger('silent');
  const hub = new HubClient({ apiUrl: `${hubUrl}/hub/api`, token: 'bench-token' });
  const catalog = buildCatalog({ clouds: ['local'], defaultCloud: 'local' });
  const ledger = new Ledger(database.db);
  const settings: MeterSettings = {
    intervalSeconds: 15,
    accrueEverySeconds: accrueEvery,
    budgetGraceSeconds: 300,
    activeWindowSeconds: 300,
    homeGb: 10,
    homeGbMonthMicros: 80_000,
    storageEverySeconds: 300,
    defaultPlan: 'private',
    // culling decided every cycle (the worst case); the servers are active, so nobody is culled
    cull: {
      enabled: true,
      everySeconds: 0,
      warningSeconds: 300,
      idleTimeoutCpuSeconds: 3600,
      idleTimeoutGpuSeconds: 1800,
      maxAgeSeconds: 0,
    },
  };
  const store = new InstanceStore(database.db);
  const lifecycle = {
    stop: async () => {
      throw new Error('nothing should stop');
    },
    bridgeStop: async () => {
      throw new Error('nothing should stop');
    },
  } as unknown as Lifecycle;
  const prices = new PriceBook(database.db, () => catalog);
  const meter = buildMeter(
    {
      ledger,
      prices,
      catalog: () => catalog,
      quotas: new Quotas({
        db: database.db,
        ledger,
        hub,
        catalog: () => catalog,
        defaults: settings.cull,
        settings,
      }),
      settings,
    },
    {
      db: database.db,
      hub,
      logger,
      store,
      lifecycle,
      notifier: { send: async () => {} },
      orphans: new Orphans({ store, lifecycle, logger, graceSeconds: 120 }),
      kernels: async () => 'idle',
      now: () => new Date(clock),
    },
  );
  await meter.cycle(); // warm-up: the first cycle also accrues every home volume (written every 5 min)
  const ms: number[] = [];
  const cpuMs: number[] = [];
  const rows: number[] = [];
  let hubServers = 0;
  const session = profilePrefix ? new Session() : null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  for (let r = 0; r < reps; r++) {
    clock += 15_000; // one meter interval of usage to accrue
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const report = await meter.cycle();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
    rows.push(report.rowsWritten);
    if (process.env.NGSCI_BENCH_PHASES)
      console.error(JSON.stringify({ ...report.phases, ...ledger.lastTimings }));
    hubServers = report.hubServers;
    if (report.hubError) console.error(`  hub error in a cycle: ${report.hubError}`);
  }
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    const file = `${profilePrefix}-${n}-${accrueEvery}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.error(`  CPU profile of the timed cycles: ${file}`);
    session.disconnect();
  }
  // what the meter keeps between cycles (with --expose-gc, as `npm run meter` runs it): the heap
  // after a full collection; RSS is what the process holds from the OS, garbage included
  const m = process.memoryUsage();
  (globalThis as { gc?: () => void }).gc?.();
  const memory = {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapRetainedMb: mb(process.memoryUsage().heapUsed),
  };
  await database.close();
  return { ms, cpuMs, rows, hubServers, memory };
}

/** The culler runs as its own process (the fake hub lives in this one, so never block it). */
async function cullerScan(hubUrl: string): Promise<number[]> {
  const { stdout: out } = await promisify(execFile)(
    join(ROOT, '.venv/bin/python'),
    [join(ROOT, 'bench/meter/idle_culler_once.py'), `${hubUrl}/hub/api`, String(reps)],
    { encoding: 'utf8' },
  );
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { ms: number[] }).ms;
}

const results = [];
for (const n of sizes) {
  const fake = await spawnFakeHub(n);
  const steady = await withDatabase((url) => ngsciCycle(n, fake.url, url, 60));
  const culler = peer ? await cullerScan(fake.url) : [NaN];
  const worst = worstCase
    ? await withDatabase((url) => ngsciCycle(n, fake.url, url, 0))
    : { ...steady, ms: [NaN], cpuMs: [NaN], rows: [NaN] };
  await fake.close();
  const a = median(steady.ms);
  const w = median(worst.ms);
  const b = median(culler);
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  results.push({
    servers: n,
    ngsciCycleMs: Math.round(a),
    ngsciCycleEveryRowMs: Math.round(w),
    ngsciCycleCpuMs: Math.round(median(steady.cpuMs)),
    ngsciCycleEveryRowCpuMs: Math.round(median(worst.cpuMs)),
    idleCullerScanMs: Math.round(b),
    cullerOverNgsci: Math.round((b / a) * 100) / 100,
    rowsPerCycle: median(steady.rows),
    rowsPerCycleWorst: median(worst.rows),
    memory: steady.memory,
    memoryWorst: worst.memory,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  });
  console.log(
    `${n} servers (${steady.hubServers} read from the hub each cycle; load average now ${load()}):`,
  );
  console.log(
    `  ngsci meter cycle, default settings   p50 ${a.toFixed(0)} ms  (${fmt(steady.ms)}; rows written ${steady.rows.join(', ')}; meter CPU ${fmt(steady.cpuMs)} ms)`,
  );
  console.log(
    `  ngsci meter cycle, every stream written p50 ${w.toFixed(0)} ms  (${fmt(worst.ms)}; rows written ${worst.rows.join(', ')}; meter CPU ${fmt(worst.cpuMs)} ms)`,
  );
  console.log(`  jupyterhub-idle-culler scan            p50 ${b.toFixed(0)} ms  (${fmt(culler)})`);
  console.log(
    `  ratio culler / ngsci: ${(b / a).toFixed(2)}× (default), ${(b / w).toFixed(2)}× (every stream written)`,
  );
  console.log(
    `  meter process memory after its cycles: RSS ${steady.memory.rssMb} MB, heap used ${steady.memory.heapUsedMb} MB, ` +
      `${steady.memory.heapRetainedMb} MB after a full GC (every stream written: RSS ${worst.memory.rssMb} MB, ` +
      `heap ${worst.memory.heapUsedMb} MB, ${worst.memory.heapRetainedMb} MB after GC); ` +
      `peak RSS so far ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`,
  );
}
console.log(JSON.stringify({ bench: 'meter', node: process.version, reps, results }));
