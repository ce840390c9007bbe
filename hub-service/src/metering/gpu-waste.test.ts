/**
 * GPU money wasted (issue 15, part 3) on Postgres (127.0.0.1:5432) and PGlite: recorded nvidia-smi
 * sequences (busy, idle, mixed, multi-GPU, [N/A], a silent agent, a repeated sample) turned into
 * idle seconds and µ$ by the meter phase, kept per user, group and day by the triggers, never
 * counted twice when a cycle is replayed or the service restarts; then the same figures through
 * the real app: GET /usage, a statement and the admin ranking.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { formatGpuIdle, gpuSampleIdle, type GpuSample } from '@ngsci/contract';
import { openMemoryDatabase, type Database } from '../db/client.js';
import { gpuSamples } from '../db/schema.js';
import type { HubClient } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import { Orphans } from '../reconcile/orphans.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import { GpuWaste, idleRowsFor, type GpuStream } from './gpu-waste.js';
import { buildMeter } from './index.js';
import { HOUR, intervalMicros } from './money.js';

// recorded `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total
// --format=csv,noheader,nounits` readings, one string per sample
const T4_IDLE = '0, Tesla T4, 0, 312, 15360';
const T4_LOW = '0, Tesla T4, 4, 1203, 15360'; // below 5 %: idle
const T4_AT = '0, Tesla T4, 5, 1203, 15360'; // at the threshold: not idle
const T4_BUSY = '0, Tesla T4, 87, 10240, 15360';
const T4_NA = '0, Tesla T4, [N/A], 312, 15360'; // no reading: unknown, never idle
const A100X2_IDLE = '0, NVIDIA A100-SXM4-40GB, 0, 4, 40960\n1, NVIDIA A100-SXM4-40GB, 2, 4, 40960';
const A100X2_MIXED =
  '0, NVIDIA A100-SXM4-40GB, 0, 4, 40960\n1, NVIDIA A100-SXM4-40GB, 93, 30112, 40960';

/** The agent's parsing of those lines (cli/src/agent/gpu.ts), enough for the fixtures. */
function parse(csv: string): GpuSample[] {
  return csv.split('\n').map((line) => {
    const [index, name, util, used, total] = line.split(',').map((s) => s.trim());
    const n = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : null);
    return {
      index: Number(index),
      name: name!,
      utilizationPercent: n(util),
      memoryUsedMiB: n(used),
      memoryTotalMiB: n(total),
    };
  });
}

// ready at 23:30 on the last day of May: the hour crosses midnight and the month
const T0 = new Date('2026-05-31T23:30:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const MAY = [new Date('2026-05-01T00:00:00Z'), new Date('2026-06-01T00:00:00Z')] as const;
const JUNE = [new Date('2026-06-01T00:00:00Z'), new Date('2026-07-01T00:00:00Z')] as const;
const BOTH = [MAY[0], JUNE[1]] as const;

/** seconds after T0 → reading: ada's T4 and bob's two A100s, every 30 s as the agent reports. */
function adaSequence(): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  // 0-20 min idle (0 % and 4 %), 20-40 min busy (one reading exactly at 5 %), 40-45 min [N/A]
  for (let s = 30; s <= 1200; s += 30) out.push([s, s % 60 ? T4_IDLE : T4_LOW]);
  for (let s = 1230; s <= 2400; s += 30) out.push([s, s === 1800 ? T4_AT : T4_BUSY]);
  for (let s = 2430; s <= 2700; s += 30) out.push([s, T4_NA]);
  // the agent is silent 10 minutes; its next sample stands for 90 s (the span), not 600 s
  for (let s = 3300; s <= 3600; s += 30) out.push([s, T4_IDLE]);
  // the same report twice (a retried POST that landed both times)
  out.push([3600, T4_IDLE]);
  return out;
}
const ADA = { idle: 1200 + 90 + 300, sampled: 1200 + 1200 + 90 + 300 };
const ADA_MAY_IDLE = 1200;

function bobSequence(): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let s = 30; s <= 900; s += 30) out.push([s, A100X2_IDLE]);
  for (let s = 930; s <= 1800; s += 30) out.push([s, A100X2_MIXED]);
  return out;
}
const BOB = { idle: 900, sampled: 1800 };

const ADA_RATE = 526_000;
const BOB_RATE = 4_100_000;
const BOB_PPM = 500_000; // bob's plan halves the list price

