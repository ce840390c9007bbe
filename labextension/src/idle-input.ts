/**
 * What a researcher types for an idle timeout in the sidebar (widgets/idle.ts), and the service's
 * bounds rule, without any DOM: `45m`, `1h30m`, `90s`, `2d`, bare minutes, `never`; empty is
 * "the admin's timeout".
 */
import type { IdleClassTimeout } from '@ngsci/contract';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * What a researcher types: `45m`, `1h30m`, `90s`, `2d`, a bare number of minutes, `never` (0);
 * empty means "the admin's timeout" (null). Throws with a sentence for anything else.
 */
export function parseIdleInput(text: string): number | null {
  const s = text.trim().toLowerCase().replace(/\s+/g, '');
  if (!s || s === 'default') return null;
  if (s === 'never') return 0;
  if (/^\d+$/.test(s)) return Number(s) * 60;
  if (!/^(\d+[smhd])+$/.test(s))
    throw new Error(`"${text.trim()}" is not a duration: write 45m, 1h30m, 90s or never`);
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNITS[u!]!;
  if (total <= 0) throw new Error('an idle timeout must be longer than 0 s (or never)');
  return total;
}

/** The value as the field shows it: `1h30m`, `45m`, `never`. */
export function idleInputValue(seconds: number): string {
  if (seconds === 0) return 'never';
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${d ? `${d}d` : ''}${hh ? `${hh}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** Whether the bounds allow `v`; the service's rule (hub-service metering/idle-choice.ts). */
export function allowed(v: number, t: IdleClassTimeout): boolean {
  if (v === 0) return t.maxSeconds === 0;
  return v >= t.minSeconds && (t.maxSeconds === 0 || v <= t.maxSeconds);
}
