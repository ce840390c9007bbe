/**
 * Turns the service's usage series (one point per day and size) into what the chart and the
 * table draw: one row per day (gaps filled with zero) and per-size totals. DOM-free.
 */
import type { Usage } from '@ngsci/contract';

export interface UsageTable {
  /** day starts, epoch seconds (uPlot's x unit) */
  days: number[];
  sizes: string[];
  /** cost per size per day, µ$ (sizes × days) */
  cost: number[][];
  /** billed seconds per size per day */
  seconds: number[][];
  totals: { size: string; seconds: number; micros: number }[];
}

export function usageTable(usage: Pick<Usage, 'series'>, fromMs: number, days: number): UsageTable {
  const dayIndex = (iso: string) => Math.floor((Date.parse(iso) - fromMs) / 86_400_000);
  const sizes = [...new Set(usage.series.map((p) => p.size))].sort();
  const cost = sizes.map(() => new Array<number>(days).fill(0));
  const seconds = sizes.map(() => new Array<number>(days).fill(0));
  for (const p of usage.series) {
    const d = dayIndex(p.start);
    if (d < 0 || d >= days) continue;
    const s = sizes.indexOf(p.size);
    cost[s]![d]! += p.amountMicros;
    seconds[s]![d]! += p.seconds;
  }
  const totals = sizes
    .map((size, i) => ({
      size,
      seconds: seconds[i]!.reduce((a, b) => a + b, 0),
      micros: cost[i]!.reduce((a, b) => a + b, 0),
    }))
    .sort((a, b) => b.micros - a.micros);
  return {
    days: Array.from({ length: days }, (_, d) => (fromMs + d * 86_400_000) / 1000),
    sizes,
    cost,
    seconds,
    totals,
  };
}

/** Running sums over the sizes, for a stacked bar chart: row k is sizes 0..k added up. */
export function stack(rows: number[][]): number[][] {
  const out: number[][] = [];
  rows.forEach((r, k) => out.push(r.map((v, d) => v + (k ? out[k - 1]![d]! : 0))));
  return out;
}

/** Axis labels with as many decimals as the tick spacing needs (`$0.002`, `$0.50`, `$12`). */
export function dollarTicks(ticks: number[]): string[] {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(ticks[0] ?? 1);
  const decimals = step > 0 ? Math.min(6, Math.max(0, -Math.floor(Math.log10(step)))) : 2;
  return ticks.map((x) => `$${x.toFixed(decimals)}`);
}
