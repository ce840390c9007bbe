/**
 * The billing arithmetic, in integers only. A usage stream (one instance's compute, one user's
 * home volume) is priced cumulatively: the amount billed for its first s seconds is
 *
 *   R(s) = floor((2·rate·s·ppm + P) / (2·P)),  P = period_seconds · 1_000_000
 *
 * i.e. rate·s·(ppm/1e6)/period rounded half up to a whole micro-dollar. An interval billed from
 * s0 to s1 costs R(s1) − R(s0), so intervals of any length sum to the exact rounded price of the
 * whole stream: meter cycles never add rounding drift. BigInt inside, because rate·s·ppm passes
 * 2^53 for a day of an 8-GPU machine.
 */
export const HOUR = 3600;
/** a storage month is 730 hours, as the clouds bill GB-months */
export const STORAGE_MONTH_SECONDS = 730 * 3600;
/** every start is billed at least this long, as AWS and GCP bill instances */
export const MINIMUM_SECONDS = 60;

export function cumulativeMicros(
  rateMicros: number,
  seconds: number,
  multiplierPpm: number,
  periodSeconds: number,
): number {
  if (seconds <= 0 || rateMicros <= 0 || multiplierPpm <= 0) return 0;
  const p = BigInt(periodSeconds) * 1_000_000n;
  const num = 2n * BigInt(rateMicros) * BigInt(seconds) * BigInt(multiplierPpm) + p;
  return Number(num / (2n * p));
}

export function intervalMicros(
  rateMicros: number,
  fromSeconds: number,
  toSeconds: number,
  multiplierPpm: number,
  periodSeconds: number,
): number {
  return (
    cumulativeMicros(rateMicros, toSeconds, multiplierPpm, periodSeconds) -
    cumulativeMicros(rateMicros, fromSeconds, multiplierPpm, periodSeconds)
  );
}

/** Whole seconds from `anchor` to `t` (never negative): the billing clock of a stream. */
export const secondsSince = (anchor: Date, t: Date): number =>
  Math.max(0, Math.floor((t.getTime() - anchor.getTime()) / 1000));

export const monthStart = (t: Date): Date =>
  new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1));
export const nextMonthStart = (t: Date): Date =>
  new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
export const monthKey = (t: Date): string => t.toISOString().slice(0, 7);
export const parseMonth = (m: string): Date => new Date(`${m}-01T00:00:00.000Z`);

/** "$12.345678" from µ$, for messages and CSV; integer arithmetic, no float rounding. */
export function formatMicros(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  return `${sign}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
}
export const dollars = (micros: number): string =>
  `$${formatMicros(micros).replace(/(\.\d\d)\d*$/, '$1')}`;
