/** The credit schemas refuse what the service cannot store, and never throw while checking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CreditGrantInput, Day, EstimateCredit } from './index.js';

test('a day exists and never throws while being checked', () => {
  for (const ok of ['2026-01-01', '2028-02-29', '2027-12-31'])
    assert.ok(Day.safeParse(ok).success, ok);
  // '' and 'x' made the refinement throw (a 500 found by the API fuzzer)
  for (const bad of ['', 'x', '2027-02-29', '2027-13-01', '2027-1-1', '0000-01-01'])
    assert.ok(!Day.safeParse(bad).success, bad);
});

test('a grant: a credit cloud, a positive whole amount, days in order; nothing else', () => {
  const ok = { cloud: 'aws', amountMicros: 1, startsOn: '2026-01-01', expiresOn: '2026-01-01' };
  assert.ok(CreditGrantInput.safeParse(ok).success);
  for (const bad of [
    { ...ok, cloud: 'local' },
    { ...ok, amountMicros: 0 },
    { ...ok, amountMicros: 0.5 },
    { ...ok, expiresOn: '2025-12-31' },
    { ...ok, extra: true },
  ])
    assert.ok(!CreditGrantInput.safeParse(bad).success, JSON.stringify(bad));
  assert.ok(!EstimateCredit.safeParse({ cloud: 'gcp', amountMicros: 1, expiresOn: '' }).success);
});
