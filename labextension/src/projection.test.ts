import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  costSoFar,
  endOfMonthUtc,
  exhaustionAt,
  monthProjection,
  newThresholds,
  percentOf,
  uptimeMs,
} from './projection';

const T0 = Date.parse('2026-11-23T10:00:00Z');

test('cost so far runs from readyAt at the hourly rate, per second, with a 60 s minimum', () => {
  const inst = { readyAt: new Date(T0).toISOString(), ratePerHourMicros: 3_600_000 }; // $3.60/h: 1000 µ$ a second
  assert.equal(costSoFar(inst, T0 + 3_600_000), 3_600_000);
  assert.equal(costSoFar(inst, T0 + 90_000), 90_000);
  assert.equal(costSoFar(inst, T0 + 5_000), 60_000, 'the first minute is always billed');
  assert.equal(
    costSoFar({ readyAt: null, ratePerHourMicros: 3_600_000 }, T0),
    0,
    'nothing before the server answers',
  );
  const stopped = { ...inst, stoppedAt: new Date(T0 + 600_000).toISOString() };
  assert.equal(costSoFar(stopped, T0 + 9_999_999), 600_000, 'a stopped instance stops costing');
  assert.ok(costSoFar(inst, T0 + 61_000) > costSoFar(inst, T0 + 60_000), 'it ticks every second');
  assert.equal(uptimeMs(inst, T0 + 42_000), 42_000);
  assert.equal(uptimeMs({ readyAt: null }, T0), null);
});

test('the month projection adds the burn rate until the month ends, and a resize swaps one rate', () => {
  const now = Date.parse('2026-11-30T22:00:00Z'); // two hours left in November
  assert.equal(endOfMonthUtc(now), Date.parse('2026-12-01T00:00:00Z'));
  assert.equal(
    monthProjection({ spentMicros: 10_000_000, burnMicrosPerHour: 1_000_000, now }),
    12_000_000,
  );
  const bigger = monthProjection({
    spentMicros: 10_000_000,
    burnMicrosPerHour: 1_000_000,
    now,
    replaceRate: { from: 1_000_000, to: 4_000_000 },
  });
  assert.equal(bigger, 18_000_000);
});

test('a budget runs out at the burn rate, unless it lasts the month', () => {
  assert.equal(
    exhaustionAt({
      budgetMicros: 10_000_000,
      spentMicros: 4_000_000,
      burnMicrosPerHour: 2_000_000,
      now: T0,
    }),
    T0 + 3 * 3_600_000,
  );
  assert.equal(
    exhaustionAt({
      budgetMicros: 10_000_000,
      spentMicros: 4_000_000,
      burnMicrosPerHour: 0,
      now: T0,
    }),
    null,
  );
  assert.equal(
    exhaustionAt({
      budgetMicros: 10_000_000,
      spentMicros: 4_000_000,
      burnMicrosPerHour: 1,
      now: T0,
    }),
    null,
    'past the month',
  );
  assert.equal(
    exhaustionAt({
      budgetMicros: 10_000_000,
      spentMicros: 12_000_000,
      burnMicrosPerHour: 5,
      now: T0,
    }),
    T0,
    'already spent',
  );
});

test('thresholds 50/80/100 are each crossed once', () => {
  assert.equal(percentOf(8_100_000, 10_000_000), 81);
  assert.equal(percentOf(1, 0), 100);
  assert.deepEqual(newThresholds(81, new Set()), [50, 80]);
  assert.deepEqual(newThresholds(81, new Set([50, 80])), []);
  assert.deepEqual(newThresholds(130, new Set([50])), [80, 100]);
  assert.deepEqual(newThresholds(49, new Set()), []);
});
