/**
 * What the base infrastructure (terraform/src/base/: network, hub host, managed Postgres, DNS,
 * data set bucket) costs every month before anyone starts a machine: the fixed part of the bill.
 * One price list, dated; `estimateBase` prices the items the base stack creates with the sizing
 * the stack uses (the same defaults: hub-service's base-estimate test checks they agree).
 *
 * The prices are public on-demand list prices in USD for us-east-1, us-central1 and East US,
 * as remembered from the providers' price pages around mid-2025. They were NOT re-checked from
 * the machine this was written on (no internet): check them before relying on them. Usage-priced
 * things (NAT data processing, egress, requests, backups beyond the free allowance, snapshots)
 * are not fixed costs and are left out; `excluded` names them.
 *
 * Money is integer µ$: an hourly item is µ$/h × 730 h × count, a storage item µ$/GB-month × GB.
 */
import { z } from 'zod';
import { MicrosInt as Micros } from './money.js';

/** When the list prices below were taken (remembered, see above). */
export const BASE_PRICES_AS_OF = '2025-07-01';
/** a month of an always-on resource, as the clouds bill it */
export const BASE_HOURS_PER_MONTH = 730;

export const BaseCloud = z.enum(['aws', 'gcp', 'azure']).meta({ id: 'BaseCloud' });
export type BaseCloud = z.infer<typeof BaseCloud>;

/** The sizing of a base stack. Every field has a per-cloud default (`BASE_DEFAULTS`). */
export interface BaseSizing {
  /** the hub host's machine type */
  hubMachineType: string;
  /** the hub host's boot disk */
  hubDiskGiB: number;
  /** the managed Postgres instance class / tier / SKU */
  dbTier: string;
  /** the managed Postgres storage */
  dbStorageGiB: number;
  /** a standby in a second zone (doubles the database's instance and storage) */
  dbHighAvailability: boolean;
  /** expected size of the read-only data set bucket (0: no bucket) */
  datasetGiB: number;
  /** a NAT gateway so instances in the private subnet reach image registries */
  natGateway: boolean;
  /** the stack creates the DNS zone (false: the record goes into an existing zone) */
  createDnsZone: boolean;
}

export const BASE_DEFAULTS: Record<BaseCloud, BaseSizing> = {
  aws: {
    hubMachineType: 't3.medium',
    hubDiskGiB: 30,
    dbTier: 'db.t4g.small',
    dbStorageGiB: 20,
    dbHighAvailability: false,
    datasetGiB: 100,
    natGateway: true,
    createDnsZone: false,
  },
  gcp: {
    hubMachineType: 'e2-medium',
    hubDiskGiB: 30,
    dbTier: 'db-custom-1-3840',
    dbStorageGiB: 20,
    dbHighAvailability: false,
    datasetGiB: 100,
    natGateway: true,
    createDnsZone: false,
  },
  azure: {
    hubMachineType: 'Standard_B2s',
    hubDiskGiB: 30,
    dbTier: 'B_Standard_B1ms',
    dbStorageGiB: 32,
    dbHighAvailability: false,
    datasetGiB: 100,
    natGateway: true,
    createDnsZone: false,
  },
};

interface CloudPrices {
  region: string;
  /** µ$ per hour, by machine type */
  hubMachine: Record<string, number>;
  /** µ$ per GB-month of the hub's boot disk */
  hubDiskPerGiBMonth: number;
  hubDiskLabel: string;
  /** µ$ per hour of a public IPv4 address in use */
  publicIpv4PerHour: number;
  /** µ$ per hour, by database tier (one instance, single zone) */
  dbTier: Record<string, number>;
  dbStoragePerGiBMonth: number;
  dbStorageLabel: string;
  /** µ$ per hour of the NAT gateway itself (GCP bills Cloud NAT per VM using it: 0 fixed) */
  natPerHour: number;
  natLabel: string;
  /** µ$ per month of a DNS zone */
  dnsZonePerMonth: number;
  /** µ$ per month of the secret holding the database password (0: billed per operation only) */
  dbSecretPerMonth: number;
  dbSecretLabel: string;
  datasetPerGiBMonth: number;
  datasetLabel: string;
  excluded: string[];
}

