import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  cumulativeMicros,
  dayWindow,
  formatHours,
  formatMicros,
  formatRate,
  formatUnitPrice,
  instanceBilled,
  monthWindow,
  spentThisMonth,
  spentToday,
  statementTotal,
  unwrittenMicros,
  usageBySize,
  type LiveFigures,
  type OpenStream,
} from './index.js';

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/money-format.json', import.meta.url), 'utf8'),
) as Record<string, Array<{ micros?: number; seconds?: number; text: string }>>;

test('amounts read as the shared test vectors say (never $0.00 for a non-zero amount)', () => {
  for (const v of vectors.amounts!) assert.equal(formatMicros(v.micros!), v.text, `${v.micros}`);
  for (const v of vectors.amountsCompact!)
    assert.equal(formatMicros(v.micros!, { precise: false }), v.text, `${v.micros} compact`);
  for (let m = 1; m < 2_000_000; m += 997) {
    assert.notEqual(formatMicros(m), '$0.00', String(m));
    assert.notEqual(formatMicros(m, { precise: false }), '$0.00', String(m));
  }
});

test('unit prices and rates are never rounded; hours columns show hours', () => {
  for (const v of vectors.unitPrices!) assert.equal(formatUnitPrice(v.micros!), v.text);
  for (const v of vectors.rates!) assert.equal(formatRate(v.micros!), v.text);
  for (const v of vectors.hours!) assert.equal(formatHours(v.seconds!), v.text, `${v.seconds}`);
  assert.doesNotMatch(formatHours(60), /min/);
});

// one instance ready at 09:59:30 UTC at $0.096/h on a ×0.8 plan; the meter wrote until 10:00:00
const T = (s: string) => Date.parse(`2026-11-30T${s}Z`);
const stream: OpenStream = {
  key: 'i-1',
  kind: 'compute',
  user: 'ada',
  size: 'cpu-small',
  instanceId: 'i-1',
  anchor: new Date(T('09:59:30')).toISOString(),
  writtenUntil: new Date(T('10:00:00')).toISOString(),
  billedSeconds: 30,
  rateMicros: 96_000,
  ratePeriodSeconds: 3600,
  multiplierPpm: 800_000,
  closeAt: null,
  minimumSeconds: 60,
};
const R = (s: number) => cumulativeMicros(96_000, s, 800_000, 3600);

test('the unwritten part of a stream is what the ledger will bill for the same seconds', () => {
  const now = T('10:30:00');
  assert.equal(unwrittenMicros(stream, dayWindow(now), now), R(1830) - R(30));
  // a window that starts later only counts its own seconds
  const w = { from: T('10:10:00'), to: T('10:20:00') };
  assert.equal(unwrittenMicros(stream, w, now), R(1230) - R(630));
  // stopped after 40 s: the 60 s minimum is billed at the stop, not before
  const short = { ...stream, writtenUntil: stream.anchor, billedSeconds: 0 };
  assert.equal(unwrittenMicros(short, dayWindow(now), T('09:59:50')), R(20));
  const stopped = { ...short, closeAt: new Date(T('10:00:10')).toISOString() };
  assert.equal(unwrittenMicros(stopped, dayWindow(now), now), R(60));
});

test('today, this month, budget, an instance and a statement tick together from one clock', () => {
  const asOf = T('10:30:00');
  const f: LiveFigures = {
    asOf: new Date(asOf).toISOString(),
    user: 'ada',
    today: { from: '2026-11-30T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', micros: 5_000 },
    month: { from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', micros: 90_000 },
    streams: [stream],
  };
  const now = asOf + 10 * 60_000;
  const added = R(2430) - R(1830);
  assert.ok(added > 0);
  assert.equal(spentToday(f, now), 5_000 + added);
  assert.equal(spentThisMonth(f, now), 90_000 + added);
  assert.equal(instanceBilled({ id: 'i-1', billedMicros: 1_000 }, f, now), 1_000 + added);
  assert.equal(instanceBilled({ id: 'other', billedMicros: 7 }, f, now), 7);
  assert.equal(statementTotal({ month: '2026-11', totalMicros: 90_000 }, f, now), 90_000 + added);
  assert.equal(statementTotal({ month: '2026-10', totalMicros: 4_000 }, f, now), 4_000);
  // past midnight into December: today and this month start again, from the stream alone
  const next = T('23:59:59') + 61_000;
  const dayStart = dayWindow(next).from;
  const secs = (t: number) => Math.floor((t - T('09:59:30')) / 1000);
  assert.equal(spentToday(f, next), R(secs(next)) - R(secs(dayStart)));
  assert.equal(spentThisMonth(f, next), R(secs(next)) - R(secs(monthWindow(next).from)));
});

test('usage per size keeps a row for every size in the series and every running size', () => {
  const asOf = T('10:30:00');
  const rows = usageBySize(
    {
      series: [
        {
          start: '2026-11-29T00:00:00.000Z',
          size: 'cpu-small',
          seconds: 3600,
          amountMicros: 96_000,
        },
        { start: '2026-11-30T00:00:00.000Z', size: 'home-volume', seconds: 3600, amountMicros: 10 },
        {
          start: '2026-11-30T00:00:00.000Z',
          size: 'cpu-large',
          seconds: 600,
          amountMicros: 64_000,
        },
      ],
    },
    { from: T('00:00:00') - 29 * 86_400_000, to: Infinity },
    { asOf: new Date(asOf).toISOString(), streams: [stream] },
    asOf + 60_000,
  );
  assert.deepEqual(
    rows.map((r) => r.size),
    ['cpu-small', 'cpu-large', 'home-volume'],
  );
  assert.equal(rows[0]!.micros, 96_000 + R(1890) - R(1830));
  assert.equal(rows[0]!.seconds, 3660);
});
