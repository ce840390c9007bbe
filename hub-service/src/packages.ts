/**
 * Per-resource sizes: the CPU and GPU packages, the public list prices of the machine types a pair
 * may land on, and the choice of machine per cloud. A pair (`m.t4`: the M CPU package with one T4)
 * is offered on each cloud as the cheapest machine that covers both packages:
 *
 * - GCP, when the GPU allows an N1 machine (T4, V100, or no GPU): an N1 custom machine type with
 *   exactly the vCPUs and memory asked for and the GPU attached as a guest accelerator, priced per
 *   vCPU, per GiB and per accelerator; otherwise (L4, A100, H100 are fixed G2/A2/A3 shapes, and
 *   no GPU) the cheapest listed type that covers both.
 * - AWS and Azure: the cheapest listed instance type with the package's GPUs (same model, same
 *   count) and at least the vCPUs and memory asked for.
 *
 * The offer says what the machine gives beyond the ask ("you get 8 vCPU; you asked for 4"); a
 * pair no machine of a cloud covers is unavailable there, with the reason.
 *
 * Prices are public on-demand list prices and typical spot prices in the built-in regions
 * (us-east-1, us-central1, eastus), checked on PACKAGE_PRICES_AS_OF, like the built-in catalog's.
 */
import {
  CPU_PACKAGE_IDS,
  GPU_PACKAGE_IDS,
  pairSizeId,
  parsePairSizeId,
  type CpuPackage,
  type CpuPackageId,
  type GpuPackage,
  type GpuPackageId,
  type MachineFit,
} from '@ngsci/contract';
import { gcpCustomN1, gcpCustomN1Problems } from '@ngsci/terraform';
import type { CloudName } from './catalog-file.js';
import type { MachineTable } from './provisioners/terraform/machine-types.js';

/** When the package prices below were taken from the clouds' price pages. */
export const PACKAGE_PRICES_AS_OF = '2025-07-01';

export const CPU_PACKAGES: readonly CpuPackage[] = [
  { id: 's', label: 'S (2 vCPU, 8 GiB)', vcpu: 2, memoryGiB: 8 },
  { id: 'm', label: 'M (4 vCPU, 16 GiB)', vcpu: 4, memoryGiB: 16 },
  { id: 'l', label: 'L (8 vCPU, 32 GiB)', vcpu: 8, memoryGiB: 32 },
  { id: 'xl', label: 'XL (16 vCPU, 64 GiB)', vcpu: 16, memoryGiB: 64 },
];

export const GPU_PACKAGES: readonly GpuPackage[] = [
  { id: 'none', label: 'no GPU', gpu: null },
  { id: 't4', label: '1× NVIDIA T4', gpu: { model: 'T4', count: 1, memoryGiB: 16 } },
  { id: 'l4', label: '1× NVIDIA L4', gpu: { model: 'L4', count: 1, memoryGiB: 24 } },
  { id: 'a10g', label: '1× NVIDIA A10G', gpu: { model: 'A10G', count: 1, memoryGiB: 24 } },
  { id: 'v100', label: '1× NVIDIA V100', gpu: { model: 'V100', count: 1, memoryGiB: 16 } },
  { id: 'a100', label: '1× NVIDIA A100', gpu: { model: 'A100', count: 1, memoryGiB: 40 } },
  { id: 'a100x8', label: '8× NVIDIA A100', gpu: { model: 'A100', count: 8, memoryGiB: 40 } },
  { id: 'h100x8', label: '8× NVIDIA H100', gpu: { model: 'H100', count: 8, memoryGiB: 80 } },
];

// the lists above and the contract's ids must name the same packages, in the same order
if (
  CPU_PACKAGES.map((p) => p.id).join() !== CPU_PACKAGE_IDS.join() ||
  GPU_PACKAGES.map((p) => p.id).join() !== GPU_PACKAGE_IDS.join()
)
  throw new Error('packages.ts and the contract disagree on the package ids');

export const cpuPackage = (id: CpuPackageId): CpuPackage => CPU_PACKAGES.find((p) => p.id === id)!;
export const gpuPackage = (id: GpuPackageId): GpuPackage => GPU_PACKAGES.find((p) => p.id === id)!;

const usd = (dollars: number): number => Math.round(dollars * 1_000_000);