// prices in µ$: 0.0416 $/h = 41_600 µ$/h
export const BASE_PRICES: Record<BaseCloud, CloudPrices> = {
  aws: {
    region: 'us-east-1',
    hubMachine: {
      't3.small': 20_800,
      't3.medium': 41_600,
      't3.large': 83_200,
      'm6i.large': 96_000,
    },
    hubDiskPerGiBMonth: 80_000,
    hubDiskLabel: 'EBS gp3',
    publicIpv4PerHour: 5_000,
    dbTier: {
      'db.t4g.micro': 16_000,
      'db.t4g.small': 32_000,
      'db.t4g.medium': 65_000,
      'db.m6g.large': 152_000,
    },
    dbStoragePerGiBMonth: 115_000,
    dbStorageLabel: 'RDS gp3',
    natPerHour: 45_000,
    natLabel: 'NAT gateway',
    dnsZonePerMonth: 500_000,
    dbSecretPerMonth: 400_000,
    dbSecretLabel: 'Secrets Manager secret (made by RDS)',
    datasetPerGiBMonth: 23_000,
    datasetLabel: 'S3 Standard',
    excluded: [
      'NAT gateway data processing ($0.045/GB)',
      'data transfer out',
      'S3 requests',
      'RDS backup storage beyond the database size',
      'Route 53 queries',
      'Secrets Manager API calls',
    ],
  },
  gcp: {
    region: 'us-central1',
    hubMachine: {
      'e2-small': 16_751,
      'e2-medium': 33_503,
      'e2-standard-2': 67_006,
    },
    hubDiskPerGiBMonth: 100_000,
    hubDiskLabel: 'pd-balanced',
    publicIpv4PerHour: 5_000,
    dbTier: {
      'db-g1-small': 25_000,
      // 1 vCPU × $0.0413/h + 3.75 GB × $0.007/GB-h
      'db-custom-1-3840': 67_550,
      'db-custom-2-7680': 135_100,
    },
    dbStoragePerGiBMonth: 170_000,
    dbStorageLabel: 'Cloud SQL SSD',
    natPerHour: 0,
    natLabel: 'Cloud NAT (billed per VM using it, $0.0014/VM-hour: not fixed)',
    dnsZonePerMonth: 200_000,
    dbSecretPerMonth: 60_000,
    dbSecretLabel: 'Secret Manager secret version',
    datasetPerGiBMonth: 20_000,
    datasetLabel: 'Cloud Storage Standard',
    excluded: [
      'Cloud NAT per VM-hour ($0.0014) and data processing ($0.045/GB)',
      'network egress',
      'Cloud Storage operations',
      'Cloud SQL backups beyond the free allowance',
      'Cloud DNS queries',
      'Secret Manager access operations',
    ],
  },
  azure: {
    region: 'eastus',
    hubMachine: {
      Standard_B2s: 41_600,
      Standard_B2ms: 83_200,
      Standard_D2s_v5: 96_000,
    },
    hubDiskPerGiBMonth: 75_000,
    hubDiskLabel: 'Standard SSD',
    publicIpv4PerHour: 5_000,
    dbTier: {
      B_Standard_B1ms: 17_000,
      B_Standard_B2s: 68_000,
      GP_Standard_D2ds_v5: 178_000,
    },
    dbStoragePerGiBMonth: 115_000,
    dbStorageLabel: 'PostgreSQL flexible server storage',
    natPerHour: 45_000,
    natLabel: 'NAT gateway',
    dnsZonePerMonth: 500_000,
    dbSecretPerMonth: 0,
    dbSecretLabel: 'Key Vault secret (billed per operation)',
    datasetPerGiBMonth: 18_000,
    datasetLabel: 'Blob Storage Hot LRS',
    excluded: [
      'NAT gateway data processing ($0.045/GB)',
      'bandwidth out',
      'blob operations',
      'PostgreSQL backup storage beyond the server size',
      'DNS queries',
      'Key Vault operations',
    ],
  },
};

