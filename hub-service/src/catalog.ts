/**
 * The size catalog: what each size is, what it maps to on each cloud, and its public list prices.
 * The built-in figures are public on-demand list prices and typical spot prices for one region per
 * cloud (BUILT_IN_REGIONS), each offer with the date it was checked; admins override any figure
 * through the price-override API, and an operator's catalog file (NGSCI_CATALOG_FILE,
 * catalog-file.ts) changes regions, adds machine types and sizes, or replaces offers.
 *
 * An offer whose machine cannot be started (a type the cloud retired, one the default image has no
 * driver for, one without the size's GPUs) is listed as unavailable with the reason, so a launch
 * is refused with `size_unavailable` instead of reaching terraform. `local` instances are processes
 * on the hub's machine, priced like the size's first cloud offer so the demo's money is realistic;
 * they get no GPU.
 *
 * Besides the named sizes (presets), the catalog lists every pair of a CPU package and a GPU
 * package (packages.ts) as a size `<cpu>.<gpu>`: each cloud offers the cheapest machine covering
 * both, with what it gives beyond the ask, or says why it cannot.
 */
import {
  chosenSizeId,
  parsePairSizeId,
  type Catalog,
  type Cloud,
  type CpuPackageId,
  type GpuPackageId,
  type Offer,
  type Size,
} from '@ngsci/contract';
import { ApiError } from './errors.js';
import {
  CLOUD_NAMES,
  machineTable,
  type BuiltInView,
  type CatalogFile,
  type CloudName,
  type OfferSpec,
} from './catalog-file.js';
import { machineProblem } from './provisioners/terraform/machine-types.js';
import {
  CPU_PACKAGES,
  GPU_PACKAGES,
  PACKAGE_PRICES_AS_OF,
  allPairs,
  choosePairMachine,
} from './packages.js';

/** When the built-in prices were taken from the clouds' price pages. */
export const CATALOG_AS_OF = '2025-07-01';
/** When the built-in offers' availability (retirements, drivers) was last checked. */
const AVAILABILITY_CHECKED_ON = '2026-11-29';

/** The region of every built-in offer; a catalog file's `regions` replace them per cloud. */
export const BUILT_IN_REGIONS: Readonly<Record<CloudName, string>> = {
  aws: 'us-east-1',
  gcp: 'us-central1',
  azure: 'eastus',
};

const usd = (dollars: number): number => Math.round(dollars * 1_000_000);

/** One cloud's offer of a size before the hub's clouds and regions are applied. */
interface OfferRow {
  instanceType: string;
  onDemandMicrosPerHour: number;
  spotMicrosPerHour: number | null;
  /** when the price and availability were checked (YYYY-MM-DD) */
  checkedOn: string;
  region?: string;
  note?: string;
  /** why the offer is not sold, when it is not */
  unavailable?: string;
}
type SizeRow = Omit<Size, 'offers'> & { offers: Partial<Record<CloudName, OfferRow>> };

const off = (
  instanceType: string,
  onDemand: number,
  spot: number | null,
  note?: string,
): OfferRow => ({
  instanceType,
  onDemandMicrosPerHour: usd(onDemand),
  spotMicrosPerHour: spot === null ? null : usd(spot),
  checkedOn: CATALOG_AS_OF,
  ...(note ? { note } : {}),
});
const none = (reason: string): OfferRow => ({
  instanceType: '',
  onDemandMicrosPerHour: 0,
  spotMicrosPerHour: null,
  checkedOn: CATALOG_AS_OF,
  unavailable: reason,
});