/** On-demand and spot USD per hour of the listed machine types a pair may land on. */
const LISTED: Record<string, [onDemand: number, spot: number | null]> = {
  // AWS, us-east-1
  'm6i.large': [0.096, 0.04],
  'm6i.xlarge': [0.192, 0.08],
  'm6i.2xlarge': [0.384, 0.16],
  'm6i.4xlarge': [0.768, 0.32],
  'c6i.xlarge': [0.17, 0.07],
  'c6i.2xlarge': [0.34, 0.14],
  'c6i.4xlarge': [0.68, 0.28],
  'g4dn.xlarge': [0.526, 0.2104],
  'g4dn.2xlarge': [0.752, 0.3008],
  'g4dn.4xlarge': [1.204, 0.4816],
  'g5.xlarge': [1.006, 0.4024],
  'g5.2xlarge': [1.212, 0.4848],
  'g5.4xlarge': [1.624, 0.6496],
  'g6.xlarge': [0.8048, 0.3219],
  'g6.2xlarge': [0.9776, 0.391],
  'g6.4xlarge': [1.3232, 0.5293],
  'p4d.24xlarge': [21.9576, 8.783],
  'p5.48xlarge': [55.04, 22.016],
  // GCP, us-central1
  'e2-standard-2': [0.067, 0.0201],
  'e2-standard-4': [0.134, 0.0402],
  'e2-standard-8': [0.268, 0.0804],
  'e2-standard-16': [0.536, 0.1608],
  'n2-standard-2': [0.0971, 0.0235],
  'n2-standard-4': [0.1942, 0.047],
  'n2-standard-8': [0.3885, 0.094],
  'n2-highmem-8': [0.5241, 0.1268],
  'g2-standard-4': [0.7068, 0.2827],
  'g2-standard-8': [0.8536, 0.3414],
  'g2-standard-16': [1.1474, 0.4589],
  'a2-highgpu-1g': [3.6731, 1.4693],
  'a2-ultragpu-1g': [5.0688, 2.0275],
  'a2-highgpu-8g': [29.3872, 11.7549],
  'a2-ultragpu-8g': [40.5504, 16.2202],
  'a3-highgpu-8g': [88.2523, 35.301],
  // Azure, eastus
  Standard_D2s_v5: [0.096, 0.0192],
  Standard_D4s_v5: [0.192, 0.0384],
  Standard_D8s_v5: [0.384, 0.0768],
  Standard_D16s_v5: [0.768, 0.1536],
  Standard_NC4as_T4_v3: [0.526, 0.0526],
  Standard_NC8as_T4_v3: [0.752, 0.0752],
  Standard_NC16as_T4_v3: [1.204, 0.1204],
  Standard_NC24ads_A100_v4: [3.673, 1.4692],
  Standard_ND96asr_v4: [27.197, 10.8788],
  Standard_ND96amsr_A100_v4: [32.77, 13.108],
  Standard_ND96isr_H100_v5: [98.32, 39.328],
};

/**
 * GCP N1 custom machine types, us-central1: per vCPU-hour, per GiB-hour, and per attached
 * accelerator-hour (on demand, spot).
 */
export const N1_CUSTOM_PRICES = {
  vcpu: [0.033174, 0.00663],
  memoryGiB: [0.004446, 0.000889],
  accelerator: {
    'nvidia-tesla-t4': [0.35, 0.14],
    'nvidia-tesla-v100': [2.48, 0.992],
  } as Record<string, [number, number]>,
} as const;

/** The N1 accelerator type of a GPU package that may ride on an N1 custom machine. */
const N1_ACCELERATOR: Partial<Record<GpuPackageId, string>> = {
  t4: 'nvidia-tesla-t4',
  v100: 'nvidia-tesla-v100',
};

/** One cloud's machine for a pair, priced; or why there is none. */
export type PairChoice =
  | {
      instanceType: string;
      onDemandMicrosPerHour: number;
      spotMicrosPerHour: number | null;
      fit: MachineFit;
      note?: string;
    }
  | { unavailable: string };

const modelMatches = (machineModel: string, packageModel: string): boolean =>
  machineModel === packageModel || machineModel.startsWith(`${packageModel}-`);

function gpuMemoryOf(model: string, listed: number): number {
  const m = /-(\d+)GB$/.exec(model);
  return m ? Number(m[1]) : listed;
}

