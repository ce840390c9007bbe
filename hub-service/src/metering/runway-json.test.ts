/**
 * GET /budget's runway as the read cache answers it (budgets.ts runwayJson, from a template kept
 * per user): the same bytes as the runway built as objects and serialised, for every state the
 * budgets' spend can be in — no budget, money left, a spent soft and hard budget, a group's
 * budget the tightest — with quota refusals, GPU hours used up, spot prices, simulated offers, a
 * plan multiplier, and remainders large enough to leave the float fast path; and the JSON kept
 * for one spend is not answered for another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCatalog } from '../catalog.js';
import { runwayJson, runwayRows, runwayTemplate } from './budgets.js';

const catalog = buildCatalog({ clouds: ['local'], defaultCloud: 'local', simulateGpus: true });
const limits = {
  allowedSizes: null,
  forbiddenSizes: [{ entry: 'cpu-large', reason: "not allowed for your group 'students'" }],
  gpuHoursPerMonth: 10,
  idleTimeoutCpuSeconds: 3600,
  idleTimeoutGpuSeconds: 1800,
};
const budget = (
  kind: 'user' | 'group' | 'default',
  name: string,
  budgetMicros: number,
  spentMicros: number,
  hardStop = false,
) => ({ kind, name, budgetMicros, spentMicros, hardStop });

test('the runway from its template is the same JSON as the objects, in every spend state', () => {
  const spends = [
    [],
    [budget('user', 'ada', 5_000_000, 1_234_567)],
    [budget('user', 'ada', 5_000_000, 5_000_001)],
    [budget('user', 'ada', 5_000_000, 5_000_000, true)],
    [budget('user', 'ada', 9e9, 1), budget('group', 'lab', 2_000_000, 1_999_999, true)],
    [budget('group', 'lab "quoted"', 1_000_000, 2_000_000, true), budget('default', 'x', 1, 0)],
    // remainders × 3600 past 2^52: the exact integer division of BigInt
    [budget('user', 'ada', 4e12, 1)],
    [budget('user', 'ada', Number.MAX_SAFE_INTEGER, 7)],
  ];
  let checked = 0;
  for (const multiplierPpm of [1_000_000, 650_000, 0])
    for (const gpuSecondsUsed of [0, 10 * 3600]) {
      const t = runwayTemplate({ catalog, limits, multiplierPpm, gpuSecondsUsed });
      assert.ok(t.choices.some((c) => c.simulated) && t.choices.some((c) => c.spot));
      for (const budgets of spends) {
        const rows = runwayRows(t, budgets);
        assert.equal(runwayJson(t, budgets), JSON.stringify(rows));
        // again: from the JSON kept for this spend
        assert.equal(runwayJson(t, budgets), JSON.stringify(rows));
        checked++;
      }
    }
  assert.equal(checked, 48);
});

test('the runway seconds are whole seconds of the remaining budget at each rate', () => {
  const t = runwayTemplate({ catalog, limits, multiplierPpm: 1_000_000, gpuSecondsUsed: 0 });
  const rows = runwayRows(t, [budget('user', 'ada', 1_000_000, 96_001)]);
  const small = rows.find((r) => r.size === 'cpu-small' && !r.spot)!;
  // $0.903999 left at $0.096/h: 33,899.9625 s
  assert.equal(small.rateMicrosPerHour, 96_000);
  assert.equal(small.runwaySeconds, Math.floor((903_999 * 3600) / 96_000));
  assert.equal(small.runwaySeconds, 33_899);
  const big = runwayRows(t, [budget('user', 'ada', Number.MAX_SAFE_INTEGER, 0)]);
  const bigSmall = big.find((r) => r.size === 'cpu-small' && !r.spot)!;
  assert.equal(bigSmall.runwaySeconds, Number((BigInt(Number.MAX_SAFE_INTEGER) * 3600n) / 96_000n));
});

test('the JSON kept for one spend is made again for another', () => {
  const t = runwayTemplate({ catalog, limits, multiplierPpm: 1_000_000, gpuSecondsUsed: 0 });
  const a = runwayJson(t, [budget('user', 'ada', 1_000_000, 10)]);
  const b = runwayJson(t, [budget('user', 'ada', 1_000_000, 100_000)]);
  assert.notEqual(a, b);
  assert.equal(b, JSON.stringify(runwayRows(t, [budget('user', 'ada', 1_000_000, 100_000)])));
  const spent = runwayJson(t, [budget('user', 'ada', 1_000_000, 1_000_000, true)]);
  const soft = runwayJson(t, [budget('user', 'ada', 1_000_000, 1_000_000, false)]);
  assert.notEqual(spent, soft, 'a hard stop refuses every choice, a soft one none');
  assert.match(spent, /budget_exhausted/);
  assert.doesNotMatch(soft, /budget_exhausted/);
});