export const BaseEstimateRequest = z
  .object({
    cloud: BaseCloud,
    hubMachineType: z.string().min(1).max(64).optional(),
    hubDiskGiB: z.number().int().min(8).max(16384).optional(),
    dbTier: z.string().min(1).max(64).optional(),
    dbStorageGiB: z.number().int().min(20).max(16384).optional(),
    dbHighAvailability: z.boolean().optional(),
    datasetGiB: z.number().int().min(0).max(10_000_000).optional(),
    natGateway: z.boolean().optional(),
    createDnsZone: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'BaseEstimateRequest' });
export type BaseEstimateRequest = z.input<typeof BaseEstimateRequest>;

export const BaseEstimateLine = z
  .object({
    item: z.string().meta({ description: 'what is priced, e.g. "hub host"' }),
    resource: z.string().meta({ description: 'the base stack resource it prices' }),
    type: z.string().meta({ description: 'machine type, tier or storage class' }),
    quantity: z.number().int().meta({ description: 'hours, GB or months in the month' }),
    unit: z.enum(['hour', 'GB-month', 'month']),
    unitPriceMicros: Micros.meta({ description: 'µ$ per unit' }),
    monthlyMicros: Micros,
  })
  .meta({ id: 'BaseEstimateLine' });
export type BaseEstimateLine = z.infer<typeof BaseEstimateLine>;

export const BaseEstimate = z
  .object({
    cloud: BaseCloud,
    region: z.string().meta({ description: 'the region the list prices are for' }),
    pricesAsOf: z.string().meta({ description: 'date of the list prices (YYYY-MM-DD)' }),
    hoursPerMonth: z.number().int(),
    lines: z.array(BaseEstimateLine),
    totalMonthlyMicros: Micros,
    excluded: z.array(z.string()).meta({ description: 'usage-priced costs left out' }),
  })
  .meta({ id: 'BaseEstimate' });
export type BaseEstimate = z.infer<typeof BaseEstimate>;

export class BaseEstimateError extends Error {
  override readonly name = 'BaseEstimateError';
}

/** The sizing a request asks for, every missing field at the cloud's default. */
export function baseSizing(req: BaseEstimateRequest): BaseSizing {
  const parsed = BaseEstimateRequest.parse(req);
  const d = BASE_DEFAULTS[parsed.cloud];
  const defined = Object.fromEntries(
    Object.entries(parsed).filter(([k, v]) => k !== 'cloud' && v !== undefined),
  ) as Partial<BaseSizing>;
  return { ...d, ...defined };
}

