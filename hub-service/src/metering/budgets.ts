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
import type { ReadCache } from '../routes/read-cache.js';
import { BudgetAlertStore } from './budget-alerts.js';
import type { Limits } from './quotas.js';
import { forbiddingEntry } from '../packages.js';
import { current } from '../timing.js';

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

/**
 * The settled part of one user's budget answer, kept in the read cache (routes/read-cache.ts) for
 * the user and their groups: the limits (quota rows and idle choice, which the read cache forgets
 * on every write to them), their JSON, and what of them the per-size runway depends on, as the
 * key of the runway's template (sharedTemplate).
 */
export interface SettledBudget {
  limits: Limits;
  /** JSON of the answer's `limits` */
  limitsJson: string;
  /** the limits the runway depends on, as a key of sharedTemplate */
  runwayKey: string;
}

/**
 * The runway's templates made for the read cache's answers, per catalog object and per what else
 * they are made from: the limits the runway depends on, the plan's multiplier and whether the GPU
 * hours are used up. The read cache hears of none of the catalog (price overrides) and the plans
 * (not per user): a template is looked up by all of them on every request, and the catalog is one
 * object until the prices change (prices.ts), so a price override on another replica shows in
 * the first answer after this replica's PriceBook reloaded it. Users with the same limits and plan
 * share one template.
 */
const templates = new WeakMap<Catalog, Map<string, RunwayTemplate>>();
/** templates kept at most per catalog (distinct limits × plans); past it, they are made again */
const MAX_TEMPLATES = 1_000;

function sharedTemplate(p: RunwayInputs, limitsKey: string): RunwayTemplate {
  let byKey = templates.get(p.catalog);
  if (!byKey) templates.set(p.catalog, (byKey = new Map()));
  const key = `${p.multiplierPpm}|${gpuUsedUp(p)}|${limitsKey}`;
  let t = byKey.get(key);
  if (!t) {
    if (byKey.size >= MAX_TEMPLATES) byKey.clear();
    t = runwayTemplate(p);
    byKey.set(key, t);
  }
  return t;
}

/** What of the limits the runway depends on, as a string (sharedTemplate's key). */
const runwayKeyOf = (l: RunwayLimits): string =>
  JSON.stringify([
    l.allowedSizes,
    l.forbiddenSizes ?? [],
    l.gpuHoursPerMonth,
    l.idleTimeoutCpuSeconds,
    l.idleTimeoutGpuSeconds,
  ]);

/** The answer's `limits`: what the user is allowed, without the budgets and the idle choice. */
const limitsView = (limits: Limits): Budget['limits'] => ({
  maxConcurrent: limits.maxConcurrent,
  allowedSizes: limits.allowedSizes,
  forbiddenSizes: limits.forbiddenSizes,
  idleTimeoutCpuSeconds: limits.idleTimeoutCpuSeconds,
  idleTimeoutGpuSeconds: limits.idleTimeoutGpuSeconds,
  maxAgeSeconds: limits.maxAgeSeconds,
});

/** What GET /budget answers, in parts: the answer without `runway` and `limits`, and those two. */
interface BudgetParts {
  head: Omit<Budget, 'runway' | 'limits'>;
  budgets: Budget['budgets'];
  runway: RunwayTemplate;
  limits: Limits;
  settled: SettledBudget | null;
}