// gpu-v100 keeps its AWS p3 and Azure NCv3 rows: the machine table marks those types unavailable
// (no Volta driver in the open-kernel-module AMI; NCv3 retired on 2025-09-30), so they are listed
// as unavailable with the reason rather than dropped without a word.
const BUILT_IN: readonly SizeRow[] = [
  {
    id: 'cpu-small',
    label: 'CPU small',
    class: 'cpu',
    vcpu: 2,
    memoryGiB: 8,
    gpu: null,
    offers: {
      aws: off('m6i.large', 0.096, 0.04),
      gcp: off('n2-standard-2', 0.0971, 0.0235),
      azure: off('Standard_D2s_v5', 0.096, 0.0192),
    },
  },
  {
    id: 'cpu-large',
    label: 'CPU large',
    class: 'cpu',
    vcpu: 8,
    memoryGiB: 32,
    gpu: null,
    offers: {
      aws: off('m6i.2xlarge', 0.384, 0.16),
      gcp: off('n2-standard-8', 0.3885, 0.094),
      azure: off('Standard_D8s_v5', 0.384, 0.0768),
    },
  },
  {
    id: 'gpu-t4',
    label: '1× NVIDIA T4',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'T4', count: 1, memoryGiB: 16 },
    offers: {
      aws: off('g4dn.xlarge', 0.526, 0.2104),
      gcp: off('n1-standard-4+nvidia-tesla-t4', 0.54, 0.1958, 'N1 with one attached T4'),
      azure: off('Standard_NC4as_T4_v3', 0.526, 0.0526),
    },
  },
  {
    id: 'gpu-l4',
    label: '1× NVIDIA L4',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'L4', count: 1, memoryGiB: 24 },
    offers: {
      aws: off('g6.xlarge', 0.8048, 0.3219),
      gcp: off('g2-standard-4', 0.7068, 0.2827),
      azure: none('Azure offers no L4 virtual machines'),
    },
  },
  {
    id: 'gpu-a10g',
    label: '1× NVIDIA A10G',
    class: 'gpu',
    vcpu: 4,
    memoryGiB: 16,
    gpu: { model: 'A10G', count: 1, memoryGiB: 24 },
    offers: {
      aws: off('g5.xlarge', 1.006, 0.4024),
      gcp: none('Google Cloud offers no A10G'),
      azure: none('Azure offers A10 only in NVadsA10 v5 shapes, not in the NC/ND families'),
    },
  },
  {
    id: 'gpu-v100',
    label: '1× NVIDIA V100',
    class: 'gpu',
    vcpu: 8,
    memoryGiB: 61,
    gpu: { model: 'V100', count: 1, memoryGiB: 16 },
    offers: {
      aws: off('p3.2xlarge', 3.06, 0.918),
      gcp: off('n1-standard-8+nvidia-tesla-v100', 2.86, 1.08, 'N1 with one attached V100'),
      azure: off('Standard_NC6s_v3', 3.06, 0.612),
    },
  },
  {
    id: 'gpu-a100',
    label: '1× NVIDIA A100',
    class: 'gpu',
    vcpu: 12,
    memoryGiB: 85,
    gpu: { model: 'A100', count: 1, memoryGiB: 40 },
    offers: {
      aws: none('AWS sells A100 only in 8-GPU p4d machines; see gpu-a100x8'),
      gcp: off('a2-highgpu-1g', 3.6731, 1.4693),
      azure: off('Standard_NC24ads_A100_v4', 3.673, 1.4692, 'A100 80 GB'),
    },
  },
  {
    id: 'gpu-a100x8',
    label: '8× NVIDIA A100',
    class: 'gpu',
    vcpu: 96,
    memoryGiB: 1152,
    gpu: { model: 'A100', count: 8, memoryGiB: 40 },
    offers: {
      aws: off('p4d.24xlarge', 21.9576, 8.783),
      gcp: off('a2-highgpu-8g', 29.3872, 11.7549),
      azure: off('Standard_ND96asr_v4', 27.197, 10.8788),
    },
  },
  {
    id: 'gpu-h100x8',
    label: '8× NVIDIA H100',
    class: 'gpu',
    vcpu: 192,
    memoryGiB: 2048,
    gpu: { model: 'H100', count: 8, memoryGiB: 80 },
    offers: {
      aws: off('p5.48xlarge', 55.04, 22.016),
      gcp: off('a3-highgpu-8g', 88.2523, 35.301),
      azure: off('Standard_ND96isr_H100_v5', 98.32, 39.328),
    },
  },
];

