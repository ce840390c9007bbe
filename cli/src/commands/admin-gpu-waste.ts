/**
 * `ngsci admin gpu-waste`: users and groups ranked by GPU money wasted in a month, the billed
 * time during which every GPU sat idle (GET /api/v1/admin/gpu-waste; contract gpu-waste.ts).
 */
import { formatIdleShare, type GpuWasteEntry, type GpuWasteRanking } from '@ngsci/contract';
import { parse, str } from '../args.js';
import { EXIT, UsageError } from '../errors.js';
import { table } from '../output.js';
import { dollars, formatHours, parseInteger } from '../parse.js';
import { asOf, help, type Ctx } from './user.js';

export const GPU_WASTE_HELP = `Usage: ngsci admin gpu-waste [--month YYYY-MM] [--limit N]

Users and groups ranked by GPU money wasted in a month (default: this month): billed time during
which every GPU of an instance was below the service's idle threshold (NGSCI_GPU_IDLE_PERCENT),
priced at the instance's rate. --limit: at most N users and N groups (default 50, at most 1000).

Takes --url URL, --token TOKEN (an admin's), --json and --help.`;

const rows = (list: GpuWasteEntry[]) =>
  list.map((e) => [e.name, formatHours(e.idleSeconds), formatIdleShare(e), dollars(e.idleMicros)]);

export async function gpuWaste(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin gpu-waste',
    args,
    { month: { type: 'string' }, limit: { type: 'string' } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, GPU_WASTE_HELP);
  const month = str(p.values.month);
  if (month !== undefined && !/^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$/.test(month))
    throw new UsageError(`--month must be a month such as 2026-11, not '${month}'`);
  const rawLimit = str(p.values.limit);
  const limit = rawLimit === undefined ? undefined : parseInteger(rawLimit, '--limit', 1, 1000);
  const q = new URLSearchParams();
  if (month) q.set('month', month);
  if (limit !== undefined) q.set('limit', String(limit));
  const r = await ctx
    .api()
    .get<GpuWasteRanking>(`/admin/gpu-waste${q.size ? `?${q.toString()}` : ''}`);
  const head = ['idle GPU', 'idle share', 'wasted'];
  ctx.io.out(
    `${
      ctx.json
        ? JSON.stringify(r, null, 2)
        : [
            `GPU money wasted in ${r.month}${asOf(r)}: ${dollars(r.totalIdleMicros)} ` +
              `(every GPU below ${r.thresholdPercent}%)`,
            r.users.length ? table(['user', ...head], rows(r.users)) : 'no idle GPU time',
            ...(r.groups.length ? ['', table(['group', ...head], rows(r.groups))] : []),
          ].join('\n')
    }\n`,
  );
  return EXIT.ok;
}
