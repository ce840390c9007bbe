/**
 * What GET /api/v1/budget answers: spend against each budget that applies to a user this month,
 * the burn rate of the user's running instances, and when each budget runs out at that rate.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { Budget, BudgetScope, Catalog, OpenStream, SizeRunway } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instances } from '../db/schema.js';
import { planFor } from './plans.js';
import type { Metering } from './index.js';
import { monthKey, monthStart, nextMonthStart } from './money.js';
import { liveFiguresAndGpu, liveGroupSpend, type LiveParts } from './live.js';
import type { PlanCache } from './plan-cache.js';
import { BudgetAlertStore } from './budget-alerts.js';
import type { Limits } from './quotas.js';

/** µ$ per hour the user's running instances cost now, after their plan's multiplier. */
export async function burnRate(db: Db, user: string, multiplierPpm: number): Promise<number> {
  const rows = await db
    .select({ rate: instances.listRatePerHourMicros })
    .from(instances)
    .where(and(eq(instances.userName, user), inArray(instances.state, ['running', 'stopping'])));
  const total = rows.reduce((sum, r) => sum + BigInt(r.rate), 0n);
  return Number((total * BigInt(multiplierPpm) + 500_000n) / 1_000_000n);
}

/**
 * burnRate's figure from the open streams of one user (live.ts openStreams): its running compute
 * streams' list rates, after the plan's multiplier, rounded once over the sum as burnRate does.
 */
export function burnOf(
  streams: ReadonlyArray<Pick<OpenStream, 'kind' | 'closeAt' | 'rateMicros'>>,
  multiplierPpm: number,
): number {
  let total = 0n;
  for (const s of streams)
    if (s.kind === 'compute' && s.closeAt === null) total += BigInt(s.rateMicros);
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
  now = m.now(),
  /** the plans in memory (plan-cache.ts): the plan and the open streams' multipliers cost no query */
  plans?: Pick<PlanCache, 'planOf' | 'table'>,
): Promise<Budget> {
  const parts: LiveParts = { db, ledger: m.ledger, settings: m.settings, ...(plans && { plans }) };
  // side by side: the limits, the plan and the live figures do not depend on each other
  const [limits, plan, { figures, gpuSeconds }] = await Promise.all([
    m.quotas.limitsFor(user, groups),
    plans ? plans.planOf(user, groups) : planFor(db, user, [...groups], defaultPlan),
    liveFiguresAndGpu(parts, user, groups, now),
  ]);
  // the burn rate from the instances the live figures already read (no query of its own)
  const burn = burnOf(figures.streams, plan.multiplierPpm);
  const from = monthStart(now);
  const to = nextMonthStart(now);
  // the budgets that apply; their spent is figured below as Quotas.budgetStatus figures it
  const statuses = limits.budgets;
  // one definition: spent this month (contract figures.ts), to the second on the service's clock;
  // a user's own (or the default) budget is spent exactly that; a group's, its members' month
  const spent = figures.month.micros;
  // a group's month: its rows plus its members' running parts, live as every figure (live.ts)
  const groupSpent = new Map(
    await Promise.all(
      statuses
        .filter((s) => s.kind === 'group')
        .map(
          async (s) =>
            [
              s.name,
              await liveGroupSpend(
                parts,
                s.name,
                { user, groups },
                { from: from.getTime(), to: to.getTime() },
                now,
              ),
            ] as const,
        ),
    ),
  );
  const budgets = statuses.map((s) => {
    const g = s.kind === 'group' ? groupSpent.get(s.name) : undefined;
    const b = { ...s, spentMicros: g ? g.micros : spent };
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
      stopAt: null as string | null,
      ...(g ? { streams: g.streams } : {}),
    };
  });
  // a spent hard-stop budget: its servers stop when the grace after the 100 % alert ends
  const alerts = new BudgetAlertStore(db);
  const month = monthKey(now);
  for (const b of budgets) {
    if (!b.hardStop || b.percent < 100) continue;
    const subject = { kind: b.kind, name: b.kind === 'group' ? b.name : user, month };
    const sentAt = await alerts.sentAt(subject, 100);
    if (sentAt) b.stopAt = stopTime(sentAt, m.settings.budgetGraceSeconds).toISOString();
  }
  const stopAt =
    budgets
      .map((b) => b.stopAt)
      .filter((x): x is string => !!x)
      .sort()[0] ?? null;
  const earliest =
    budgets
      .map((b) => b.exhaustedAt)
      .filter((x): x is string => x !== null)
      .sort()[0] ?? null;
  return {
    user,
    month: monthKey(now),
    spentMicros: spent,
    asOf: figures.asOf,
    spentTodayMicros: figures.today.micros,
    figures,
    burnMicrosPerHour: burn,
    gpuHoursUsed: Math.round((gpuSeconds / 3600) * 100) / 100,
    gpuHoursLimit: limits.gpuHoursPerMonth,
    budgets,
    exhaustedAt: earliest,
    stopAt,
    runway: runwayBySize({
      catalog: m.catalog(),
      limits,
      multiplierPpm: plan.multiplierPpm,
      budgets,
      gpuSecondsUsed: gpuSeconds,
    }),
    limits: {
      maxConcurrent: limits.maxConcurrent,
      allowedSizes: limits.allowedSizes,
      idleTimeoutCpuSeconds: limits.idleTimeoutCpuSeconds,
      idleTimeoutGpuSeconds: limits.idleTimeoutGpuSeconds,
      maxAgeSeconds: limits.maxAgeSeconds,
    },
  };
}