/** The built-in size ids and GPUs, which the catalog file's checks refer to. */
export function builtInView(): BuiltInView {
  return { sizes: new Map(BUILT_IN.map((s) => [s.id, { gpu: s.gpu }])) };
}

function fromFile(spec: OfferSpec, asOf: string): OfferRow {
  return {
    instanceType: spec.instanceType ?? '',
    onDemandMicrosPerHour: spec.onDemandMicrosPerHour ?? 0,
    spotMicrosPerHour: spec.spotMicrosPerHour,
    checkedOn: spec.checkedOn ?? asOf,
    ...(spec.region ? { region: spec.region } : {}),
    ...(spec.note ? { note: spec.note } : {}),
    ...(spec.unavailable ? { unavailable: spec.unavailable } : {}),
  };
}

/** The built-in rows with the file's omissions, replacements and new sizes applied. */
function sizeRows(file?: CatalogFile): SizeRow[] {
  if (!file) return BUILT_IN.map((r) => ({ ...r }));
  const omitted = new Set(file.omitSizes);
  const rows: SizeRow[] = BUILT_IN.filter((r) => !omitted.has(r.id)).map((r) => ({
    ...r,
    offers: { ...r.offers },
  }));
  for (const spec of file.sizes) {
    let row = rows.find((r) => r.id === spec.id);
    if (!row) {
      // catalog-file.ts refused a new size without these fields
      row = {
        id: spec.id,
        label: spec.label!,
        class: spec.class!,
        vcpu: spec.vcpu!,
        memoryGiB: spec.memoryGiB!,
        gpu: spec.gpu!,
        offers: {},
      };
      rows.push(row);
    }
    if (spec.label !== undefined) row.label = spec.label;
    if (spec.class !== undefined) row.class = spec.class;
    if (spec.vcpu !== undefined) row.vcpu = spec.vcpu;
    if (spec.memoryGiB !== undefined) row.memoryGiB = spec.memoryGiB;
    if (spec.gpu !== undefined) row.gpu = spec.gpu;
    for (const cloud of CLOUD_NAMES) {
      const o = spec.offers[cloud];
      if (o) row.offers[cloud] = fromFile(o, file.asOf);
    }
  }
  return rows;
}

export interface CatalogOptions {
  /** the clouds this hub provisions on; offers elsewhere are listed as unavailable */
  clouds: Cloud[];
  defaultCloud: Cloud;
  /** the operator's catalog file, already checked (NGSCI_CATALOG_FILE) */
  file?: CatalogFile | undefined;
  /** why a cloud is not offered, shown on its offers (default: the hub is not set up for it) */
  unoffered?: Partial<Record<Cloud, string>> | undefined;
  /** list GPU sizes on `local` as simulations (NGSCI_LOCAL_SIMULATE_GPUS); default: unavailable */
  simulateGpus?: boolean | undefined;
  /** list the CPU × GPU package pairs (default true; a catalog file's `pairs: false` hides them) */
  pairs?: boolean | undefined;
}

/** One cloud offer, decided: what a user sees, before the hub's clouds are applied. */
interface Decided {
  offer: Offer;
  checkedOn: string;
}