test('the definition: every GPU below the threshold; a missing reading is never idle', () => {
  assert.equal(gpuSampleIdle(parse(T4_IDLE), 5), true);
  assert.equal(gpuSampleIdle(parse(T4_LOW), 5), true);
  assert.equal(gpuSampleIdle(parse(T4_AT), 5), false);
  assert.equal(gpuSampleIdle(parse(T4_BUSY), 5), false);
  assert.equal(gpuSampleIdle(parse(T4_NA), 5), null);
  assert.equal(gpuSampleIdle(parse(A100X2_IDLE), 5), true);
  assert.equal(gpuSampleIdle(parse(A100X2_MIXED), 5), false);
  assert.equal(gpuSampleIdle([], 5), null);
  assert.equal(
    formatGpuIdle({ idleSeconds: 11_520, idleMicros: 8_400_000 }),
    'idle GPU: 3.2 h, $8.40',
  );
});

test('rows: whole seconds, split at UTC hours, a sample after the stop ignored', () => {
  const s: GpuStream = {
    key: 'k',
    user: 'ada',
    groups: [],
    instanceId: '00000000-0000-4000-8000-000000000001',
    server: 'default',
    size: 'gpu-t4',
    planId: 'p',
    multiplierPpm: 1_000_000,
    rateMicros: 3_600_000,
    ratePeriodSeconds: HOUR,
    anchor: at(0),
    closeAt: at(2000),
  };
  const samples = [
    ...adaSequence().map(([t, csv]) => ({ at: at(t), gpus: parse(csv) })),
    { at: at(2000.5), gpus: parse(T4_IDLE) },
  ];
  const rows = idleRowsFor(s, null, samples, at(5000), { idlePercent: 5, sampleSpanSeconds: 90 });
  // [23:30, 00:00) and [00:00, the last sample before the stop]
  assert.deepEqual(
    rows.map((r) => [r.startedAt, r.endedAt, r.idleSeconds, r.sampledSeconds]),
    [
      [at(0), at(1800), 1200, 1800],
      [at(1800), at(1980), 0, 180],
    ],
  );
  // $3.60/h: one µ$ per idle second, with cumulative rounding
  assert.deepEqual(
    rows.map((r) => [r.idleFrom, r.idleTo, r.amountMicros]),
    [
      [0, 1200, 1_200_000],
      [1200, 1200, 0],
    ],
  );
});

