/**
 * What GET /api/v1/budget answers: spend against each budget that applies to a user this month,
 * the burn rate of the user's running instances, and when each budget runs out at that rate.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { Budget } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instances } from '../db/schema.js';
import { planFor } from './plans.js';
import type { Metering } from './index.js';
import { monthKey, monthStart, nextMonthStart } from './money.js';

/** µ$ per hour the user's running instances cost now, after their plan's multiplier. */
export async function burnRate(db: Db, user: string, multiplierPpm: number): Promise<number> {
  const rows = await db
    .select({ rate: instances.listRatePerHourMicros })
    .from(instances)
    .where(and(eq(instances.userName, user), inArray(instances.state, ['running', 'stopping'])));
  const total = rows.reduce((sum, r) => sum + BigInt(r.rate), 0n);
  return Number((total * BigInt(multiplierPpm) + 500_000n) / 1_000_000n);
}

/** When `remaining` µ$ are gone at `burn` µ$/h, or null if not before the month ends. */
export function exhaustion(now: Date, remaining: number, burn: number): Date | null {
  if (remaining <= 0) return now;
  if (burn <= 0) return null;
  const at = new Date(now.getTime() + Math.ceil((remaining * 3_600_000) / burn));
  return at < nextMonthStart(now) ? at : null;
}

export async function budgetFor(
  m: Metering,
  db: Db,
  user: string,
  groups: readonly string[],
  defaultPlan: string,
  now = new Date(),
): Promise<Budget> {
  const limits = await m.quotas.limitsFor(user, groups);
  const plan = await planFor(db, user, [...groups], defaultPlan);
  const burn = await burnRate(db, user, plan.multiplierPpm);
  const from = monthStart(now);
  const to = nextMonthStart(now);
  const [written, gpuSeconds, statuses] = await Promise.all([
    m.ledger.userSpend(user, from, to),
    m.ledger.gpuSeconds(user, from, to),
    m.quotas.budgetStatus(user, limits, now),
  ]);
  const spent = written + m.quotas.pending('user', user);
  const budgets = statuses.map((b) => {
    const at = exhaustion(now, b.budgetMicros - b.spentMicros, burn);
    return {
      kind: b.kind,
      name: b.name,
      budgetMicros: b.budgetMicros,
      spentMicros: b.spentMicros,
      percent: b.budgetMicros > 0 ? Math.floor((b.spentMicros * 100) / b.budgetMicros) : 100,
      hardStop: b.hardStop,
      burnMicrosPerHour: burn,
      exhaustedAt: at?.toISOString() ?? null,
    };
  });
  const earliest =
    budgets
      .map((b) => b.exhaustedAt)
      .filter((x): x is string => x !== null)
      .sort()[0] ?? null;
  return {
    user,
    month: monthKey(now),
    spentMicros: spent,
    burnMicrosPerHour: burn,
    gpuHoursUsed: Math.round((gpuSeconds / 3600) * 100) / 100,
    gpuHoursLimit: limits.gpuHoursPerMonth,
    budgets,
    exhaustedAt: earliest,
    limits: {
      maxConcurrent: limits.maxConcurrent,
      allowedSizes: limits.allowedSizes,
      idleTimeoutCpuSeconds: limits.idleTimeoutCpuSeconds,
      idleTimeoutGpuSeconds: limits.idleTimeoutGpuSeconds,
      maxAgeSeconds: limits.maxAgeSeconds,
    },
  };
}
