/**
 * Budget alerts for a service without the notices endpoint: crossing 50, 80 or 100 % of a budget
 * is shown from the budget figures instead, each threshold once per month in this browser.
 * (A service with notices sends these itself; notices.ts shows them.)
 */
import { newThresholds, percentOf } from './projection';
import type { INgsciModel } from './tokens';

export interface BudgetAlertDeps {
  show: (level: 'warning' | 'error', text: string, openBilling: () => void) => void;
  openBilling: () => void;
  storage?: Pick<Storage, 'getItem' | 'setItem'>;
}

export function budgetAlertFallback(
  model: INgsciModel,
  active: () => boolean,
  deps: BudgetAlertDeps,
): void {
  const storage = deps.storage ?? localStorage;
  model.changed.connect((_, what) => {
    const b = model.budget;
    if (what !== 'billing' || !b || !active()) return;
    for (const scope of b.budgets) {
      const key = `ngsci:budget-alerts:${b.user}:${b.month}:${scope.kind}:${scope.name}`;
      const seen = new Set<number>(JSON.parse(storage.getItem(key) ?? '[]') as number[]);
      const crossed = newThresholds(percentOf(scope.spentMicros, scope.budgetMicros), seen);
      const top = crossed[crossed.length - 1];
      if (top === undefined) continue;
      for (const t of crossed) seen.add(t);
      storage.setItem(key, JSON.stringify([...seen]));
      const whose = scope.kind === 'group' ? `group ${scope.name}'s ` : '';
      const text =
        top >= 100
          ? `Your ${whose}budget for ${b.month} is spent.${scope.hardStop ? ' Running machines stop after a grace period.' : ''}`
          : `You have used ${top}% of your ${whose}budget for ${b.month}.`;
      deps.show(top >= 100 ? 'error' : 'warning', text, deps.openBilling);
    }
  });
}