/** The meter phase's figures on one database; `second` opens another pool (a restarted service). */
function scenario(
  name: string,
  open: () => Promise<{
    first: Database;
    second: () => Promise<Database>;
    close: () => Promise<void>;
  }>,
) {
  describe(`${name}: the meter phase, replays, a restart, the totals`, () => {
    let db: Database;
    let second: () => Promise<Database>;
    let close = async () => {};
    const streams: GpuStream[] = [
      {
        key: '00000000-0000-4000-8000-0000000000a1',
        user: 'ada',
        groups: ['lab', 'physics'],
        instanceId: '00000000-0000-4000-8000-0000000000a1',
        server: 'default',
        size: 'gpu-t4',
        planId: 'private',
        multiplierPpm: 1_000_000,
        rateMicros: ADA_RATE,
        ratePeriodSeconds: HOUR,
        anchor: T0,
        closeAt: null,
      },
      {
        key: '00000000-0000-4000-8000-0000000000b1',
        user: 'bob',
        groups: ['lab'],
        instanceId: '00000000-0000-4000-8000-0000000000b1',
        server: 'train',
        size: 'gpu-a100x2',
        planId: 'half',
        multiplierPpm: BOB_PPM,
        rateMicros: BOB_RATE,
        ratePeriodSeconds: HOUR,
        anchor: T0,
        closeAt: null,
      },
    ];
    before(async () => {
      ({ first: db, second, close } = await open());
      const values = [
        ...adaSequence().map(([t, csv]) => ['ada', streams[0]!.key, t, csv] as const),
        ...bobSequence().map(([t, csv]) => ['bob', streams[1]!.key, t, csv] as const),
      ].map(([user, id, t, csv]) => ({
        userName: user,
        serverName: 'default',
        instanceId: id,
        gpus: parse(csv),
        at: at(t),
      }));
      await db.db.insert(gpuSamples).values(values);
    });
    after(async () => close());

    async function assertExact(waste: GpuWaste, what: string) {
      assert.deepEqual(await waste.totalsDrift(), [], `${what}: totals differ from the rows`);
      for (const user of ['ada', 'bob'])
        for (const [from, to] of [MAY, JUNE, BOTH])
          assert.deepEqual(
            await waste.userIdle(user, from, to),
            await waste.userIdleFromRows(user, from, to),
            `${what}: ${user} ${from.toISOString()}`,
          );
    }

    test('cycles, replays and a restarted service count each idle second once', async () => {
      const waste = new GpuWaste(db.db, { idlePercent: 5, sampleSpanSeconds: 90 });
      for (const s of [300, 1020, 1860, 1860, 2700, 3630]) await waste.accrue(streams, at(s));
      // the same cycle again, and a service that restarted (a new pool, nothing in memory)
      assert.equal(await waste.accrue(streams, at(3630)), 0);
      const restarted = new GpuWaste((await second()).db, {
        idlePercent: 5,
        sampleSpanSeconds: 90,
      });
      assert.equal(await restarted.accrue(streams, at(3630)), 0);
      // two replicas at once: each row once
      await Promise.all([waste.accrue(streams, at(3640)), restarted.accrue(streams, at(3640))]);
      // ada's server stops at 3605 s; her agent's sample at 3700 s is not billed time
      await db.db.insert(gpuSamples).values({
        userName: 'ada',
        serverName: 'default',
        instanceId: streams[0]!.key,
        gpus: parse(T4_IDLE),
        at: at(3700),
      });
      const stopped = streams.map((s) => (s.user === 'ada' ? { ...s, closeAt: at(3605) } : s));
      await restarted.accrue(stopped, at(2 * 3600));
      await waste.accrue(stopped, at(2 * 3600));
      await assertExact(waste, 'after cycles and replays');

      const ada = await waste.userIdle('ada', ...BOTH);
      assert.deepEqual(ada, {
        idleSeconds: ADA.idle,
        sampledSeconds: ADA.sampled,
        idleMicros: intervalMicros(ADA_RATE, 0, ADA.idle, 1_000_000, HOUR),
        thresholdPercent: 5,
      });
      assert.equal(ada.idleMicros, 232_317); // 1590 s at $0.526/h
      assert.equal((await waste.userIdle('ada', ...MAY)).idleSeconds, ADA_MAY_IDLE);
      const bob = await waste.userIdle('bob', ...BOTH);
      assert.deepEqual(bob, {
        idleSeconds: BOB.idle,
        sampledSeconds: BOB.sampled,
        idleMicros: 512_500, // 900 s at $4.10/h × 0.5
        thresholdPercent: 5,
      });

      const may = await waste.ranking(...MAY, 10);
      assert.deepEqual(
        may.users.map((u) => [u.name, u.idleSeconds, u.idleMicros]),
        [
          ['bob', 900, 512_500],
          ['ada', 1200, intervalMicros(ADA_RATE, 0, 1200, 1_000_000, HOUR)],
        ],
      );
      assert.deepEqual(
        may.groups.map((g) => [g.name, g.idleSeconds]),
        [
          ['lab', 2100],
          ['physics', 1200],
        ],
      );
      assert.equal(may.totalIdleMicros, may.users[0]!.idleMicros + may.users[1]!.idleMicros);
    });

    test('a running instance is written every NGSCI_METER_ACCRUE_EVERY, a stopped one at once', async () => {
      const key = '00000000-0000-4000-8000-0000000000c1';
      await db.db.insert(gpuSamples).values(
        [60, 120, 180, 240].map((t) => ({
          userName: 'cy',
          serverName: 'default',
          instanceId: key,
          gpus: parse(T4_IDLE),
          at: at(t),
        })),
      );
      const s: GpuStream = { ...streams[0]!, key, instanceId: key, user: 'cy', groups: [] };
      const waste = new GpuWaste(db.db, { everySeconds: 600 });
      assert.equal(await waste.accrue([s], at(300)), 0);
      assert.equal(await waste.accrue([{ ...s, closeAt: at(250) }], at(300)), 1);
      assert.equal((await waste.userIdle('cy', ...BOTH)).idleSeconds, 240);
    });

    test('an admin deletes rows by hand: the totals follow', async () => {
      const waste = new GpuWaste(db.db);
      await db.db.execute(sql`delete from gpu_idle_intervals where user_name = 'bob'`);
      await assertExact(waste, 'after a hand delete');
      assert.equal((await waste.userIdle('bob', ...BOTH)).idleSeconds, 0);
      assert.deepEqual(
        (await waste.ranking(...MAY, 10)).users.map((u) => u.name),
        ['ada', 'cy'],
      );
    });
  });
}

scenario('on Postgres', async () => {
  const pg = await freshPostgres('ngsci_gpu_waste');
  return { first: await pg.open(), second: () => pg.open(), close: () => pg.drop() };
});
scenario('on PGlite', async () => {
  const lite = await openMemoryDatabase();
  await lite.migrate();
  return { first: lite, second: async () => lite, close: () => lite.close() };
});

