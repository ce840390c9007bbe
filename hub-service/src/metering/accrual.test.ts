/**
 * A plan changed while usage is priced but not written yet (NGSCI_METER_ACCRUE_EVERY): what ran
 * before the meter saw the change stays at the old multiplier; the new one applies from the cycle
 * that saw it on. The ledger, recomputed, still has every second once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryDatabase, type Database } from '../db/client.js';
import type { InstanceRow } from '../instances/store.js';
import { Accrual } from './accrual.js';
import type { CycleReport, MeterSnapshot, PlanLookup } from './cycle.js';
import { Ledger } from './ledger.js';
import { intervalMicros } from './money.js';

let database: Database;
before(async () => {
  database = await openMemoryDatabase();
  await database.migrate();
});
after(async () => database.close());

const T0 = new Date('2026-03-02T10:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const RATE = 3_600_000;

const instance = {
  id: '00000000-0000-4000-8000-000000000001',
  userName: 'ada',
  serverName: 'default',
  sizeId: 'cpu-small',
  cloud: 'local',
  region: 'local',
  spot: false,
  listRatePerHourMicros: RATE,
  readyAt: T0,
  stoppedAt: null,
  state: 'running',
} as unknown as InstanceRow;

function snapshot(now: Date, multiplierPpm: number): MeterSnapshot {
  const plans: PlanLookup = { planOf: () => ({ id: 'partner', multiplierPpm }) };
  return {
    now,
    active: [instance],
    running: [instance],
    metered: [instance],
    plans,
    classOf: () => 'cpu',
    groupsOf: () => [],
    lastActivity: () => null,
    quotas: [],
    limitsOf: () => {
      throw new Error('not used');
    },
  };
}

const report = () => ({ streams: 0, rowsWritten: 0 }) as unknown as CycleReport;

test('a plan change is billed from the cycle that saw it, never before', async () => {
  const ledger = new Ledger(database.db);
  const accrual = new Accrual(ledger, {
    accrueEverySeconds: 60,
    activeWindowSeconds: 300,
    homeGb: 0,
    homeGbMonthMicros: 0,
    storageEverySeconds: 300,
  });
  // cycles every 15 s: rows are written at most once a minute
  for (const s of [15, 30, 45, 60, 75, 90]) await accrual.run(snapshot(at(s), 1_000_000), report());
  // the admin halves the plan between the cycles at 90 s and 105 s
  for (const s of [105, 120, 135, 150, 165, 180])
    await accrual.run(snapshot(at(s), 500_000), report());

  const all = (await database.db.query.usageIntervals.findMany({
    orderBy: (u, { asc }) => [asc(u.startedAt)],
  })) as Array<{
    startedAt: Date;
    endedAt: Date;
    billedFrom: number;
    billedTo: number;
    multiplierPpm: number;
    amountMicros: number;
  }>;
  for (const r of all) {
    if (r.endedAt <= at(90))
      assert.equal(r.multiplierPpm, 1_000_000, `${r.startedAt.toISOString()}: before the change`);
    if (r.startedAt >= at(90))
      assert.equal(r.multiplierPpm, 500_000, `${r.startedAt.toISOString()}: after the change`);
    assert.equal(
      r.amountMicros,
      intervalMicros(RATE, r.billedFrom, r.billedTo, r.multiplierPpm, 3600),
    );
  }
  // the part priced at 75 and 90 s but not written was written at the old plan, up to 90 s
  assert.ok(
    all.some((r) => r.endedAt.getTime() === at(90).getTime() && r.multiplierPpm === 1_000_000),
    'the unwritten part before the change, at the old plan',
  );
  for (let i = 1; i < all.length; i++) {
    assert.equal(all[i]!.startedAt.getTime(), all[i - 1]!.endedAt.getTime());
    assert.equal(all[i]!.billedFrom, all[i - 1]!.billedTo);
  }
  assert.equal(all[0]!.startedAt.getTime(), T0.getTime());
  // written once a minute: the last write was at 150 s (the minute after the split at 90 s)
  assert.equal(all.at(-1)!.endedAt.getTime(), at(150).getTime());
});