export function buildCatalog(opts: CatalogOptions): Catalog {
  const table = machineTable(opts.file);
  const regions = { ...BUILT_IN_REGIONS, ...opts.file?.regions };
  const notOffered = (cloud: Cloud) =>
    opts.unoffered?.[cloud] ?? `this hub is not set up to provision on ${cloud}`;

  const decided = sizeRows(opts.file).map((row) => {
    const clouds = CLOUD_NAMES.map((cloud): Decided => {
      const o = row.offers[cloud];
      const region = o?.region ?? regions[cloud];
      if (!o)
        return {
          offer: offerOf(cloud, region, none(`${row.id} has no ${cloud} offer in this catalog`)),
          checkedOn: opts.file?.asOf ?? CATALOG_AS_OF,
        };
      const problem = o.unavailable ? null : machineProblem({ cloud, ...o }, row, table);
      const reason = o.unavailable ?? problem;
      // a machine problem is this build's finding about availability, not a price check
      const checkedOn = problem && !o.unavailable ? AVAILABILITY_CHECKED_ON : o.checkedOn;
      return {
        offer: offerOf(cloud, region, reason ? { ...o, unavailable: reason } : o),
        checkedOn,
      };
    });
    return { row, clouds };
  });
  const pairs = opts.pairs === false || opts.file?.pairs === false ? [] : pairRows(table, regions);

  // the catalog's date is its oldest price still on sale: no figure shown is older than it says
  const sold = [...decided, ...pairs].flatMap((d) => d.clouds.filter((c) => c.offer.available));
  const asOf = sold.length
    ? sold.map((c) => c.checkedOn).reduce((a, b) => (b < a ? b : a))
    : (opts.file?.asOf ?? CATALOG_AS_OF);

  return {
    asOf,
    currency: 'USD',
    defaultCloud: opts.defaultCloud,
    clouds: opts.clouds,
    sizes: decided.map(finish),
    ...(pairs.length
      ? { packages: { cpu: [...CPU_PACKAGES], gpu: [...GPU_PACKAGES] }, pairs: pairs.map(finish) }
      : {}),
  };

  function finish({ row, clouds }: { row: SizeRow; clouds: Decided[] }): Size {
    const { offers: _rows, ...size } = row;
    const offers = [localOffer(row, clouds, opts.simulateGpus ?? false), ...clouds.map(dated)];
    return {
      ...size,
      offers: offers.map((o) =>
        !o.available || opts.clouds.includes(o.cloud)
          ? o
          : { ...o, available: false, note: notOffered(o.cloud) },
      ),
    };
  }
}

/** Every pair of packages with each cloud's cheapest covering machine, or why there is none. */
function pairRows(
  table: ReturnType<typeof machineTable>,
  regions: Record<CloudName, string>,
): { row: SizeRow; clouds: Decided[] }[] {
  return allPairs().map(({ id, cpu, gpu }) => {
    const row: SizeRow = {
      id,
      label: `${cpu.label} + ${gpu.gpu ? gpu.label : 'no GPU'}`,
      class: gpu.gpu ? 'gpu' : 'cpu',
      vcpu: cpu.vcpu,
      memoryGiB: cpu.memoryGiB,
      gpu: gpu.gpu ? { ...gpu.gpu } : null,
      offers: {},
      package: { cpu: cpu.id, gpu: gpu.id },
    };
    const clouds = CLOUD_NAMES.map((cloud): Decided => {
      const region = regions[cloud];
      const choice = choosePairMachine(cloud, cpu, gpu, table);
      if ('unavailable' in choice)
        return {
          offer: offerOf(cloud, region, none(choice.unavailable)),
          checkedOn: PACKAGE_PRICES_AS_OF,
        };
      const o: OfferRow = {
        instanceType: choice.instanceType,
        onDemandMicrosPerHour: choice.onDemandMicrosPerHour,
        spotMicrosPerHour: choice.spotMicrosPerHour,
        checkedOn: PACKAGE_PRICES_AS_OF,
        ...(choice.note || choice.fit.beyondAsk
          ? { note: choice.note ?? choice.fit.beyondAsk! }
          : {}),
      };
      // the same check a launch meets: what is listed here can be started
      const problem = machineProblem({ cloud, instanceType: o.instanceType }, row, table);
      return {
        offer: {
          ...offerOf(cloud, region, problem ? { ...o, unavailable: problem } : o),
          fit: choice.fit,
        },
        checkedOn: problem ? AVAILABILITY_CHECKED_ON : o.checkedOn,
      };
    });
    return { row, clouds };
  });
}

