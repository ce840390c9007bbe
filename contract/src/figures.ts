/**
 * One definition per money figure, and one way to write money down. Every surface (the service's
 * endpoints, the JupyterLab extension, the CLI, the magic) computes its figures here, from the
 * same inputs: what the ledger has written (sums of rows), the part of each open stream the meter
 * has not written yet up to the current second, and one clock (the service's, `asOf`).
 *
 * The figures (docs/billing.md has the table):
 * - billed so far for an instance: every second since it was ready, at its rate × the plan's
 *   multiplier. The 60 s minimum is NOT included while it runs; it is billed when it stops (an
 *   instance stopped before 60 s is billed 60 s).
 * - spent today / spent this month: all usage (compute and home volume) that falls in the UTC day
 *   / month, up to the current second.
 * - budget spent: spent this month of the budget's subject (the user, or the group's members).
 * - usage per size: billed seconds and µ$ per size over a range, up to the current second.
 * - statement total: the month's usage; for the running month, up to the current second.
 *
 * Money is integer micro-dollars (µ$); nothing here adds floats.
 */
import { z } from 'zod';
import { MicrosInt as Micros } from './money.js';

// ---- the billing formula (the service's ledger bills with exactly this)

export const HOUR_SECONDS = 3600;
/** a storage month is 730 hours, as the clouds bill GB-months */
export const STORAGE_MONTH_SECONDS = 730 * 3600;
/** every start is billed at least this long (charged when the instance stops) */
export const MINIMUM_SECONDS = 60;

/**
 * µ$ billed for the first `seconds` of a stream: rate·s·(ppm/1e6)/period, rounded half up to a
 * whole µ$. An interval costs R(s1) − R(s0), so any split of a stream sums to the same total.
 */
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

// ---- open streams: what the ledger has not written yet

export const OpenStream = z
  .object({
    key: z.string().meta({ description: 'the ledger stream: an instance id, or home:<user>' }),
    kind: z.enum(['compute', 'storage']),
    user: z.string(),
    size: z.string().meta({ description: 'a size id, or `home-volume`' }),
    instanceId: z.string().nullable(),
    anchor: z.iso.datetime().meta({ description: "the billing clock's zero (readyAt)" }),
    writtenUntil: z.iso
      .datetime()
      .meta({ description: 'the end of the newest ledger row (the anchor if none)' }),
    billedSeconds: z.number().int().meta({ description: 'billed seconds already in the ledger' }),
    rateMicros: Micros,
    ratePeriodSeconds: z.number().int(),
    multiplierPpm: z.number().int(),
    closeAt: z.iso.datetime().nullable().meta({ description: 'when it stopped; null if running' }),
    minimumSeconds: z.number().int(),
  })
  .meta({ id: 'OpenStream' });
export type OpenStream = z.infer<typeof OpenStream>;

/** A time range [from, to) in epoch ms; `to` may be Infinity. */
export interface Window {
  from: number;
  to: number;
}

const secondsAt = (anchor: number, t: number) => Math.max(0, Math.floor((t - anchor) / 1000));

/**
 * µ$ of a stream that belong to usage in `w` but are not in the ledger, as the meter would write
 * them at `now` (the ledger splits rows at UTC hours, so day and month windows are exact).
 */
export function unwrittenMicros(s: OpenStream, w: Window, now: number): number {
  const { lower, upper } = unwrittenSpan(s, w, now);
  if (upper <= lower) return 0;
  return (
    cumulativeMicros(s.rateMicros, upper, s.multiplierPpm, s.ratePeriodSeconds) -
    cumulativeMicros(s.rateMicros, lower, s.multiplierPpm, s.ratePeriodSeconds)
  );
}

/** Billed seconds of a stream in `w` not yet in the ledger at `now` (the usage chart's seconds). */
export function unwrittenSeconds(s: OpenStream, w: Window, now: number): number {
  const { lower, upper } = unwrittenSpan(s, w, now);
  return Math.max(0, upper - lower);
}

function unwrittenSpan(s: OpenStream, w: Window, now: number): { lower: number; upper: number } {
  const anchor = Date.parse(s.anchor);
  const written = Date.parse(s.writtenUntil);
  const close = s.closeAt ? Date.parse(s.closeAt) : Infinity;
  const start = Math.max(written, w.from);
  const end = Math.min(now, w.to, close);
  const closesHere = close <= now && close > w.from && close <= w.to;
  if (end <= start && !closesHere) return { lower: 0, upper: 0 };
  let upper = secondsAt(anchor, Math.max(end, start));
  if (closesHere) upper = Math.max(upper, s.minimumSeconds);
  const lower =
    start <= written ? s.billedSeconds : Math.max(s.billedSeconds, secondsAt(anchor, start));
  return { lower, upper };
}

