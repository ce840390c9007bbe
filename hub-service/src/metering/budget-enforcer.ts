/**
 * Budget enforcement, one pass per meter cycle over its snapshot: each budget that applies to a
 * user with a running server is measured with the one live definition every surface shows
 * (live.ts liveMonthSpend: the month's ledger totals plus each open stream's unwritten part up to
 * the cycle's second, figures.ts); the 50/80/100 % thresholds are announced once each, and a
 * hard-stop budget spent for longer than the grace stops that user's running servers.
 * What GET /budget shows is budgets.ts; this module acts, on the same figure.
 */
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceStore } from '../instances/store.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { BudgetAlertStore } from './budget-alerts.js';
import type { CycleReport, MeterSnapshot } from './cycle.js';
import { liveMonthSpend, type LiveParts } from './live.js';
import { dollars, exactDollars, monthKey } from './money.js';

export interface BudgetEnforcerDeps {
  /** what the live figures are computed from (live.ts), as the endpoints have it */
  live: LiveParts;
  alerts: BudgetAlertStore;
  notifier: Notifier;
  store: Pick<InstanceStore, 'note'>;
  lifecycle: Pick<Lifecycle, 'stop'>;
  logger: Logger;
  /** seconds between the 100 % alert of a hard-stop budget and the stop */
  graceSeconds: number;
}

const THRESHOLDS = [50, 80, 100];

export class BudgetEnforcer {
  constructor(private readonly d: BudgetEnforcerDeps) {}

  /**
   * Alerts and hard stops for this cycle. The second argument (what the cycle priced but did not
   * write) is no longer needed: the live figure prices it the way every surface does.
   * Returns the users whose budget is spent (the culler spares nobody of theirs for busy kernels).
   */
  async enforce(snap: MeterSnapshot, _pending: unknown, report: CycleReport): Promise<Set<string>> {
    const exhausted = new Set<string>();
    if (!snap.quotas.some((q) => q.monthlyBudgetMicros !== null)) return exhausted;
    const { now, running } = snap;
    const month = monthKey(now);
    const users = [...new Set(running.map((r) => r.userName))];
    const limitsOf = new Map(users.map((u) => [u, snap.limitsOf(u)]));
    const groups = [
      ...new Set(
        [...limitsOf.values()].flatMap((l) =>
          l.budgets.filter((b) => b.kind === 'group').map((b) => b.name),
        ),
      ),
    ];
    if (![...limitsOf.values()].some((l) => l.budgets.length)) return exhausted;
    // the meter knows the groups of everyone it meters (the hub's listing); others' are on their rows
    const metered = new Set(snap.metered.map((r) => r.userName));
    const spend = await liveMonthSpend(
      this.d.live,
      users,
      groups,
      (u) => (metered.has(u) ? snap.groupsOf(u) : undefined),
      now,
    );
    for (const user of users) {
      const limits = limitsOf.get(user)!;
      for (const b of limits.budgets) {
        const spent =
          b.kind === 'group' ? (spend.groups.get(b.name) ?? 0) : (spend.users.get(user) ?? 0);
        // a budget of 0 allows nothing: it is spent from the start
        const percent = b.budgetMicros > 0 ? Math.floor((spent * 100) / b.budgetMicros) : 100;
        const subject = { kind: b.kind, name: b.kind === 'group' ? b.name : user, month };
        const crossed = THRESHOLDS.filter((t) => percent >= t);
        if (!crossed.length) continue;
        const inserted = await this.d.alerts.record(subject, crossed, now);
        const newest = Math.max(0, ...inserted);
        const whose = b.kind === 'group' ? `group ${b.name}'s` : 'your';
        if (newest) {
          report.alerts.push(`${b.kind}:${subject.name}:${newest}`);
          const stops = newest === 100 && b.hardStop;
          await this.d.notifier.send({
            user,
            kind: 'budget',
            level: newest === 100 ? 'error' : 'warning',
            title: `${newest} % of ${whose} monthly budget is spent`,
            body:
              `${dollars(spent)} of ${exactDollars(b.budgetMicros)} this month.` +
              (stops
                ? ` Running servers stop in ${Math.round(this.d.graceSeconds / 60)} min unless an admin raises the budget.`
                : ''),
            actions: [{ id: 'open_billing', label: 'See usage' }],
            dedupeKey: `budget:${b.kind}:${subject.name}:${month}:${newest}`,
          });
        }
        if (percent < 100) continue;
        exhausted.add(user);
        if (!b.hardStop) continue;
        const sentAt = await this.d.alerts.sentAt(subject, 100);
        if (!sentAt || now.getTime() - sentAt.getTime() < this.d.graceSeconds * 1000) continue;
        for (const r of running.filter((x) => x.userName === user)) {
          report.budgetStops.push(r.id);
          this.d.logger.info(
            { instance: r.id, user, budget: `${b.kind}:${subject.name}` },
            'meter: budget exhausted; stopping',
          );
          await this.d.store.note(
            r.id,
            100,
            `stopping: ${whose.replace('your', 'the')} monthly budget of ${exactDollars(b.budgetMicros)} is spent`,
          );
          await this.d.lifecycle
            .stop(user, r.serverName)
            .catch((err: unknown) =>
              this.d.logger.warn({ err, instance: r.id }, 'budget stop failed'),
            );
        }
      }
    }
    return exhausted;
  }
}