/** When the servers of a spent hard-stop budget stop: the 100 % alert plus the grace period. */
export function stopTime(alertSentAt: Date, graceSeconds: number): Date {
  return new Date(alertSentAt.getTime() + graceSeconds * 1000);
}

/** µ$ × 3600 / (µ$/h) in whole seconds, without passing 2^53 on the way. */
function secondsOf(remainingMicros: number, ratePerHourMicros: number): number {
  return Number((BigInt(remainingMicros) * 3600n) / BigInt(ratePerHourMicros));
}

/**
 * Every offered (size, cloud, spot) choice for one user: its rate after the plan, the runway of
 * the tightest budget at that rate alone, the quota that forbids it (the same rules as
 * Quotas.check, apart from the concurrency limit, which is about servers, not sizes), and the idle
 * timeout of its class. Budgets' spend is the one "budget spent" figure (figures.ts). Pure.
 */
export function runwayBySize(p: {
  catalog: Catalog;
  limits: Pick<
    Limits,
    'allowedSizes' | 'gpuHoursPerMonth' | 'idleTimeoutCpuSeconds' | 'idleTimeoutGpuSeconds'
  >;
  multiplierPpm: number;
  budgets: ReadonlyArray<
    Pick<BudgetScope, 'kind' | 'name' | 'budgetMicros' | 'spentMicros' | 'hardStop'>
  >;
  gpuSecondsUsed: number;
}): SizeRunway[] {
  const { limits } = p;
  const tightest = [...p.budgets].sort(
    (a, b) => a.budgetMicros - a.spentMicros - (b.budgetMicros - b.spentMicros),
  )[0];
  const spentHard = p.budgets.find((b) => b.hardStop && b.spentMicros >= b.budgetMicros);
  const out: SizeRunway[] = [];
  for (const size of p.catalog.sizes) {
    let forbidden: SizeRunway['forbidden'] = null;
    if (limits.allowedSizes && !limits.allowedSizes.includes(size.id))
      forbidden = {
        code: 'quota_exceeded',
        reason: `not among your allowed sizes (${limits.allowedSizes.join(', ') || 'none'})`,
      };
    else if (
      size.class === 'gpu' &&
      limits.gpuHoursPerMonth !== null &&
      p.gpuSecondsUsed >= limits.gpuHoursPerMonth * 3600
    )
      forbidden = {
        code: 'quota_exceeded',
        reason: `your ${limits.gpuHoursPerMonth} GPU-hours this month are used up`,
      };
    else if (spentHard)
      forbidden = {
        code: 'budget_exhausted',
        reason: `${spentHard.kind === 'group' ? `group ${spentHard.name}'s` : 'your'} monthly budget is spent`,
      };
    const idleTimeoutSeconds =
      size.class === 'gpu' ? limits.idleTimeoutGpuSeconds : limits.idleTimeoutCpuSeconds;
    for (const offer of size.offers) {
      if (!offer.available || !p.catalog.clouds.includes(offer.cloud)) continue;
      const choices: Array<[boolean, number]> = [[false, offer.onDemandMicrosPerHour]];
      if (offer.spotMicrosPerHour !== null) choices.push([true, offer.spotMicrosPerHour]);
      for (const [spot, list] of choices) {
        const rate = Number((BigInt(list) * BigInt(p.multiplierPpm) + 500_000n) / 1_000_000n);
        const remaining = tightest ? Math.max(0, tightest.budgetMicros - tightest.spentMicros) : 0;
        out.push({
          size: size.id,
          cloud: offer.cloud,
          spot,
          rateMicrosPerHour: rate,
          runwaySeconds: tightest && rate > 0 ? secondsOf(remaining, rate) : null,
          budget: tightest ? `${tightest.kind}:${tightest.name}` : null,
          forbidden,
          idleTimeoutSeconds,
          ...(offer.simulated ? { simulated: true } : {}),
        });
      }
    }
  }
  return out;
}