/** What a machine gives beyond the ask, in words; null when it gives exactly the ask. */
export function beyondAsk(
  cpu: CpuPackage,
  gpu: GpuPackage,
  has: { vcpu: number; memoryGiB: number; gpuMemoryGiB: number | null },
): string | null {
  const got: string[] = [];
  const asked: string[] = [];
  if (has.vcpu > cpu.vcpu) {
    got.push(`${has.vcpu} vCPU`);
    asked.push(`${cpu.vcpu}${has.memoryGiB > cpu.memoryGiB ? ' vCPU' : ''}`);
  }
  if (has.memoryGiB > cpu.memoryGiB) {
    got.push(`${has.memoryGiB} GiB`);
    asked.push(`${cpu.memoryGiB}${got.length > 1 ? ' GiB' : ''}`);
  }
  const parts = got.length
    ? [`you get ${got.join(' and ')}; you asked for ${asked.join(' and ')}`]
    : [];
  if (gpu.gpu && has.gpuMemoryGiB !== null && has.gpuMemoryGiB > gpu.gpu.memoryGiB)
    parts.push(
      `${parts.length ? 'each GPU has' : 'you get GPUs with'} ${has.gpuMemoryGiB} GiB (the package promises ${gpu.gpu.memoryGiB})`,
    );
  return parts.length ? parts.join('; ') : null;
}

/** The N1 custom machine for a pair on GCP, or why it cannot be one; null when the GPU is not N1's. */
function n1Custom(cpu: CpuPackage, gpu: GpuPackage): PairChoice | null {
  const accelerator = N1_ACCELERATOR[gpu.id];
  if (!accelerator || !gpu.gpu) return null;
  const memoryMiB = Math.round(cpu.memoryGiB * 1024);
  const info = gcpCustomN1(cpu.vcpu, memoryMiB, { type: accelerator, gpu: gpu.gpu });
  const problems = gcpCustomN1Problems(info);
  if (problems.length)
    return { unavailable: `an N1 custom machine cannot: ${problems.join('; ')}` };
  const p = N1_CUSTOM_PRICES;
  const acc = p.accelerator[accelerator]!;
  const rate = (i: 0 | 1) =>
    usd(cpu.vcpu * p.vcpu[i] + cpu.memoryGiB * p.memoryGiB[i] + gpu.gpu!.count * acc[i]);
  return {
    instanceType: `${info.machineType}+${accelerator}`,
    onDemandMicrosPerHour: rate(0),
    spotMicrosPerHour: rate(1),
    fit: {
      vcpu: cpu.vcpu,
      memoryGiB: cpu.memoryGiB,
      gpuMemoryGiB: gpu.gpu.memoryGiB,
      beyondAsk: null,
    },
    note: `N1 custom machine (${cpu.vcpu} vCPU, ${cpu.memoryGiB} GiB) with ${gpu.gpu.count} attached ${gpu.gpu.model}`,
  };
}

/**
 * The cheapest machine of `cloud` covering the pair: a listed type with the package's GPUs and at
 * least its vCPUs and memory, or on GCP an N1 custom type where the GPU allows it.
 */
export function choosePairMachine(
  cloud: CloudName,
  cpu: CpuPackage,
  gpu: GpuPackage,
  table: MachineTable,
): PairChoice {
  const options: Extract<PairChoice, { instanceType: string }>[] = [];
  const refusals: string[] = [];
  let custom: PairChoice | null = null;
  if (cloud === 'gcp') {
    custom = n1Custom(cpu, gpu);
    if (custom && 'instanceType' in custom) options.push(custom);
    else if (custom) refusals.push(custom.unavailable);
  }
  let sameGpu = 0;
  for (const [key, info] of Object.entries(table)) {
    if (info.cloud !== cloud || info.accelerator) continue;
    const gpuFits = gpu.gpu
      ? !!info.gpu &&
        info.gpu.count === gpu.gpu.count &&
        modelMatches(info.gpu.model, gpu.gpu.model) &&
        gpuMemoryOf(info.gpu.model, info.gpu.memoryGiB) >= gpu.gpu.memoryGiB
      : info.gpu === null;
    if (!gpuFits) continue;
    sameGpu++;
    if (info.vcpu < cpu.vcpu || info.memoryGiB < cpu.memoryGiB) continue;
    if (info.unavailable) {
      refusals.push(`${key}: ${info.unavailable}`);
      continue;
    }
    const price = LISTED[key];
    if (!price) continue;
    const gpuMemoryGiB = info.gpu ? gpuMemoryOf(info.gpu.model, info.gpu.memoryGiB) : null;
    const has = { vcpu: info.vcpu, memoryGiB: info.memoryGiB, gpuMemoryGiB };
    options.push({
      instanceType: key,
      onDemandMicrosPerHour: usd(price[0]),
      spotMicrosPerHour: price[1] === null ? null : usd(price[1]),
      fit: { ...has, beyondAsk: beyondAsk(cpu, gpu, has) },
    });
  }
  if (options.length) {
    // cheapest on demand; on a tie the one closer to the ask
    options.sort(
      (a, b) =>
        a.onDemandMicrosPerHour - b.onDemandMicrosPerHour ||
        a.fit.vcpu - b.fit.vcpu ||
        a.fit.memoryGiB - b.fit.memoryGiB,
    );
    return options[0]!;
  }
  const what = gpu.gpu ? `${gpu.label}` : 'no GPU';
  if (refusals.length) return { unavailable: refusals.join('; ') };
  if (sameGpu === 0 && !custom) return { unavailable: `${cloud} has no machine with ${what}` };
  return {
    unavailable: `no ${cloud} machine with ${what} has ${cpu.vcpu} vCPU and ${cpu.memoryGiB} GiB or more`,
  };
}

