/** Monthly statements from the ledger, as JSON and as CSV with the same totals. */
import type { Statement } from '@ngsci/contract';
import type { GpuWaste } from './gpu-waste.js';
import type { Ledger } from './ledger.js';
import { formatMicros, nextMonthStart, parseMonth } from './money.js';

export async function statementFor(
  ledger: Ledger,
  user: string,
  month: string,
  /** the month's idle GPU figure comes with the statement when given (gpu-waste.ts) */
  gpuWaste?: Pick<GpuWaste, 'userIdle'>,
): Promise<Statement> {
  const from = parseMonth(month);
  const [lines, gpuIdle] = await Promise.all([
    ledger.statementLines(user, from, nextMonthStart(from)),
    gpuWaste?.userIdle(user, from, nextMonthStart(from)),
  ]);
  const sum = (kind: string) =>
    lines.filter((l) => l.kind === kind).reduce((s, l) => s + l.amountMicros, 0);
  const computeMicros = sum('compute');
  const storageMicros = sum('storage');
  return {
    user,
    month,
    lines,
    computeMicros,
    storageMicros,
    totalMicros: computeMicros + storageMicros,
    ...(gpuIdle ? { gpuIdle } : {}),
  };
}

const cell = (v: string | number | boolean | null): string => {
  const s = v === null ? '' : String(v);
  return /[",\n\r]/.test(s) || /^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

const HEADER = [
  'kind',
  'server',
  'instance_id',
  'size',
  'cloud',
  'region',
  'spot',
  'plan',
  'multiplier_ppm',
  'rate_per_hour_micros',
  'from',
  'to',
  'seconds',
  'amount_micros',
  'amount_usd',
  'gpu_idle_seconds',
  'gpu_sampled_seconds',
  'gpu_idle_micros',
  'gpu_idle_usd',
];

/**
 * One row per line, then a `total` row: amount_micros of the lines sum to it, and it equals the
 * JSON's totalMicros. The `gpu_*` columns are GPU money wasted (contract gpu-waste.ts), the JSON's
 * `gpuIdle` for the month: on the total row only (it is a share of the compute lines' money, never
 * added to it), empty on the lines and when the statement has no figure.
 */
export function statementCsv(s: Statement): string {
  const rows = [HEADER.join(',')];
  for (const l of s.lines) {
    rows.push(
      [
        l.kind,
        l.server,
        l.instanceId,
        l.size,
        l.cloud,
        l.region,
        l.spot,
        l.plan,
        l.multiplierPpm,
        l.ratePerHourMicros,
        l.from,
        l.to,
        l.seconds,
        l.amountMicros,
        formatMicros(l.amountMicros),
        '',
        '',
        '',
        '',
      ]
        .map(cell)
        .join(','),
    );
  }
  const seconds = s.lines.filter((l) => l.kind === 'compute').reduce((a, l) => a + l.seconds, 0);
  rows.push(
    [
      'total',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      seconds,
      s.totalMicros,
      formatMicros(s.totalMicros),
      ...(s.gpuIdle
        ? [
            s.gpuIdle.idleSeconds,
            s.gpuIdle.sampledSeconds,
            s.gpuIdle.idleMicros,
            formatMicros(s.gpuIdle.idleMicros),
          ]
        : ['', '', '', '']),
    ]
      .map(cell)
      .join(','),
  );
  return `${rows.join('\r\n')}\r\n`;
}