describe('through the app: the meter cycle, GET /usage, a statement, the admin ranking', () => {
  let pg: FreshPostgres;
  let h: Harness;
  before(async () => {
    pg = await freshPostgres('ngsci_gpu_waste_app');
    h = await harness({ database: await pg.open(), env: { NGSCI_HOME_GB: '0' } });
  });
  after(async () => {
    await h?.close();
    await pg?.drop();
  });

  test('idle GPU seconds and dollars on every API surface, once', async () => {
    const gpu = await h.runningInstance('ada', { size: 'gpu-t4', rate: ADA_RATE, readyAt: T0 });
    const cpu = await h.runningInstance('ada', { size: 'cpu-small', readyAt: T0, server: 'cpu' });
    await h.database.db.insert(gpuSamples).values([
      ...adaSequence().map(([t, csv]) => ({
        userName: 'ada',
        serverName: 'default',
        instanceId: gpu.id,
        gpus: parse(csv),
        at: at(t),
      })),
      // a CPU server's agent reports no GPU: nothing is idle there
      { userName: 'ada', serverName: 'cpu', instanceId: cpu.id, gpus: [], at: at(600) },
    ]);
    let now = at(40 * 60);
    const lifecycle = {
      stop: async () => null,
      bridgeStop: async () => null,
    } as unknown as Lifecycle;
    const meter = () =>
      buildMeter(h.services.metering, {
        db: h.database.db,
        hub: { listActiveUsers: async () => [] } as unknown as HubClient,
        logger: h.services.logger,
        store: h.services.store,
        lifecycle,
        notifier: { send: async () => {} },
        orphans: new Orphans({
          store: h.services.store,
          lifecycle,
          logger: h.services.logger,
          graceSeconds: 60,
        }),
        kernels: async () => 'unknown' as const,
        settings: {
          ...h.services.metering.settings,
          cull: { ...h.services.metering.settings.cull, enabled: false },
        },
        now: () => now,
      });
    const first = meter();
    await first.cycle();
    await first.cycle();
    now = at(2 * 3600);
    await first.cycle();
    // a restarted service: a new meter reads where the idle rows end
    await meter().cycle();
    h.services.metering.now = () => now;

    const token = h.token({ name: 'ada', groups: ['lab'] });
    const res = await h.request(
      `/api/v1/usage?from=${MAY[0].toISOString()}&to=${JUNE[1].toISOString()}&granularity=month`,
      { token },
    );
    assert.equal(res.status, 200);
    const usage = (await res.json()) as { gpuIdle: unknown };
    const expected = {
      idleSeconds: ADA.idle,
      sampledSeconds: ADA.sampled,
      idleMicros: 232_317,
      thresholdPercent: 5,
    };
    assert.deepEqual(usage.gpuIdle, expected);

    const st = await h.request('/api/v1/billing/statements/2026-06', { token });
    assert.equal(st.status, 200);
    const june = (await st.json()) as {
      gpuIdle: { idleSeconds: number; sampledSeconds: number; idleMicros: number };
    };
    assert.equal(june.gpuIdle.idleSeconds, ADA.idle - ADA_MAY_IDLE);
    // the CSV statement's total row carries the same figure (statements.ts)
    const csv = await h.request('/api/v1/billing/statements/2026-06?format=csv', { token });
    const [head, ...rows] = (await csv.text())
      .trim()
      .split('\r\n')
      .map((r) => r.split(','));
    const total = Object.fromEntries(head!.map((k, i) => [k, rows.at(-1)![i]]));
    assert.deepEqual(
      [total.kind, total.gpu_idle_seconds, total.gpu_sampled_seconds, total.gpu_idle_micros],
      [
        'total',
        ...[june.gpuIdle.idleSeconds, june.gpuIdle.sampledSeconds, june.gpuIdle.idleMicros].map(
          String,
        ),
      ],
    );

    const admin = h.token({ name: 'boss', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
    const ranked = await h.request('/api/v1/admin/gpu-waste?month=2026-05', { token: admin });
    assert.equal(ranked.status, 200);
    const body = (await ranked.json()) as { users: Array<{ name: string; idleSeconds: number }> };
    assert.deepEqual(
      body.users.map((u) => [u.name, u.idleSeconds]),
      [['ada', ADA_MAY_IDLE]],
    );
    // researchers may not read the ranking; a bad month is refused with a code
    assert.equal((await h.request('/api/v1/admin/gpu-waste', { token })).status, 403);
    const bad = await h.request('/api/v1/admin/gpu-waste?month=2026-13', { token: admin });
    assert.equal(bad.status, 400);
  });
});
