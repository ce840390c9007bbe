/**
 * How money, durations and rates read in the sidebar. Money arrives as integer micro-dollars (µ$)
 * and is only turned into text here, at the edge; nothing in the extension adds up floats.
 */

// one formatter for every surface, in the contract (figures.ts; vectors in contract/fixtures)
import { formatHours, formatMicros, formatRate, formatUnitPrice } from '@ngsci/contract';
export { formatHours, formatMicros, formatRate, formatUnitPrice };

/** A signed difference: `+$12.40` / `-$3.10` / `±$0.00`. */
export function formatDelta(micros: number): string {
  if (Math.round(micros) === 0) return '±$0.00';
  const text = formatMicros(Math.abs(micros), { precise: false });
  return micros > 0 ? `+${text}` : `-${text}`;
}

/**
 * An uptime or a remaining time: `42s`, `5m 07s`, `3h 04m`, `2d 3h`. Negative or missing → `—`.
 */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** A date-time in the reader's locale, short: `Nov 23, 14:05`. */
export function formatWhen(iso: string | null | undefined, locale?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(locale, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** `2026-11` → `November 2026`. */
export function formatMonth(month: string, locale?: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) return month;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
  return d.toLocaleString(locale, { month: 'long', year: 'numeric', timeZone: 'UTC' });
}

/** A state as a person says it: `provisioning` → `Provisioning`. */
export function formatState(state: string): string {
  return state ? state[0]!.toUpperCase() + state.slice(1) : state;
}

/**
 * Reads a dollar amount a person typed (`12`, `12.5`, `$1,200.00`) into integer micro-dollars
 * without going through a float. Throws an Error whose message says what is accepted.
 */
export function parseDollars(text: string): number {
  const t = text.trim().replace(/^\$/, '').replace(/,/g, '');
  const m = /^(\d{1,9})(?:\.(\d{0,6}))?$/.exec(t);
  if (!m) throw new Error(`'${text}' is not an amount in dollars (like 250 or 99.50)`);
  return Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
}

/**
 * Reads a price multiplier a person typed into parts per million, without a float: a percentage
 * (`80%`, `12.5 %`) or a factor (`0.8`, `×1.25`, `x2`). `100%` and `1` are the list price (1000000).
 */
export function parseMultiplier(text: string): number {
  const t = text.trim().replace(/\s+/g, '');
  const pct = /^(\d{1,5})(?:\.(\d{0,4}))?%$/.exec(t);
  if (pct) return Number(pct[1]) * 10_000 + Number((pct[2] ?? '').padEnd(4, '0'));
  const factor = /^([×xX*]?)(\d{1,3})(?:\.(\d{0,6}))?$/.exec(t);
  if (factor && !factor[1] && Number(factor[2]) >= 10)
    throw new Error(`'${text}' is ambiguous: write ${factor[2]}% or ×${factor[2]}`);
  if (factor) return Number(factor[2]) * 1_000_000 + Number((factor[3] ?? '').padEnd(6, '0'));
  throw new Error(
    `'${text}' is not a multiplier: give a percentage of the list price (80%) or a factor (0.8, ×1.25)`,
  );
}

/** `800000` → `×0.8 (80%)`; `0` → `free`. */
export function formatMultiplier(ppm: number): string {
  if (ppm === 0) return 'free';
  const factor = `${Math.floor(ppm / 1_000_000)}${
    ppm % 1_000_000
      ? `.${String(ppm % 1_000_000)
          .padStart(6, '0')
          .replace(/0+$/, '')}`
      : ''
  }`;
  const pctWhole = Math.floor(ppm / 10_000);
  const pctFrac =
    ppm % 10_000
      ? `.${String(ppm % 10_000)
          .padStart(4, '0')
          .replace(/0+$/, '')}`
      : '';
  return `×${factor} (${pctWhole}${pctFrac}%)`;
}
