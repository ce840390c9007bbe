import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Signal } from '@lumino/signaling';
import { budgetAlertFallback } from './budget-alerts';
import type { INgsciModel } from './tokens';

test('each threshold is shown once per month; only while the service sends no notices', () => {
  const changed = new Signal<object, string>({});
  const model = {
    changed,
    budget: {
      user: 'r',
      month: '2026-11',
      budgets: [
        { kind: 'user', name: 'r', spentMicros: 850_000, budgetMicros: 1_000_000, hardStop: true },
      ],
    },
  } as unknown as INgsciModel;
  const store = new Map<string, string>();
  const shown: string[] = [];
  let active = false;
  budgetAlertFallback(model, () => active, {
    show: (level, text) => shown.push(`${level}: ${text}`),
    openBilling: () => {},
    storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v) },
  });
  changed.emit('billing');
  assert.deepEqual(shown, [], 'the service sends its own notices');
  active = true;
  changed.emit('usage');
  assert.deepEqual(shown, [], 'only billing changes count');
  changed.emit('billing');
  assert.deepEqual(shown, ['warning: You have used 80% of your budget for 2026-11.']);
  changed.emit('billing');
  assert.equal(shown.length, 1, 'once');
  (model.budget!.budgets[0] as { spentMicros: number }).spentMicros = 1_000_000;
  changed.emit('billing');
  assert.match(shown[1]!, /^error: Your budget for 2026-11 is spent\. Running machines stop/);
});
