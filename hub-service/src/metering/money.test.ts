import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cumulativeMicros,
  formatMicros,
  intervalMicros,
  HOUR,
  STORAGE_MONTH_SECONDS,
} from './money.js';
import { rowsFor, type Stream } from './ledger.js';
import { decideIdle } from './culler.js';

test('per-second price rounds half up to a whole micro-dollar', () => {
  // $0.096/h for 1 s = 26.666… µ$ → 27; for 60 s = 1600 µ$ exactly
  assert.equal(cumulativeMicros(96_000, 1, 1_000_000, HOUR), 27);
  assert.equal(cumulativeMicros(96_000, 60, 1_000_000, HOUR), 1600);
  // exactly half rounds up: 1800 µ$/h for 1 s = 0.5 µ$
  assert.equal(cumulativeMicros(1800, 1, 1_000_000, HOUR), 1);
  assert.equal(cumulativeMicros(1799, 1, 1_000_000, HOUR), 0);
  // half the price with a 0.5 multiplier
  assert.equal(cumulativeMicros(96_000, 3600, 500_000, HOUR), 48_000);
  // nonprofit: zero whatever the time
  assert.equal(cumulativeMicros(98_320_000, 86_400, 0, HOUR), 0);
});

test('intervals of any length sum to the price of the whole stream (no rounding drift)', () => {
  const rate = 526_000;
  let sum = 0;
  let s = 0;
  for (const step of [1, 7, 15, 15, 3, 29, 15, 1, 1, 913]) {
    sum += intervalMicros(rate, s, s + step, 1_000_000, HOUR);
    s += step;
  }
  assert.equal(sum, cumulativeMicros(rate, s, 1_000_000, HOUR));
  assert.equal(sum, Math.floor((rate * s) / 3600 + 0.5));
});

test('amounts beyond 2^53 intermediate products stay exact', () => {
  // 8×H100 on Azure for 31 days: 98.32 $/h × 744 h = $73,150.08
  assert.equal(cumulativeMicros(98_320_000, 31 * 86_400, 1_000_000, HOUR), 73_150_080_000);
  // 10 GB at $0.08/GB-month for one storage month = $0.80
  assert.equal(
    cumulativeMicros(800_000, STORAGE_MONTH_SECONDS, 1_000_000, STORAGE_MONTH_SECONDS),
    800_000,
  );
  assert.equal(formatMicros(73_150_080_000), '73150.080000');
});

const base: Stream = {
  key: 'i1',
  kind: 'compute',
  user: 'u',
  groups: [],
  instanceId: null,
  server: 'default',
  size: 'cpu-small',
  sizeClass: 'cpu',
  cloud: 'local',
  region: 'localhost',
  spot: false,
  planId: 'private',
  multiplierPpm: 1_000_000,
  rateMicros: 96_000,
  ratePeriodSeconds: HOUR,
  anchor: new Date('2026-01-31T23:59:00Z'),
  closeAt: null,
  minimumSeconds: 60,
  lastActivity: null,
};

test('rows split at hour (and so month) boundaries and continue from the newest row', () => {
  const now = new Date('2026-02-01T00:00:30.700Z');
  const rows = rowsFor(base, null, now, 300);
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.endedAt!.toISOString(), '2026-02-01T00:00:00.000Z');
  assert.equal(
    rows[1]!.endedAt!.toISOString(),
    '2026-02-01T00:00:30.000Z',
    'a running stream accrues whole seconds',
  );
  assert.deepEqual(
    rows.map((r) => r.billedTo),
    [60, 90],
  );
  // the same cycle again, from what was written: nothing more
  const last = { endedAt: rows[1]!.endedAt as Date, billedTo: 90, final: false };
  assert.equal(rowsFor(base, last, now, 300).length, 0);
});

test('a start shorter than a minute is billed 60 s when it stops', () => {
  const anchor = new Date('2026-03-01T10:00:00Z');
  const s = { ...base, anchor, closeAt: new Date('2026-03-01T10:00:20Z') };
  const first = rowsFor({ ...s, closeAt: null }, null, new Date('2026-03-01T10:00:15Z'), 300);
  assert.equal(first[0]!.billedTo, 15);
  const closing = rowsFor(
    s,
    { endedAt: first[0]!.endedAt as Date, billedTo: 15, final: false },
    new Date('2026-03-01T10:00:30Z'),
    300,
  );
  assert.equal(closing.length, 1);
  assert.equal(closing[0]!.final, true);
  assert.equal(closing[0]!.billedTo, 60);
  assert.equal(first[0]!.amountMicros + closing[0]!.amountMicros, 1600);
  // closed streams take no more rows
  assert.equal(
    rowsFor(
      s,
      { endedAt: closing[0]!.endedAt as Date, billedTo: 60, final: true },
      new Date('2026-03-02T00:00:00Z'),
      300,
    ).length,
    0,
  );
});

test('active and idle seconds come from the last activity', () => {
  const anchor = new Date('2026-03-01T10:00:00Z');
  const rows = rowsFor(
    { ...base, anchor, lastActivity: new Date('2026-03-01T10:00:10Z') },
    null,
    new Date('2026-03-01T10:01:00Z'),
    20,
  );
  assert.equal(rows[0]!.activeSeconds, 30);
  assert.equal(rows[0]!.idleSeconds, 30);
});

test('idle decisions: warn first, stop after the warning, keep-running resets, max age', () => {
  const readyAt = new Date('2026-03-01T10:00:00Z');
  const at = (s: number) => new Date(readyAt.getTime() + s * 1000);
  const common = {
    readyAt,
    lastActivity: null,
    keepRunningAt: null,
    warnedAt: null,
    timeoutSeconds: 600,
    warningSeconds: 60,
    maxAgeSeconds: null,
  };
  assert.equal(decideIdle({ ...common, now: at(500) }).action, 'none');
  const warn = decideIdle({ ...common, now: at(545) });
  assert.equal(warn.action, 'warn');
  assert.equal(
    decideIdle({ ...common, now: at(590), warnedAt: at(545) }).action,
    'none',
    'not before the warning has run',
  );
  assert.deepEqual(decideIdle({ ...common, now: at(610), warnedAt: at(545) }), {
    action: 'stop',
    idleSeconds: 610,
    reason: 'idle',
  });
  // late first look: warned now, stopped only a warning period later
  assert.equal(decideIdle({ ...common, now: at(5000) }).action, 'warn');
  assert.equal(decideIdle({ ...common, now: at(5030), warnedAt: at(5000) }).action, 'none');
  // keep running after the warning: the clock restarts and the old warning no longer counts
  assert.equal(
    decideIdle({ ...common, now: at(610), warnedAt: at(545), keepRunningAt: at(600) }).action,
    'none',
  );
  // GPU-style short timeout and 0 = never
  assert.equal(decideIdle({ ...common, timeoutSeconds: 0, now: at(99_999) }).action, 'none');
  assert.deepEqual(
    decideIdle({ ...common, timeoutSeconds: 0, maxAgeSeconds: 3600, now: at(3600) }).action,
    'stop',
  );
});
