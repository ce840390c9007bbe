/** The countdown before a hard stop, and the runway line under each size of the Resize section. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SizeRunway } from '@ngsci/contract';
import { formatLeft, stopCountdown, stopPending } from './countdown';
import { runwayLine } from './runway';

test('a stop time counts down as "stops at HH:MM, in m:ss"', () => {
  const stopAt = new Date(2026, 10, 29, 14, 33, 0).getTime();
  const c = stopCountdown({ stopAt: new Date(stopAt).toISOString() }, stopAt - 252_000);
  assert.equal(c?.text, 'stops at 14:33, in 4:12');
  assert.equal(
    stopCountdown({ stopAt: new Date(stopAt).toISOString() }, stopAt + 1)?.text,
    'stopping now',
  );
  assert.equal(stopCountdown({ stopAt: null }, stopAt), null);
  assert.equal(stopCountdown(null, stopAt), null);
  assert.equal(formatLeft(3_849_000), '1:04:09');
  assert.equal(formatLeft(400), '0:01');
});

test('a spent hard-stop budget without a stop time yet is pending; a soft one is not', () => {
  const b = (hardStop: boolean, percent: number, stopAt: string | null = null) => ({
    stopAt,
    budgets: [
      {
        kind: 'user' as const,
        name: 'r',
        budgetMicros: 1,
        spentMicros: 2,
        percent,
        hardStop,
        burnMicrosPerHour: 0,
        exhaustedAt: null,
      },
    ],
  });
  assert.equal(stopPending(b(true, 100)), true);
  assert.equal(stopPending(b(false, 150)), false);
  assert.equal(stopPending(b(true, 99)), false);
  assert.equal(stopPending(b(true, 100, '2026-11-29T14:33:00.000Z')), false);
});

test('the runway line: time left and idle stop, or why the size is not allowed', () => {
  const r: SizeRunway = {
    size: 'cpu-small',
    cloud: 'local',
    spot: false,
    rateMicrosPerHour: 96_000,
    runwaySeconds: 11_520,
    budget: 'user:r',
    forbidden: null,
    idleTimeoutSeconds: 1800,
  };
  assert.deepEqual(runwayLine(r), {
    text: '3 h 12 min left in your budget · stops after 30 min idle',
    forbidden: false,
  });
  assert.equal(
    runwayLine({ ...r, runwaySeconds: null, idleTimeoutSeconds: 0 }).text,
    'no idle stop',
  );
  assert.deepEqual(
    runwayLine({
      ...r,
      forbidden: { code: 'quota_exceeded', reason: 'not among your allowed sizes (cpu-small)' },
    }),
    { text: 'Not allowed: not among your allowed sizes (cpu-small)', forbidden: true },
  );
});
