import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatDelta,
  formatDuration,
  formatHours,
  formatMicros,
  formatMonth,
  formatMultiplier,
  formatRate,
  parseDollars,
  parseMultiplier,
} from './format';

test('money reads as dollars, with more digits under a dollar so a live cost visibly moves', () => {
  assert.equal(formatMicros(0), '$0.00');
  assert.equal(formatMicros(1_234_567), '$1.23');
  assert.equal(formatMicros(1_235_000), '$1.24');
  assert.equal(formatMicros(1_234_567_890_123), '$1,234,567.89');
  assert.equal(formatMicros(42_000), '$0.042');
  assert.equal(formatMicros(1_600), '$0.0016');
  // never $0.00 for a non-zero amount (issue 13: the admin panel and a statement showed $0.00)
  assert.equal(formatMicros(1_600, { precise: false }), '< $0.01');
  assert.equal(formatMicros(40), '< $0.0001');
  assert.equal(formatMicros(-2_500_000), '-$2.50');
  assert.equal(formatMicros(Number.NaN), '—');
  assert.equal(formatRate(526_000), '$0.526/h');
  assert.equal(formatRate(23_000), '$0.023/h');
});

test('a difference says its sign', () => {
  assert.equal(formatDelta(12_400_000), '+$12.40');
  assert.equal(formatDelta(-3_100_000), '-$3.10');
  assert.equal(formatDelta(0), '±$0.00');
});

test('an uptime reads in the largest sensible units', () => {
  assert.equal(formatDuration(42_000), '42s');
  assert.equal(formatDuration(5 * 60_000 + 7_000), '5m 07s');
  assert.equal(formatDuration(3 * 3_600_000 + 4 * 60_000), '3h 04m');
  assert.equal(formatDuration(51 * 3_600_000), '2d 3h');
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(-5), '—');
  assert.equal(formatHours(5400), '1.5 h');
  // an Hours column shows hours, not minutes
  assert.equal(formatHours(61), '0.02 h');
  assert.equal(formatMonth('2026-11', 'en-US'), 'November 2026');
});

test('a typed dollar amount becomes integer micro-dollars without a float, and nonsense is refused', () => {
  assert.equal(parseDollars('250'), 250_000_000);
  assert.equal(parseDollars('$1,200.50'), 1_200_500_000);
  assert.equal(parseDollars('0.1'), 100_000);
  assert.equal(parseDollars(' 19.99 '), 19_990_000);
  assert.throws(() => parseDollars('-5'), /not an amount in dollars/);
  assert.throws(() => parseDollars('1e6'), /not an amount/);
  assert.throws(() => parseDollars('0.0000001'), /not an amount/);
});

test('a plan multiplier is typed as a percentage or a factor and kept exactly in parts per million', () => {
  assert.equal(parseMultiplier('80%'), 800_000);
  assert.equal(parseMultiplier('12.5 %'), 125_000);
  assert.equal(parseMultiplier('0%'), 0);
  assert.equal(parseMultiplier('0.8'), 800_000);
  assert.equal(parseMultiplier('×1.25'), 1_250_000);
  assert.equal(parseMultiplier('x2'), 2_000_000);
  assert.equal(parseMultiplier('0.000001'), 1);
  assert.equal(parseMultiplier('33.3333%'), 333_333);
  assert.throws(() => parseMultiplier('80'), /80% or ×80/);
  assert.throws(() => parseMultiplier('cheap'), /percentage/);
  assert.throws(() => parseMultiplier('0.1234567'), /not a multiplier/);
  assert.equal(formatMultiplier(0), 'free');
  assert.equal(formatMultiplier(1_000_000), '×1 (100%)');
  assert.equal(formatMultiplier(800_000), '×0.8 (80%)');
  assert.equal(formatMultiplier(333_333), '×0.333333 (33.3333%)');
  assert.equal(formatMultiplier(1_250_000), '×1.25 (125%)');
});
