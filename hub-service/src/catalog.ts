/**
 * The size catalog: what each size is, what it maps to on each cloud, and its public list prices.
 * Figures are public on-demand list prices and typical spot prices for one region per cloud
 * (us-east-1, us-central1, eastus) as of CATALOG_AS_OF; admins override any figure through the
 * price-override API. `local` instances are processes on the hub's machine, priced like the
 * size's AWS offer so the demo's money is realistic; they get no GPU.
 */
import type { Catalog, Cloud, Offer, Size } from '@ngsci/contract';
import { ApiError } from './errors.js';

export const CATALOG_AS_OF = '2025-07-01';

const usd = (dollars: number): number => Math.round(dollars * 1_000_000);

type CloudOffer = Omit<Offer, 'cloud' | 'onDemandMicrosPerHour' | 'spotMicrosPerHour'> & {
  onDemand: number;
  spot: number | null;
};
type SizeRow = Omit<Size, 'offers'> & { aws: CloudOffer; gcp: CloudOffer; azure: CloudOffer };

const off = (
  region: string,
  instanceType: string,
  onDemand: number,
  spot: number | null,
  note?: string,
): CloudOffer => ({
  region,
  instanceType,
  available: true,
  onDemand,
  spot,
  ...(note ? { note } : {}),
});
const none = (region: string, note: string): CloudOffer => ({
  region,
  instanceType: '',
  available: false,
  onDemand: 0,
  spot: null,
  note,
});

const AWS = 'us-east-1';
const GCP = 'us-central1';
const AZ = 'eastus';

const SIZES: SizeRow[] = [
  {
    id: 'cpu-small',
    label: 'CPU small',
    class: 'cpu',
    vcpu: 2,
    memoryGiB: 8,
    gpu: null,
    aws: off(AWS, 'm6i.large', 0.096, 0.04),
    gcp: off(GCP, 'n2-standard-2', 0.0971, 0.0235),
    azure: off(AZ, 'Standard_D2s_v5', 0.096, 0.0192),
  },
  {
    id: 'cpu-large',
    label: 'CPU large',
    class: 'cpu',
    vcpu: 8,
    memoryGiB: 32,
    gpu: null,
    aws: off(AWS, 'm6i.2xlarge', 0.384, 0.16),
    gcp: off(GCP, 'n2-standard-8', 0.3885, 0.094),
    azure: off(AZ, 'Standard_D8s_v5', 0.384, 0.0768),
  },
  {
    id: 'gpu-t4',
    label: '1× NVIDIA T4',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'T4', count: 1, memoryGiB: 16 },
    aws: off(AWS, 'g4dn.xlarge', 0.526, 0.2104),
    gcp: off(GCP, 'n1-standard-4+nvidia-tesla-t4', 0.54, 0.1958, 'N1 with one attached T4'),
    azure: off(AZ, 'Standard_NC4as_T4_v3', 0.526, 0.0526),
  },
  {
    id: 'gpu-l4',
    label: '1× NVIDIA L4',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'L4', count: 1, memoryGiB: 24 },
    aws: off(AWS, 'g6.xlarge', 0.8048, 0.3219),
    gcp: off(GCP, 'g2-standard-4', 0.7068, 0.2827),
    azure: none(AZ, 'Azure offers no L4 virtual machines'),
  },
  {
    id: 'gpu-a10g',
    label: '1× NVIDIA A10G',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'A10G', count: 1, memoryGiB: 24 },
    aws: off(AWS, 'g5.xlarge', 1.006, 0.4024),
    gcp: none(GCP, 'Google Cloud offers no A10G'),
    azure: none(AZ, 'Azure offers A10 only in NVadsA10 v5 shapes, not in the NC/ND families'),
  },
  {
    id: 'gpu-v100',
    label: '1× NVIDIA V100',
    class: 'gpu',
    vcpu: 8,
    memoryGiB: 61,
    gpu: { model: 'V100', count: 1, memoryGiB: 16 },
    aws: off(AWS, 'p3.2xlarge', 3.06, 0.918),
    gcp: off(GCP, 'n1-standard-8+nvidia-tesla-v100', 2.86, 1.08, 'N1 with one attached V100'),
    azure: off(AZ, 'Standard_NC6s_v3', 3.06, 0.612),
  },
  {
    id: 'gpu-a100',
    label: '1× NVIDIA A100',
    class: 'gpu',
    vcpu: 12,
    memoryGiB: 85,
    gpu: { model: 'A100', count: 1, memoryGiB: 40 },
    aws: none(AWS, 'AWS sells A100 only in 8-GPU p4d machines; see gpu-a100x8'),
    gcp: off(GCP, 'a2-highgpu-1g', 3.6731, 1.4693),
    azure: off(AZ, 'Standard_NC24ads_A100_v4', 3.673, 1.4692, 'A100 80 GB'),
  },
  {
    id: 'gpu-a100x8',
    label: '8× NVIDIA A100',
    class: 'gpu',
    vcpu: 96,
    memoryGiB: 1152,
    gpu: { model: 'A100', count: 8, memoryGiB: 40 },
    aws: off(AWS, 'p4d.24xlarge', 21.9576, 8.783),
    gcp: off(GCP, 'a2-highgpu-8g', 29.3872, 11.7549),
    azure: off(AZ, 'Standard_ND96asr_v4', 27.197, 10.8788),
  },
  {
    id: 'gpu-h100x8',
    label: '8× NVIDIA H100',
    class: 'gpu',
    vcpu: 192,
    memoryGiB: 2048,
    gpu: { model: 'H100', count: 8, memoryGiB: 80 },
    aws: off(AWS, 'p5.48xlarge', 55.04, 22.016),
    gcp: off(GCP, 'a3-highgpu-8g', 88.2523, 35.301),
    azure: off(AZ, 'Standard_ND96isr_H100_v5', 98.32, 39.328),
  },
];