/** Σ unwrittenMicros over streams (optionally only those `pick` keeps). */
export function unwrittenTotal(
  streams: readonly OpenStream[],
  w: Window,
  now: number,
  pick: (s: OpenStream) => boolean = () => true,
): number {
  return streams.filter(pick).reduce((a, s) => a + unwrittenMicros(s, w, now), 0);
}

/**
 * A figure the service computed at `asOf` (ledger + unwritten part up to that second), brought to
 * `now` with the same streams: what every surface shows between two refreshes.
 */
export function advance(
  microsAtAsOf: number,
  w: Window,
  streams: readonly OpenStream[],
  asOf: number,
  now: number,
  pick?: (s: OpenStream) => boolean,
): number {
  if (now <= asOf) return microsAtAsOf;
  return (
    microsAtAsOf + unwrittenTotal(streams, w, now, pick) - unwrittenTotal(streams, w, asOf, pick)
  );
}

// ---- windows on the service's clock (UTC)

export function dayWindow(now: number): Window {
  const d = new Date(now);
  const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return { from, to: from + 86_400_000 };
}

export function monthWindow(now: number): Window {
  const d = new Date(now);
  return {
    from: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    to: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}

/** `2026-11` → its window. */
export function monthKeyWindow(month: string): Window {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return { from: Date.UTC(y, m - 1, 1), to: Date.UTC(y, m, 1) };
}

export const ALL_TIME: Window = { from: -Infinity, to: Infinity };

// ---- the figures

/** A period figure as the service answers it: its value at `asOf` over [from, to). */
export const PeriodFigure = z
  .object({
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    micros: Micros.meta({ description: 'ledger rows plus the unwritten part, at asOf' }),
  })
  .meta({ id: 'PeriodFigure' });
export type PeriodFigure = z.infer<typeof PeriodFigure>;

/** Everything a surface needs to show the live figures and tick them with the service's clock. */
export const LiveFigures = z
  .object({
    asOf: z.iso.datetime().meta({ description: "the service's clock when the figures were taken" }),
    user: z.string(),
    today: PeriodFigure,
    month: PeriodFigure,
    streams: z.array(OpenStream).meta({ description: "the user's streams the ledger has open" }),
  })
  .meta({ id: 'LiveFigures' });
export type LiveFigures = z.infer<typeof LiveFigures>;

function periodAt(
  f: PeriodFigure,
  w: Window,
  streams: readonly OpenStream[],
  asOf: number,
  now: number,
) {
  // a new day or month since asOf: nothing of it is in the figure yet but the streams' part
  const same = Date.parse(f.from) === w.from;
  return advance(same ? f.micros : 0, w, streams, asOf, now);
}

/** Spent today (UTC): every row of the day, compute and home volume, up to `now`. */
export function spentToday(f: LiveFigures, now: number): number {
  return periodAt(f.today, dayWindow(now), f.streams, Date.parse(f.asOf), now);
}

/** Spent this month (UTC): every row of the month up to `now`. */
export function spentThisMonth(f: LiveFigures, now: number): number {
  return periodAt(f.month, monthWindow(now), f.streams, Date.parse(f.asOf), now);
}

/** Budget spent, for a user's (or the default) budget: the same as spent this month. */
export const budgetSpent = spentThisMonth;

/**
 * Billed so far for one instance: its ledger rows plus its running part, up to `now`. The 60 s
 * minimum is not included while it runs (it is billed at the stop).
 */
export function instanceBilled(
  inst: { id: string; billedMicros?: number | undefined },
  f: Pick<LiveFigures, 'asOf' | 'streams'>,
  now: number,
): number {
  return advance(
    inst.billedMicros ?? 0,
    ALL_TIME,
    f.streams,
    Date.parse(f.asOf),
    now,
    (s) => s.key === inst.id,
  );
}

export interface SizeUsage {
  size: string;
  seconds: number;
  micros: number;
}

/**
 * Usage per size over [from, to): the service's series (at asOf) summed per size, plus what each
 * size's open streams have added since. Every size with any point or open stream has a row.
 */
export function usageBySize(
  usage: {
    series: readonly { size: string; seconds: number; amountMicros: number; start: string }[];
  },
  w: Window,
  f: Pick<LiveFigures, 'asOf' | 'streams'>,
  now: number,
): SizeUsage[] {
  const asOf = Date.parse(f.asOf);
  const by = new Map<string, SizeUsage>();
  const get = (size: string) => {
    let r = by.get(size);
    if (!r) by.set(size, (r = { size, seconds: 0, micros: 0 }));
    return r;
  };
  for (const p of usage.series) {
    const t = Date.parse(p.start);
    if (t < w.from || t >= w.to) continue;
    const r = get(p.size);
    r.seconds += p.seconds;
    r.micros += p.amountMicros;
  }
  for (const s of f.streams) {
    const add = advance(0, w, [s], asOf, now);
    const secs =
      s.kind === 'compute' && now > asOf
        ? unwrittenSeconds(s, w, now) - unwrittenSeconds(s, w, asOf)
        : 0;
    if (add > 0 || secs > 0 || s.kind === 'compute') {
      const r = get(s.size);
      r.micros += add;
      r.seconds += secs;
    }
  }
  return [...by.values()].sort((a, b) => b.micros - a.micros || a.size.localeCompare(b.size));
}

/** A statement total: the month's ledger total, plus (for the running month) the unwritten part. */
export function statementTotal(
  s: { month: string; totalMicros: number },
  f: Pick<LiveFigures, 'asOf' | 'streams'>,
  now: number,
): number {
  return advance(s.totalMicros, monthKeyWindow(s.month), f.streams, Date.parse(f.asOf), now);
}

// ---- writing money and hours down (test vectors: contract/fixtures/money-format.json)

const group = (n: bigint): string => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** |micros| rounded half up to `decimals` (≤ 6) → "1,234.57". */
function fixed(abs: bigint, decimals: number): { text: string; scaled: bigint } {
  const unit = 10n ** BigInt(6 - decimals);
  const scaled = (abs + unit / 2n) / unit;
  const pow = 10n ** BigInt(decimals);
  const whole = group(scaled / pow);
  const frac = decimals ? `.${(scaled % pow).toString().padStart(decimals, '0')}` : '';
  return { text: whole + frac, scaled: scaled * unit };
}

/**
 * An amount of money: `$1.23`, `$0.042`, `$0.0082`, `< $0.0001`. Amounts under $1 keep enough
 * decimals to be non-zero; a non-zero amount never reads `$0.00`. With `{ precise: false }` (two
 * decimal columns) sub-cent amounts read `< $0.01`.
 */
export function formatMicros(micros: number, opts: { precise?: boolean } = {}): string {
  if (!Number.isFinite(micros)) return '—';
  const v = BigInt(Math.round(micros));
  if (v === 0n) return '$0.00';
  const neg = v < 0n;
  const abs = neg ? -v : v;
  const sign = neg ? '-' : '';
  if (opts.precise === false) {
    if (abs < 10_000n) return neg ? '> -$0.01' : '< $0.01';
    return `${sign}$${fixed(abs, 2).text}`;
  }
  if (abs < 100n) return neg ? '> -$0.0001' : '< $0.0001';
  // the band's decimals; a rounding that carries into the next band takes that band's
  let decimals = abs >= 1_000_000n ? 2 : abs >= 10_000n ? 3 : 4;
  let out = fixed(abs, decimals);
  while (decimals > 2 && out.scaled >= (decimals === 4 ? 10_000n : 1_000_000n)) {
    decimals -= 1;
    out = fixed(abs, decimals);
  }
  return `${sign}$${out.text}`;
}

/** A unit price, never rounded: `$0.023`, `$0.526`, `$55.04`, `$0.000001`. */
export function formatUnitPrice(micros: number): string {
  if (!Number.isFinite(micros)) return '—';
  const v = BigInt(Math.round(micros));
  const neg = v < 0n;
  const abs = neg ? -v : v;
  let frac = (abs % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${neg ? '-' : ''}$${group(abs / 1_000_000n)}.${frac}`;
}

/** A price per hour, never rounded: `$0.526/h`. */
export function formatRate(microsPerHour: number): string {
  return `${formatUnitPrice(microsPerHour)}/h`;
}

/** Hours for an "Hours" column: `0.02 h`, `1.5 h`, `< 0.01 h`; always hours. */
export function formatHours(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = BigInt(Math.round(seconds));
  if (s === 0n) return '0 h';
  const hundredths = (s * 100n + 1800n) / 3600n;
  if (hundredths === 0n) return '< 0.01 h';
  if (hundredths < 100n) return `0.${hundredths.toString().padStart(2, '0')} h`;
  const tenths = (s * 10n + 1800n) / 3600n;
  return `${group(tenths / 10n)}.${tenths % 10n} h`;
}
