/** Parsers for the values people type: money in dollars, durations, server names, sizes. */
import {
  DEFAULT_SERVER,
  SERVER_NAME_RULE,
  formatHours,
  formatMicros,
  formatRate,
  formatUnitPrice,
  isServerName,
} from '@ngsci/contract';
import { UsageError } from './errors.js';

/** "12.50" or "$12.5" → 12_500_000 µ$, exactly (no floating point). */
export function parseDollars(raw: string, flag: string): number {
  const m = /^\$?(\d{1,12})(?:\.(\d{1,6}))?$/.exec(raw.trim());
  if (!m)
    throw new UsageError(`${flag} must be an amount in dollars such as 100 or 12.50, not '${raw}'`);
  return Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "10m", "1h30m", "2d" → seconds. A bare number is minutes. */
export function parseDuration(raw: string, flag: string): number {
  const s = raw.trim();
  if (/^\d+$/.test(s)) return Number(s) * 60;
  if (!/^(\d+[smhd])+$/.test(s))
    throw new UsageError(`${flag} must be a duration such as 90s, 10m, 1h30m or 2d, not '${raw}'`);
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNITS[u!]!;
  if (total <= 0) throw new UsageError(`${flag} must be longer than 0 s`);
  return total;
}

export function parseInteger(raw: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim()))
    throw new UsageError(`${flag} must be a whole number, not '${raw}'`);
  const n = Number(raw);
  if (n < min || n > max)
    throw new UsageError(`${flag} must be between ${min} and ${max}, not ${n}`);
  return n;
}

export function parseServer(raw: string): string {
  if (!isServerName(raw))
    throw new UsageError(
      `'${raw}' is not a server name: ${SERVER_NAME_RULE} (the default server is '${DEFAULT_SERVER}')`,
    );
  return raw;
}

const SIZE = /^[a-z0-9][a-z0-9.-]{0,62}$/;
export function parseSize(raw: string): string {
  if (!SIZE.test(raw))
    throw new UsageError(
      `'${raw}' is not a size id (e.g. cpu-small, gpu-a100); 'ngsci catalog' lists them`,
    );
  return raw;
}

/**
 * µ$ → an amount as every ngsci surface writes it (the contract's formatMicros: `$1,234.56`,
 * `$0.042`, `$0.0082`; never `$0.00` for a non-zero amount). Rates and unit prices are never
 * rounded: formatRate and formatUnitPrice.
 */
export const dollars = (micros: number): string => formatMicros(micros);
export { formatHours, formatRate, formatUnitPrice };

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m ? `${m}m` : ''}` : `${m}m`;
}