async function budgetParts(
  m: Metering,
  db: Db,
  user: string,
  groups: readonly string[],
  defaultPlan: string,
  now: Date,
  plans: Pick<PlanCache, 'planOf' | 'table'> | undefined,
  cache: Pick<ReadCache, 'get' | 'active'> | undefined,
): Promise<BudgetParts> {
  const parts: LiveParts = {
    db,
    ledger: m.ledger,
    settings: m.settings,
    ...(plans && { plans }),
    ...(cache && { cache }),
  };
  const settledOf = async (): Promise<SettledBudget> => {
    const limits = await m.quotas.limitsFor(user, groups);
    return {
      limits,
      limitsJson: JSON.stringify(limitsView(limits)),
      runwayKey: runwayKeyOf(limits),
    };
  };
  // side by side: the limits, the plan and the live figures do not depend on each other
  const [{ settled, limits }, plan, { figures, gpuSeconds }] = await Promise.all([
    cache?.active
      ? cache
          .get(user, `budget:${groups.join('\u0000')}`, settledOf)
          .then((s) => ({ settled: s as SettledBudget | null, limits: s.limits }))
      : m.quotas.limitsFor(user, groups).then((l) => ({ settled: null, limits: l })),
    plans ? plans.planOf(user, groups) : planFor(db, user, [...groups], defaultPlan),
    liveFiguresAndGpu(parts, user, groups, now),
  ]);
  // the burn rate from the instances the live figures already read (no query of its own)
  const burn = burnOf(figures.streams, plan.multiplierPpm);
  // the budgets that apply; their spent is figured below as Quotas.budgetStatus figures it
  const statuses = limits.budgets;
  // one definition: spent this month (contract figures.ts), to the second on the service's clock;
  // a user's own (or the default) budget is spent exactly that; a group's, its members' month
  const spent = figures.month.micros;
  // a group's month: its rows plus its members' running parts, live as every figure (live.ts)
  const groupBudgets = statuses.filter((s) => s.kind === 'group');
  const groupSpent = new Map(
    groupBudgets.length
      ? await Promise.all(
          groupBudgets.map(async (s) => {
            const from = monthStart(now).getTime();
            const to = nextMonthStart(now).getTime();
            const g = await liveGroupSpend(parts, s.name, { user, groups }, { from, to }, now);
            return [s.name, g] as const;
          }),
        )
      : [],
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
  const month = monthKey(now);
  // a spent hard-stop budget: its servers stop when the grace after the 100 % alert ends
  let alerts: BudgetAlertStore | null = null;
  for (const b of budgets) {
    if (!b.hardStop || b.percent < 100) continue;
    alerts ??= new BudgetAlertStore(db);
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
  // the runway's settled part: from memory with the read cache, made per request without
  const runwayOf = {
    catalog: m.catalog(),
    limits,
    multiplierPpm: plan.multiplierPpm,
    gpuSecondsUsed: gpuSeconds,
  };
  const runway = settled ? sharedTemplate(runwayOf, settled.runwayKey) : runwayTemplate(runwayOf);
  return {
    head: {
      user,
      month,
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
    },
    budgets,
    runway,
    limits,
    settled,
  };
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
  /** the read routes' cache (routes/read-cache.ts): limits and settled sums from memory */
  cache?: Pick<ReadCache, 'get' | 'active'>,
): Promise<Budget> {
  const p = await budgetParts(m, db, user, groups, defaultPlan, now, plans, cache);
  return { ...p.head, runway: runwayRows(p.runway, p.budgets), limits: limitsView(p.limits) };
}

/**
 * budgetFor's answer as the JSON GET /budget sends, byte for byte `JSON.stringify(budgetFor(...))`:
 * with the read cache active, the limits' JSON and the runway's are made from what is kept for
 * the user (SettledBudget), and only the live figures are serialised per request.
 */
export async function budgetJson(
  m: Metering,
  db: Db,
  user: string,
  groups: readonly string[],
  defaultPlan: string,
  now: Date,
  plans: Pick<PlanCache, 'planOf' | 'table'> | undefined,
  cache: Pick<ReadCache, 'get' | 'active'> | undefined,
): Promise<string> {
  const p = await budgetParts(m, db, user, groups, defaultPlan, now, plans, cache);
  const t0 = performance.now();
  const head = JSON.stringify(p.head);
  const limits = p.settled ? p.settled.limitsJson : JSON.stringify(limitsView(p.limits));
  // the head is an object with keys: its closing brace gives way to the last two keys
  const json = `${head.slice(0, -1)},"runway":${runwayJson(p.runway, p.budgets)},"limits":${limits}}`;
  current()?.add('serialize', performance.now() - t0);
  return json;
}

/** When the servers of a spent hard-stop budget stop: the 100 % alert plus the grace period. */
export function stopTime(alertSentAt: Date, graceSeconds: number): Date {
  return new Date(alertSentAt.getTime() + graceSeconds * 1000);
}

/** µ$ × 3600 / (µ$/h) in whole seconds, without passing 2^53 on the way. */
function secondsOf(remainingMicros: number, ratePerHourMicros: number): number {
  const n = remainingMicros * 3600;
  if (n <= 2 ** 52 && ratePerHourMicros <= 2 ** 40) {
    // every product below stays under 2^53, so exact: they fix the float quotient's last unit
    let q = Math.floor(n / ratePerHourMicros);
    if (q * ratePerHourMicros > n) q--;
    else if ((q + 1) * ratePerHourMicros <= n) q++;
    return q;
  }
  return Number((BigInt(remainingMicros) * 3600n) / BigInt(ratePerHourMicros));
}

type RunwayLimits = Pick<
  Limits,
  'allowedSizes' | 'gpuHoursPerMonth' | 'idleTimeoutCpuSeconds' | 'idleTimeoutGpuSeconds'
> &
  Partial<Pick<Limits, 'forbiddenSizes'>>;

interface RunwayInputs {
  catalog: Catalog;
  limits: RunwayLimits;
  multiplierPpm: number;
  gpuSecondsUsed: number;
}

/** One offered choice as far as the budgets' spend does not change it. */
interface RunwayChoice {
  size: string;
  cloud: SizeRunway['cloud'];
  spot: boolean;
  rate: number;
  /** a quota's refusal (it wins over a spent budget's); null: only a spent budget refuses it */
  forbidden: SizeRunway['forbidden'];
  idleTimeoutSeconds: number;
  simulated: boolean;
  /** its JSON up to the value of `runwaySeconds`, and from `idleTimeoutSeconds` on */
  open: string;
  close: string;
  /** JSON of `forbidden`, or null */
  forbiddenJson: string | null;
}

/**
 * The per-size runway without the budgets' spend: every offered choice with its rate after the
 * plan, its quota refusal and its idle timeout, and the JSON around the figures the spend sets.
 */
export interface RunwayTemplate {
  choices: RunwayChoice[];
  /** the JSON made last, for a spend that moved nothing (no open stream, or the same budgets) */
  last: { key: string; json: string } | null;
}

const gpuUsedUp = (p: RunwayInputs): boolean =>
  p.limits.gpuHoursPerMonth !== null && p.gpuSecondsUsed >= p.limits.gpuHoursPerMonth * 3600;

/** The quota rules of Quotas.check for each offered choice (apart from the concurrency limit). */
export function runwayTemplate(p: RunwayInputs): RunwayTemplate {
  const { limits } = p;
  const usedUp = gpuUsedUp(p);
  const choices: RunwayChoice[] = [];
  for (const size of p.catalog.sizes) {
    let forbidden: SizeRunway['forbidden'] = null;
    const denied = forbiddingEntry(limits.forbiddenSizes ?? [], size.id);
    if (denied) forbidden = { code: 'quota_exceeded', reason: denied.reason };
    else if (limits.allowedSizes && !limits.allowedSizes.includes(size.id))
      forbidden = {
        code: 'quota_exceeded',
        reason: `not among your allowed sizes (${limits.allowedSizes.join(', ') || 'none'})`,
      };
    else if (size.class === 'gpu' && usedUp)
      forbidden = {
        code: 'quota_exceeded',
        reason: `your ${limits.gpuHoursPerMonth} GPU-hours this month are used up`,
      };
    const idleTimeoutSeconds =
      size.class === 'gpu' ? limits.idleTimeoutGpuSeconds : limits.idleTimeoutCpuSeconds;
    for (const offer of size.offers) {
      if (!offer.available || !p.catalog.clouds.includes(offer.cloud)) continue;
      const prices: Array<[boolean, number]> = [[false, offer.onDemandMicrosPerHour]];
      if (offer.spotMicrosPerHour !== null) prices.push([true, offer.spotMicrosPerHour]);
      for (const [spot, list] of prices) {
        const rate = Number((BigInt(list) * BigInt(p.multiplierPpm) + 500_000n) / 1_000_000n);
        const simulated = !!offer.simulated;
        choices.push({
          size: size.id,
          cloud: offer.cloud,
          spot,
          rate,
          forbidden,
          idleTimeoutSeconds,
          simulated,
          open:
            `{"size":${JSON.stringify(size.id)},"cloud":${JSON.stringify(offer.cloud)},` +
            `"spot":${spot},"rateMicrosPerHour":${JSON.stringify(rate)},"runwaySeconds":`,
          close: `,"idleTimeoutSeconds":${JSON.stringify(idleTimeoutSeconds)}${simulated ? ',"simulated":true' : ''}}`,
          forbiddenJson: forbidden ? JSON.stringify(forbidden) : null,
        });
      }
    }
  }
  return { choices, last: null };
}

type RunwayBudgets = ReadonlyArray<
  Pick<BudgetScope, 'kind' | 'name' | 'budgetMicros' | 'spentMicros' | 'hardStop'>
>;

/** What the budgets' spend sets in every choice: the tightest budget's remaining, a spent hard stop. */
function spendOf(budgets: RunwayBudgets) {
  const tightest = [...budgets].sort(
    (a, b) => a.budgetMicros - a.spentMicros - (b.budgetMicros - b.spentMicros),
  )[0];
  const spentHard = budgets.find((b) => b.hardStop && b.spentMicros >= b.budgetMicros);
  const hardForbidden: SizeRunway['forbidden'] = spentHard
    ? {
        code: 'budget_exhausted',
        reason: `${spentHard.kind === 'group' ? `group ${spentHard.name}'s` : 'your'} monthly budget is spent`,
      }
    : null;
  return {
    tightest,
    remaining: tightest ? Math.max(0, tightest.budgetMicros - tightest.spentMicros) : 0,
    budget: tightest ? `${tightest.kind}:${tightest.name}` : null,
    hardForbidden,
  };
}

/** The template's choices with the budgets' spend: GET /budget's `runway`. */
export function runwayRows(t: RunwayTemplate, budgets: RunwayBudgets): SizeRunway[] {
  const s = spendOf(budgets);
  return t.choices.map((c) => ({
    size: c.size,
    cloud: c.cloud,
    spot: c.spot,
    rateMicrosPerHour: c.rate,
    runwaySeconds: s.tightest && c.rate > 0 ? secondsOf(s.remaining, c.rate) : null,
    budget: s.budget,
    forbidden: c.forbidden ?? s.hardForbidden,
    idleTimeoutSeconds: c.idleTimeoutSeconds,
    ...(c.simulated ? { simulated: true } : {}),
  }));
}

/** `JSON.stringify(runwayRows(t, budgets))`, from the template's JSON pieces. */
export function runwayJson(t: RunwayTemplate, budgets: RunwayBudgets): string {
  const s = spendOf(budgets);
  const budget = s.budget === null ? 'null' : JSON.stringify(s.budget);
  const hard = s.hardForbidden ? JSON.stringify(s.hardForbidden) : 'null';
  const key = `${s.tightest ? s.remaining : '-'}|${budget}|${hard}`;
  if (t.last?.key === key) return t.last.json;
  const mid = `,"budget":${budget},"forbidden":`;
  let json = '[';
  for (let i = 0; i < t.choices.length; i++) {
    const c = t.choices[i]!;
    const seconds = s.tightest && c.rate > 0 ? String(secondsOf(s.remaining, c.rate)) : 'null';
    json += `${i ? ',' : ''}${c.open}${seconds}${mid}${c.forbiddenJson ?? hard}${c.close}`;
  }
  json += ']';
  t.last = { key, json };
  return json;
}

/**
 * Every offered (size, cloud, spot) choice for one user: its rate after the plan, the runway of
 * the tightest budget at that rate alone, the quota that forbids it (the same rules as
 * Quotas.check, apart from the concurrency limit, which is about servers, not sizes), and the idle
 * timeout of its class. Budgets' spend is the one "budget spent" figure (figures.ts). Pure.
 */
export function runwayBySize(p: RunwayInputs & { budgets: RunwayBudgets }): SizeRunway[] {
  return runwayRows(runwayTemplate(p), p.budgets);
}
