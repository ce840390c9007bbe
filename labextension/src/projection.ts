/**
 * The arithmetic behind the live figures: what the running machine has cost so far, what the
 * month comes to at the current rate, what a resize would change, and which budget thresholds
 * have been crossed. Pure functions of integers and times, so they test without a browser.
 */

const HOUR_MS = 3_600_000;
/** Billed per second with a 60 s minimum per start (see DESIGN.md, Money). */
export const MINIMUM_BILLED_MS = 60_000;

/** Whole micro-dollars for `ms` at `microsPerHour`, rounded down like the service's ledger. */
export function costOf(ms: number, microsPerHour: number): number {
  if (ms <= 0 || microsPerHour <= 0) return 0;
  return Math.floor((ms * microsPerHour) / HOUR_MS);
}

/**
 * Cost of an instance so far, computed on the client between server refreshes: from `readyAt`
 * (billing starts when the server answers) until `stoppedAt` or now, with the 60 s minimum.
 */
export function costSoFar(
  instance: { readyAt: string | null; stoppedAt?: string | null; ratePerHourMicros: number },
  now: number,
): number {
  if (!instance.readyAt) return 0;
  const start = Date.parse(instance.readyAt);
  const end = instance.stoppedAt ? Date.parse(instance.stoppedAt) : now;
  if (!Number.isFinite(start) || !Number.isFinite(end)) return 0;
  return costOf(Math.max(end - start, MINIMUM_BILLED_MS), instance.ratePerHourMicros);
}

/** Milliseconds since `readyAt`, or null when the instance is not up. */
export function uptimeMs(
  instance: { readyAt: string | null; stoppedAt?: string | null },
  now: number,
): number | null {
  if (!instance.readyAt) return null;
  const end = instance.stoppedAt ? Date.parse(instance.stoppedAt) : now;
  return Math.max(0, end - Date.parse(instance.readyAt));
}

/** The first instant of the next UTC month. */
export function endOfMonthUtc(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** The first instant of today (UTC), the day the service's ledger uses. */
export function startOfDayUtc(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

/**
 * What the month comes to if everything that runs now keeps running until the month ends:
 * spent so far + burn rate × hours left. With `replaceRate` the current machine's rate is swapped
 * for another (what a resize would do).
 */
export function monthProjection(opts: {
  spentMicros: number;
  burnMicrosPerHour: number;
  now: number;
  replaceRate?: { from: number; to: number };
}): number {
  const left = Math.max(0, endOfMonthUtc(opts.now) - opts.now);
  let burn = opts.burnMicrosPerHour;
  if (opts.replaceRate) burn = Math.max(0, burn - opts.replaceRate.from + opts.replaceRate.to);
  return opts.spentMicros + costOf(left, burn);
}

/**
 * When a budget runs out at the current burn rate: null if nothing burns, or if it would last
 * past the end of the month (budgets are monthly); `now` if it is already spent.
 */
export function exhaustionAt(opts: {
  budgetMicros: number;
  spentMicros: number;
  burnMicrosPerHour: number;
  now: number;
}): number | null {
  const left = opts.budgetMicros - opts.spentMicros;
  if (left <= 0) return opts.now;
  if (opts.burnMicrosPerHour <= 0) return null;
  const at = opts.now + Math.ceil((left * HOUR_MS) / opts.burnMicrosPerHour);
  return at < endOfMonthUtc(opts.now) ? at : null;
}

/** The alert thresholds of a budget, in percent. */
export const BUDGET_THRESHOLDS = [50, 80, 100] as const;

/** Integer percent of a budget spent (0 budget → 100 once anything is spent). */
export function percentOf(spentMicros: number, budgetMicros: number): number {
  if (budgetMicros <= 0) return spentMicros > 0 ? 100 : 0;
  return Math.floor((spentMicros * 100) / budgetMicros);
}

/** The thresholds reached at `percent` that are not in `seen` yet, lowest first. */
export function newThresholds(percent: number, seen: ReadonlySet<number>): number[] {
  return BUDGET_THRESHOLDS.filter((t) => percent >= t && !seen.has(t));
}