function toOffer(cloud: Cloud, o: CloudOffer): Offer {
  const { onDemand, spot, ...rest } = o;
  return {
    cloud,
    ...rest,
    onDemandMicrosPerHour: usd(onDemand),
    spotMicrosPerHour: spot === null ? null : usd(spot),
  };
}

function localOffer(row: SizeRow): Offer {
  const priced = row.aws.available ? row.aws : row.gcp.available ? row.gcp : row.azure;
  return {
    cloud: 'local',
    region: 'localhost',
    instanceType: 'process',
    available: true,
    onDemandMicrosPerHour: usd(priced.onDemand),
    spotMicrosPerHour: priced.spot === null ? null : usd(priced.spot),
    note: `a process on the hub's machine${row.gpu ? ', without a GPU' : ''}; priced as ${priced.instanceType}`,
  };
}

export const BUILT_IN_SIZES: readonly Size[] = SIZES.map((row) => {
  const { aws, gcp, azure, ...size } = row;
  return {
    ...size,
    offers: [localOffer(row), toOffer('aws', aws), toOffer('gcp', gcp), toOffer('azure', azure)],
  };
});

export function buildCatalog(opts: { clouds: Cloud[]; defaultCloud: Cloud }): Catalog {
  return {
    asOf: CATALOG_AS_OF,
    currency: 'USD',
    defaultCloud: opts.defaultCloud,
    clouds: opts.clouds,
    sizes: BUILT_IN_SIZES.map((s) => ({
      ...s,
      offers: s.offers.map((o) =>
        opts.clouds.includes(o.cloud) || !o.available
          ? o
          : { ...o, available: false, note: `this hub is not set up to provision on ${o.cloud}` },
      ),
    })),
  };
}

/** The size and offer a launch asks for, or a 400 that says what is wrong. */
export function resolveOffer(
  catalog: Catalog,
  req: {
    size: string;
    cloud?: Cloud | undefined;
    region?: string | undefined;
    spot?: boolean | undefined;
  },
): { size: Size; offer: Offer; ratePerHourMicros: number } {
  const size = catalog.sizes.find((s) => s.id === req.size);
  if (!size) {
    throw new ApiError(
      400,
      'unknown_size',
      `unknown size '${req.size}'; sizes: ${catalog.sizes.map((s) => s.id).join(', ')}`,
    );
  }
  const cloud = req.cloud ?? catalog.defaultCloud;
  const offer = size.offers.find(
    (o) => o.cloud === cloud && (!req.region || o.region === req.region),
  );
  if (!offer || !offer.available) {
    throw new ApiError(
      400,
      'size_unavailable',
      `size '${size.id}' is not available on ${cloud}${req.region ? ` in ${req.region}` : ''}${offer?.note ? `: ${offer.note}` : ''}`,
    );
  }
  if (req.spot && offer.spotMicrosPerHour === null) {
    throw new ApiError(400, 'size_unavailable', `size '${size.id}' has no spot offer on ${cloud}`);
  }
  const ratePerHourMicros = req.spot
    ? (offer.spotMicrosPerHour as number)
    : offer.onDemandMicrosPerHour;
  return { size, offer, ratePerHourMicros };
}
