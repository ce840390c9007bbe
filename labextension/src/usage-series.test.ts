import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dollarTicks, stack, usageTable } from './usage-series';

const FROM = Date.parse('2026-11-01T00:00:00Z');
const point = (day: number, size: string, amountMicros: number, seconds = 3600) => ({
  start: new Date(FROM + day * 86_400_000).toISOString(),
  size,
  seconds,
  activeSeconds: seconds,
  idleSeconds: 0,
  amountMicros,
});

test('usage becomes one column per day with gaps as zero, and totals per size, costliest first', () => {
  const t = usageTable(
    {
      series: [
        point(0, 'cpu-small', 96_000),
        point(2, 'gpu-t4', 526_000, 3600),
        point(2, 'cpu-small', 48_000, 1800),
        point(40, 'cpu-small', 1),
      ],
    },
    FROM,
    3,
  );
  assert.deepEqual(t.sizes, ['cpu-small', 'gpu-t4']);
  assert.deepEqual(t.cost, [
    [96_000, 0, 48_000],
    [0, 0, 526_000],
  ]);
  assert.equal(t.days.length, 3);
  assert.equal(t.days[1], (FROM + 86_400_000) / 1000);
  assert.deepEqual(t.totals, [
    { size: 'gpu-t4', seconds: 3600, micros: 526_000 },
    { size: 'cpu-small', seconds: 5400, micros: 144_000 },
  ]);
  assert.deepEqual(stack(t.cost), [
    [96_000, 0, 48_000],
    [96_000, 0, 574_000],
  ]);
});

test('axis labels keep the decimals the spacing needs', () => {
  assert.deepEqual(dollarTicks([0, 0.002, 0.004]), ['$0.000', '$0.002', '$0.004']);
  assert.deepEqual(dollarTicks([0, 0.5, 1]), ['$0.0', '$0.5', '$1.0']);
  assert.deepEqual(dollarTicks([0, 10, 20]), ['$0', '$10', '$20']);
});