/** The base stack's fixed monthly cost, item by item, in µ$. Throws BaseEstimateError. */
export function estimateBase(req: BaseEstimateRequest): BaseEstimate {
  const cloud = BaseCloud.parse(req.cloud);
  const s = baseSizing(req);
  const p = BASE_PRICES[cloud];
  const hub = p.hubMachine[s.hubMachineType];
  if (hub === undefined)
    throw new BaseEstimateError(
      `no list price for hub machine type ${s.hubMachineType} on ${cloud}; known: ${Object.keys(p.hubMachine).join(', ')}`,
    );
  const db = p.dbTier[s.dbTier];
  if (db === undefined)
    throw new BaseEstimateError(
      `no list price for database tier ${s.dbTier} on ${cloud}; known: ${Object.keys(p.dbTier).join(', ')}`,
    );
  const H = BASE_HOURS_PER_MONTH;
  const dbCopies = s.dbHighAvailability ? 2 : 1;
  const lines: BaseEstimateLine[] = [];
  const hourly = (item: string, resource: string, type: string, price: number, count = 1) =>
    lines.push({
      item,
      resource,
      type,
      quantity: H * count,
      unit: 'hour',
      unitPriceMicros: price,
      monthlyMicros: price * H * count,
    });
  const storage = (item: string, resource: string, type: string, price: number, gib: number) =>
    lines.push({
      item,
      resource,
      type,
      quantity: gib,
      unit: 'GB-month',
      unitPriceMicros: price,
      monthlyMicros: price * gib,
    });
  const names = RESOURCE_NAMES[cloud];
  hourly('hub host', names.hub, s.hubMachineType, hub);
  storage('hub boot disk', names.hub, p.hubDiskLabel, p.hubDiskPerGiBMonth, s.hubDiskGiB);
  hourly('hub public IPv4 address', names.hubIp, 'static IPv4', p.publicIpv4PerHour);
  hourly(
    s.dbHighAvailability ? 'Postgres (primary and standby)' : 'Postgres',
    names.db,
    s.dbTier,
    db,
    dbCopies,
  );
  storage(
    'Postgres storage',
    names.db,
    p.dbStorageLabel,
    p.dbStoragePerGiBMonth,
    s.dbStorageGiB * dbCopies,
  );
  if (p.dbSecretPerMonth > 0)
    lines.push({
      item: 'database password secret',
      resource: names.db,
      type: p.dbSecretLabel,
      quantity: 1,
      unit: 'month',
      unitPriceMicros: p.dbSecretPerMonth,
      monthlyMicros: p.dbSecretPerMonth,
    });
  if (s.natGateway) {
    if (p.natPerHour > 0) hourly('NAT gateway', names.nat, p.natLabel, p.natPerHour);
    hourly('NAT gateway public IPv4 address', names.natIp, 'static IPv4', p.publicIpv4PerHour);
  }
  if (s.createDnsZone)
    lines.push({
      item: 'DNS zone',
      resource: names.dnsZone,
      type: 'hosted zone',
      quantity: 1,
      unit: 'month',
      unitPriceMicros: p.dnsZonePerMonth,
      monthlyMicros: p.dnsZonePerMonth,
    });
  if (s.datasetGiB > 0)
    storage('data set bucket', names.dataset, p.datasetLabel, p.datasetPerGiBMonth, s.datasetGiB);
  return {
    cloud,
    region: p.region,
    pricesAsOf: BASE_PRICES_AS_OF,
    hoursPerMonth: H,
    lines,
    totalMonthlyMicros: lines.reduce((a, l) => a + l.monthlyMicros, 0),
    excluded: p.excluded,
  };
}

/** The Terraform resource types each line prices, per cloud (as terraform/src/base/ writes them). */
const RESOURCE_NAMES: Record<
  BaseCloud,
  {
    hub: string;
    hubIp: string;
    db: string;
    nat: string;
    natIp: string;
    dnsZone: string;
    dataset: string;
  }
> = {
  aws: {
    hub: 'aws_instance',
    hubIp: 'aws_eip',
    db: 'aws_db_instance',
    nat: 'aws_nat_gateway',
    natIp: 'aws_eip',
    dnsZone: 'aws_route53_zone',
    dataset: 'aws_s3_bucket',
  },
  gcp: {
    hub: 'google_compute_instance',
    hubIp: 'google_compute_address',
    db: 'google_sql_database_instance',
    nat: 'google_compute_router_nat',
    natIp: 'google_compute_address',
    dnsZone: 'google_dns_managed_zone',
    dataset: 'google_storage_bucket',
  },
  azure: {
    hub: 'azurerm_linux_virtual_machine',
    hubIp: 'azurerm_public_ip',
    db: 'azurerm_postgresql_flexible_server',
    nat: 'azurerm_nat_gateway',
    natIp: 'azurerm_public_ip',
    dnsZone: 'azurerm_dns_zone',
    dataset: 'azurerm_storage_container',
  },
};
