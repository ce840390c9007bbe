import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Budget, OpenStream } from '@ngsci/contract';
import { NgsciApi } from './api';
import { NgsciModel } from './model';
import { fakeFetch, json } from './testing';

const AS_OF = '2026-11-23T12:00:00.000Z';
const stream = (user: string, rate: number): OpenStream => ({
  key: `i-${user}`,
  kind: 'compute',
  user,
  size: 'cpu-small',
  instanceId: `i-${user}`,
  anchor: '2026-11-23T11:00:00.000Z',
  writtenUntil: '2026-11-23T11:59:00.000Z',
  billedSeconds: 3540,
  rateMicros: rate,
  ratePeriodSeconds: 3600,
  multiplierPpm: 1_000_000,
  closeAt: null,
  minimumSeconds: 60,
});

function budget(): Budget {
  const mine = stream('researcher', 360_000);
  const month = { from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' };
  return {
    user: 'researcher',
    month: '2026-11',
    spentMicros: 1_000_000,
    asOf: AS_OF,
    figures: {
      asOf: AS_OF,
      user: 'researcher',
      today: { from: '2026-11-23T00:00:00.000Z', to: '2026-11-24T00:00:00.000Z', micros: 400_000 },
      month: { ...month, micros: 1_000_000 },
      streams: [mine],
    },
    burnMicrosPerHour: 360_000,
    gpuHoursUsed: 0,
    gpuHoursLimit: null,
    budgets: [
      {
        kind: 'user',
        name: 'researcher',
        budgetMicros: 10_000_000,
        spentMicros: 1_000_000,
        percent: 10,
        hardStop: false,
        burnMicrosPerHour: 360_000,
        exhaustedAt: null,
      },
      {
        kind: 'group',
        name: 'lab',
        budgetMicros: 50_000_000,
        spentMicros: 7_000_000,
        percent: 14,
        hardStop: false,
        burnMicrosPerHour: 360_000,
        exhaustedAt: null,
        // the group's members' open streams: this user's and a colleague's
        streams: [mine, stream('colleague', 720_000)],
      },
    ],
    exhaustedAt: null,
    limits: {
      maxConcurrent: null,
      allowedSizes: null,
      idleTimeoutCpuSeconds: 3600,
      idleTimeoutGpuSeconds: 1800,
      maxAgeSeconds: null,
    },
  };
}

test("budget spent ticks every second: the user's month, and a group's with all its members' streams", async () => {
  const { fetch } = fakeFetch({
    'GET /budget': () => json(200, budget()),
    'GET /billing/statements': () => json(200, { user: 'researcher', statements: [] }),
  });
  let local = Date.parse(AS_OF);
  const model = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => local,
  });
  await model.refreshBilling();
  const [own, group] = model.budget!.budgets;
  assert.equal(model.budgetSpent(own!), 1_000_000);
  assert.equal(model.budgetSpent(group!), 7_000_000);
  local += 10_000;
  // 10 s at $0.36/h is 1,000 µ$; the colleague's $0.72/h adds 2,000 µ$ to the group
  assert.equal(model.budgetSpent(own!), 1_001_000, "the user's budget: spent this month");
  assert.equal(model.budgetSpent(group!), 7_003_000, "the group's: every member's running part");
  assert.equal(model.budgetSpent(own!), model.monthToDate());
});