/** Every pair id, CPU package first: `s.none`, `s.t4`, ... `xl.h100x8`. */
export function allPairs(): { id: string; cpu: CpuPackage; gpu: GpuPackage }[] {
  return CPU_PACKAGES.flatMap((cpu) =>
    GPU_PACKAGES.map((gpu) => ({ id: pairSizeId(cpu.id, gpu.id), cpu, gpu })),
  );
}

/**
 * Whether a quota's allowed sizes admit `sizeId`: listed by id, or (for a pair) by a wildcard
 * entry `any.<gpu>` (any CPU package with that GPU package) or `<cpu>.any`. Null: everything.
 */
export function sizeAllowed(allowed: readonly string[] | null, sizeId: string): boolean {
  if (!allowed) return true;
  if (allowed.includes(sizeId)) return true;
  const pair = parsePairSizeId(sizeId);
  if (!pair) return false;
  return allowed.includes(`any.${pair.gpu}`) || allowed.includes(`${pair.cpu}.any`);
}

/**
 * Whether one quota entry names `sizeId`: the id itself, or (for a pair) the wildcard `any.<gpu>`
 * or `<cpu>.any`. Presets (`gpu-h100x8`) match by id only.
 */
export function entryMatches(entry: string, sizeId: string): boolean {
  if (entry === sizeId) return true;
  const pair = parsePairSizeId(sizeId);
  return !!pair && (entry === `any.${pair.gpu}` || entry === `${pair.cpu}.any`);
}

/**
 * The first of a quota's forbidden entries that names `sizeId`, or null. A forbid wins over any
 * allow (quotas.ts), so a size forbidden here is refused whatever `allowedSizes` says.
 */
export function forbiddingEntry<T extends { entry: string }>(
  forbidden: readonly T[],
  sizeId: string,
): T | null {
  return forbidden.find((f) => entryMatches(f.entry, sizeId)) ?? null;
}

/**
 * Why a quota's forbidden sizes cannot be stored, or null: the same wildcards as allowed sizes,
 * and `any.any` (forbid everything) is written as `allowedSizes: []`.
 */
export function forbiddenSizesProblem(forbidden: readonly string[] | null): string | null {
  if (forbidden?.includes('any.any'))
    return "'any.any' forbids everything: set allowedSizes to an empty list instead";
  return allowedSizesProblem(forbidden);
}

/**
 * Why a quota's allowed sizes cannot be stored, or null: a package wildcard (`any.<gpu>`,
 * `<cpu>.any`) must name a package that exists (`any.any` is written as no list at all).
 */
export function allowedSizesProblem(allowed: readonly string[] | null): string | null {
  for (const entry of allowed ?? []) {
    const m = /^([a-z0-9]+)\.([a-z0-9]+)$/.exec(entry);
    if (!m || (m[1] !== 'any' && m[2] !== 'any')) continue;
    if (m[1] === 'any' && m[2] === 'any')
      return `'${entry}' allows everything: leave allowedSizes unset (null) instead`;
    if (m[1] === 'any' && !(GPU_PACKAGE_IDS as readonly string[]).includes(m[2]!))
      return `'${entry}': ${m[2]} is not a GPU package (${GPU_PACKAGE_IDS.join(', ')})`;
    if (m[2] === 'any' && !(CPU_PACKAGE_IDS as readonly string[]).includes(m[1]!))
      return `'${entry}': ${m[1]} is not a CPU package (${CPU_PACKAGE_IDS.join(', ')})`;
  }
  return null;
}
