/** The idle-GPU line of the sidebar and the admin ranking's rows read as the contract words them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpuIdleHint, gpuIdleLine, gpuWasteRow } from './gpu-idle';

test('the sidebar line: hours and dollars this month; nothing when no GPU was sampled', () => {
  const f = {
    idleSeconds: 11_520,
    sampledSeconds: 36_000,
    idleMicros: 8_400_000,
    thresholdPercent: 5,
  };
  assert.equal(gpuIdleLine(f), 'idle GPU: 3.2 h, $8.40 this month');
  assert.equal(
    gpuIdleLine({ ...f, idleSeconds: 0, idleMicros: 0 }),
    'idle GPU: 0 h, $0.00 this month',
  );
  assert.equal(gpuIdleLine({ ...f, sampledSeconds: 0 }), null);
  assert.equal(gpuIdleLine(undefined), null);
  assert.match(gpuIdleHint(f), /below 5% utilisation \(32 % of the 10\.0 h/);
});

test('a ranking row: name, idle hours, share of the sampled time, dollars', () => {
  assert.deepEqual(
    gpuWasteRow({ name: 'ada', idleSeconds: 1590, sampledSeconds: 2790, idleMicros: 232_317 }),
    ['ada', '0.44 h', '57 %', '$0.232'],
  );
});
