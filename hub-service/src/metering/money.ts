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
import {
  cumulativeMicros,
  formatMicros as formatAmount,
  formatUnitPrice,
  HOUR_SECONDS,
  MINIMUM_SECONDS,
  STORAGE_MONTH_SECONDS,
} from '@ngsci/contract';

// one definition, in the contract (figures.ts): the surfaces compute the same figures with it
export { cumulativeMicros, MINIMUM_SECONDS, STORAGE_MONTH_SECONDS };
export const HOUR = HOUR_SECONDS;

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
/** An amount in a message, written as every surface writes it (never "$0.00" for a non-zero one). */
export const dollars = (micros: number): string => formatAmount(micros);
/** A limit someone set (a budget), to the µ$: "$5.00", "$0.000001". */
export const exactDollars = (micros: number): string => formatUnitPrice(micros);