/** A size of the catalog by id: a named size (preset) or a pair (`m.t4`). */
export function findSize(catalog: Catalog, id: string): Size | undefined {
  return catalog.sizes.find((s) => s.id === id) ?? catalog.pairs?.find((s) => s.id === id);
}

function offerOf(cloud: CloudName, region: string, o: OfferRow): Offer {
  const note = o.unavailable ?? o.note;
  return {
    cloud,
    region,
    instanceType: o.instanceType,
    available: !o.unavailable,
    onDemandMicrosPerHour: o.onDemandMicrosPerHour,
    spotMicrosPerHour: o.spotMicrosPerHour,
    ...(note ? { note } : {}),
  };
}

/** The offer, its note saying when it was checked if that is not the catalog's date. */
function dated({ offer, checkedOn }: Decided): Offer {
  return { ...offer, checkedOn };
}

/**
 * "This machine": every size is a process on the hub's machine. A GPU size there has no GPU, so
 * it is a simulation: unavailable (no price shown for hardware that is not there) unless the
 * operator turns the simulation on (NGSCI_LOCAL_SIMULATE_GPUS), and then marked `simulated`.
 */
function localOffer(row: SizeRow, clouds: Decided[], simulateGpus: boolean): Offer {
  const priced = clouds.find((c) => c.offer.available)?.offer ?? clouds[0]!.offer;
  const base = { cloud: 'local' as const, region: 'localhost', instanceType: 'process' };
  if (row.gpu && !simulateGpus)
    return {
      ...base,
      available: false,
      onDemandMicrosPerHour: 0,
      spotMicrosPerHour: null,
      simulated: true,
      note: 'this machine has no GPU; an operator can list GPU sizes here as simulations (NGSCI_LOCAL_SIMULATE_GPUS)',
    };
  return {
    ...base,
    available: true,
    onDemandMicrosPerHour: priced.onDemandMicrosPerHour,
    spotMicrosPerHour: priced.spotMicrosPerHour,
    ...(row.gpu ? { simulated: true } : {}),
    note: row.gpu
      ? `simulated: a process on the hub's machine without a GPU, billed as ${priced.instanceType || 'nothing: no cloud offers it'}`
      : `a process on the hub's machine; priced as ${priced.instanceType || 'nothing: no cloud offers it'}`,
  };
}

/** Every size of the built-in catalog on every cloud, as a hub offering all four would list them. */
export const BUILT_IN_SIZES: readonly Size[] = buildCatalog({
  clouds: ['local', ...CLOUD_NAMES],
  defaultCloud: 'local',
  simulateGpus: true,
}).sizes;

/** The size and offer a launch asks for, or a 400 that says what is wrong. */
export function resolveOffer(
  catalog: Catalog,
  req: {
    size?: string | undefined;
    /** a pair instead of a size: the CPU package, and the GPU package (default none) */
    cpu?: CpuPackageId | undefined;
    gpu?: GpuPackageId | undefined;
    cloud?: Cloud | undefined;
    region?: string | undefined;
    spot?: boolean | undefined;
  },
): { size: Size; offer: Offer; ratePerHourMicros: number } {
  const id = chosenSizeId(req);
  if (!id)
    throw new ApiError(
      400,
      'validation_failed',
      'give a size (such as gpu-t4) or a CPU package with a GPU package (such as cpu m, gpu t4)',
    );
  const size = findSize(catalog, id);
  if (!size) {
    const pair = parsePairSizeId(id);
    throw new ApiError(
      400,
      'unknown_size',
      pair
        ? `this hub lists no package pairs (its catalog file sets pairs: false); sizes: ${catalog.sizes.map((s) => s.id).join(', ')}`
        : `unknown size '${id}'; sizes: ${catalog.sizes.map((s) => s.id).join(', ')}` +
            (catalog.packages
              ? `; or a pair <cpu>.<gpu> of CPU packages ${catalog.packages.cpu.map((p) => p.id).join(', ')} and GPU packages ${catalog.packages.gpu.map((p) => p.id).join(', ')}`
              : ''),
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
