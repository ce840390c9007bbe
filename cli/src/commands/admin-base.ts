/**
 * `ngsci admin estimate-base`: what the base infrastructure (terraform/src/base/) costs every
 * month before any machine starts, item by item, from the contract's dated list prices. Computed
 * here without a service (an operator asks before deploying anything); `--remote` asks the
 * service's GET /admin/base-estimate instead, which answers the same figures.
 */
import {
  BaseCloud,
  BaseEstimateError,
  estimateBase,
  formatMicros,
  formatUnitPrice,
  type BaseEstimate,
  type BaseEstimateRequest,
} from '@ngsci/contract';
import { parse, str } from '../args.js';
import { EXIT, UsageError } from '../errors.js';
import { table } from '../output.js';
import { parseInteger } from '../parse.js';
import { help, type Ctx } from './user.js';

export const ESTIMATE_BASE_HELP = `Usage: ngsci admin estimate-base --cloud aws|gcp|azure [OPTIONS]

The base infrastructure's fixed monthly cost (hub host, its disk and address, managed Postgres,
NAT gateway, DNS zone, data set bucket), from public list prices of the date shown. Nothing is
applied; usage-priced costs (traffic, requests, backups) are listed as not included.

Options (default: what the base stack creates, see docs/clouds.md "Base infrastructure"):
  --cloud CLOUD           aws, gcp or azure (required)
  --hub-machine TYPE      the hub host's machine type
  --hub-disk-gib N        the hub host's boot disk
  --db-tier TIER          the Postgres instance class / tier / SKU
  --db-storage-gib N      the Postgres storage
  --db-ha                 a standby in a second zone (doubles the database)
  --dataset-gib N         expected data set size in the bucket (0: no bucket)
  --no-nat                no NAT gateway
  --dns-zone              the stack creates the DNS zone
  --remote                ask the service (GET /admin/base-estimate) instead of computing here
  --json                  the estimate as JSON (all money in µ$)`;

export async function estimateBaseCommand(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin estimate-base',
    args,
    {
      cloud: { type: 'string' },
      'hub-machine': { type: 'string' },
      'hub-disk-gib': { type: 'string' },
      'db-tier': { type: 'string' },
      'db-storage-gib': { type: 'string' },
      'db-ha': { type: 'boolean' },
      'dataset-gib': { type: 'string' },
      'no-nat': { type: 'boolean' },
      'dns-zone': { type: 'boolean' },
      remote: { type: 'boolean', default: false },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ESTIMATE_BASE_HELP);
  const v = p.values;
  const cloud = BaseCloud.safeParse(str(v.cloud));
  if (!cloud.success)
    throw new UsageError(
      `admin estimate-base: --cloud must be aws, gcp or azure${v.cloud === undefined ? '' : `, not '${str(v.cloud)}'`}`,
    );
  const int = (flag: string, min: number, max: number) => {
    const raw = str(v[flag]);
    return raw === undefined ? undefined : parseInteger(raw, `--${flag}`, min, max);
  };
  const text = (flag: string) => {
    const raw = str(v[flag]);
    if (raw !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(raw))
      throw new UsageError(`--${flag} must be a machine type or tier such as t3.medium`);
    return raw;
  };
  const req: BaseEstimateRequest = {
    cloud: cloud.data,
    hubMachineType: text('hub-machine'),
    hubDiskGiB: int('hub-disk-gib', 8, 16384),
    dbTier: text('db-tier'),
    dbStorageGiB: int('db-storage-gib', 20, 16384),
    dbHighAvailability: v['db-ha'] ? true : undefined,
    datasetGiB: int('dataset-gib', 0, 10_000_000),
    natGateway: v['no-nat'] ? false : undefined,
    createDnsZone: v['dns-zone'] ? true : undefined,
  };
  let estimate: BaseEstimate;
  if (v.remote) {
    const query = new URLSearchParams(
      Object.entries(req)
        .filter(([, value]) => value !== undefined)
        .map(([k, value]): [string, string] => [k, String(value)]),
    );
    estimate = await ctx.api().get<BaseEstimate>(`/admin/base-estimate?${query}`);
  } else {
    try {
      estimate = estimateBase(req);
    } catch (err) {
      if (err instanceof BaseEstimateError)
        throw new UsageError(`admin estimate-base: ${err.message}`);
      throw err;
    }
  }
  ctx.io.out(`${ctx.json ? JSON.stringify(estimate, null, 2) : renderBaseEstimate(estimate)}\n`);
  return EXIT.ok;
}

const UNIT: Record<BaseEstimate['lines'][number]['unit'], [string, string]> = {
  hour: ['h', '/h'],
  'GB-month': ['GB', '/GB-month'],
  month: ['month', '/month'],
};

/** The estimate as a table, every figure written by the contract's money formatting. */
export function renderBaseEstimate(e: BaseEstimate): string {
  const rows = e.lines.map((l) => [
    l.item,
    l.type,
    `${l.quantity} ${UNIT[l.unit][0]}`,
    `${formatUnitPrice(l.unitPriceMicros)}${UNIT[l.unit][1]}`,
    formatMicros(l.monthlyMicros),
  ]);
  rows.push(['total per month', '', '', '', formatMicros(e.totalMonthlyMicros)]);
  return [
    `Base infrastructure on ${e.cloud}: fixed monthly cost at ${e.region} list prices of ${e.pricesAsOf}`,
    `(${e.hoursPerMonth} h a month; an estimate, nothing applied; check the prices before relying on them)`,
    '',
    table(['item', 'type', 'quantity', 'unit price', 'monthly'], rows),
    '',
    `Not included (usage-priced): ${e.excluded.join('; ')}.`,
  ].join('\n');
}
