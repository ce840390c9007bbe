/**
 * The machine types ngsci knows, per cloud: GPU model and count, vCPUs and memory. Tests check
 * stacks against it and the service catalog builds its sizes from it. Figures are the clouds'
 * published specifications; prices live in the service's catalog, not here. An operator's catalog
 * file may describe more machine types; `machineTypeProblems` is the one check both sides apply.
 *
 * GCP N1 machines take their GPUs as guest accelerators, so their entries are keyed
 * `<machine type>+<gpu>x<count>` (for example `n1-standard-8+t4x1`); every other key is the
 * cloud's own type name.
 *
 * A type a cloud retired, or one the default images cannot drive, stays listed with the reason in
 * `unavailable`: the catalog turns its offers into unavailable ones and a launch is refused before
 * anything is applied, instead of an apply that fails at the cloud.
 */
import type { Cloud } from './options.js';

export interface InstanceGpu {
  /** T4, A10G, L4, V100, A100-40GB, A100-80GB, H100-80GB here; a catalog file may name others */
  model: string;
  count: number;
  memoryGiB: number;
}

export interface InstanceTypeInfo {
  cloud: Cloud;
  family: string;
  /** what the cloud API calls the machine type */
  machineType: string;
  vcpu: number;
  memoryGiB: number;
  gpu: InstanceGpu | null;
  /** GCP N1 only: the guest accelerator to attach */
  accelerator?: { type: string; count: number };
  /** why no machine of this type may be started (retired by the cloud, no driver), with the date */
  unavailable?: string;
}

/** Checked 2026-11-29 against the clouds' and NVIDIA's documentation. */
const RETIRED_NCV3 =
  'retired by Azure on 2025-09-30 (NCv3 V100 sizes; Azure suggests NC A100 v4 instead)';
const NO_VOLTA_DRIVER =
  "the default GPU AMI (Deep Learning Base OSS Nvidia Driver) ships NVIDIA's open kernel modules, which support Turing and newer GPUs only: a V100 (Volta) gets no driver";

type Row = [
  key: string,
  family: string,
  vcpu: number,
  memoryGiB: number,
  gpu?: [model: string, count: number, memoryGiB: number],
  unavailable?: string,
];

const aws: Row[] = [
  ['m6i.large', 'm6i', 2, 8],
  ['m6i.xlarge', 'm6i', 4, 16],
  ['m6i.2xlarge', 'm6i', 8, 32],
  ['m6i.4xlarge', 'm6i', 16, 64],
  ['c6i.xlarge', 'c6i', 4, 8],
  ['c6i.2xlarge', 'c6i', 8, 16],
  ['c6i.4xlarge', 'c6i', 16, 32],
  ['g4dn.xlarge', 'g4dn', 4, 16, ['T4', 1, 16]],
  ['g4dn.2xlarge', 'g4dn', 8, 32, ['T4', 1, 16]],
  ['g4dn.4xlarge', 'g4dn', 16, 64, ['T4', 1, 16]],
  ['g4dn.12xlarge', 'g4dn', 48, 192, ['T4', 4, 16]],
  ['g5.xlarge', 'g5', 4, 16, ['A10G', 1, 24]],
  ['g5.2xlarge', 'g5', 8, 32, ['A10G', 1, 24]],
  ['g5.4xlarge', 'g5', 16, 64, ['A10G', 1, 24]],
  ['g5.12xlarge', 'g5', 48, 192, ['A10G', 4, 24]],
  ['g5.48xlarge', 'g5', 192, 768, ['A10G', 8, 24]],
  ['g6.xlarge', 'g6', 4, 16, ['L4', 1, 24]],
  ['g6.2xlarge', 'g6', 8, 32, ['L4', 1, 24]],
  ['g6.4xlarge', 'g6', 16, 64, ['L4', 1, 24]],
  ['g6.12xlarge', 'g6', 48, 192, ['L4', 4, 24]],
  ['g6.48xlarge', 'g6', 192, 768, ['L4', 8, 24]],
  ['p3.2xlarge', 'p3', 8, 61, ['V100', 1, 16], NO_VOLTA_DRIVER],
  ['p4d.24xlarge', 'p4d', 96, 1152, ['A100-40GB', 8, 40]],
  ['p5.48xlarge', 'p5', 192, 2048, ['H100-80GB', 8, 80]],
];

const gcp: Row[] = [
  ['e2-standard-2', 'e2', 2, 8],
  ['e2-standard-4', 'e2', 4, 16],
  ['e2-standard-8', 'e2', 8, 32],
  ['e2-standard-16', 'e2', 16, 64],
  ['n2-standard-2', 'n2', 2, 8],
  ['n2-standard-4', 'n2', 4, 16],
  ['n2-standard-8', 'n2', 8, 32],
  ['n2-highmem-8', 'n2', 8, 64],
  ['n1-standard-4+t4x1', 'n1', 4, 15, ['T4', 1, 16]],
  ['n1-standard-8+t4x1', 'n1', 8, 30, ['T4', 1, 16]],
  ['n1-standard-32+t4x4', 'n1', 32, 120, ['T4', 4, 16]],
  ['n1-standard-8+v100x1', 'n1', 8, 30, ['V100', 1, 16]],
  ['n1-standard-32+v100x4', 'n1', 32, 120, ['V100', 4, 16]],
  ['g2-standard-4', 'g2', 4, 16, ['L4', 1, 24]],
  ['g2-standard-8', 'g2', 8, 32, ['L4', 1, 24]],
  ['g2-standard-16', 'g2', 16, 64, ['L4', 1, 24]],
  ['g2-standard-24', 'g2', 24, 96, ['L4', 2, 24]],
  ['g2-standard-48', 'g2', 48, 192, ['L4', 4, 24]],
  ['g2-standard-96', 'g2', 96, 384, ['L4', 8, 24]],
  ['a2-highgpu-1g', 'a2', 12, 85, ['A100-40GB', 1, 40]],
  ['a2-highgpu-2g', 'a2', 24, 170, ['A100-40GB', 2, 40]],
  ['a2-highgpu-4g', 'a2', 48, 340, ['A100-40GB', 4, 40]],
  ['a2-highgpu-8g', 'a2', 96, 680, ['A100-40GB', 8, 40]],
  ['a2-ultragpu-1g', 'a2', 12, 170, ['A100-80GB', 1, 80]],
  ['a2-ultragpu-8g', 'a2', 96, 1360, ['A100-80GB', 8, 80]],
  ['a3-highgpu-8g', 'a3', 208, 1872, ['H100-80GB', 8, 80]],
];

const azure: Row[] = [
  ['Standard_D2s_v5', 'Dsv5', 2, 8],
  ['Standard_D4s_v5', 'Dsv5', 4, 16],
  ['Standard_D8s_v5', 'Dsv5', 8, 32],
  ['Standard_D16s_v5', 'Dsv5', 16, 64],
  ['Standard_NC4as_T4_v3', 'NCasT4_v3', 4, 28, ['T4', 1, 16]],
  ['Standard_NC8as_T4_v3', 'NCasT4_v3', 8, 56, ['T4', 1, 16]],
  ['Standard_NC16as_T4_v3', 'NCasT4_v3', 16, 110, ['T4', 1, 16]],
  ['Standard_NC64as_T4_v3', 'NCasT4_v3', 64, 440, ['T4', 4, 16]],
  ['Standard_NC24ads_A100_v4', 'NCads_A100_v4', 24, 220, ['A100-80GB', 1, 80]],
  ['Standard_NC48ads_A100_v4', 'NCads_A100_v4', 48, 440, ['A100-80GB', 2, 80]],
  ['Standard_NC96ads_A100_v4', 'NCads_A100_v4', 96, 880, ['A100-80GB', 4, 80]],
  ['Standard_NC6s_v3', 'NCsv3', 6, 112, ['V100', 1, 16], RETIRED_NCV3],
  ['Standard_NC12s_v3', 'NCsv3', 12, 224, ['V100', 2, 16], RETIRED_NCV3],
  ['Standard_NC24s_v3', 'NCsv3', 24, 448, ['V100', 4, 16], RETIRED_NCV3],
  ['Standard_ND96asr_v4', 'ND_A100_v4', 96, 900, ['A100-40GB', 8, 40]],
  ['Standard_ND96amsr_A100_v4', 'NDm_A100_v4', 96, 1900, ['A100-80GB', 8, 80]],
  ['Standard_ND96isr_H100_v5', 'ND_H100_v5', 96, 1900, ['H100-80GB', 8, 80]],
];

const GCP_ACCELERATOR: Record<string, string> = {
  t4: 'nvidia-tesla-t4',
  v100: 'nvidia-tesla-v100',
};

function build(cloud: Cloud, rows: Row[]): [string, InstanceTypeInfo][] {
  return rows.map(([key, family, vcpu, memoryGiB, gpu, unavailable]) => {
    const info: InstanceTypeInfo = {
      cloud,
      family,
      machineType: key,
      vcpu,
      memoryGiB,
      gpu: gpu ? { model: gpu[0], count: gpu[1], memoryGiB: gpu[2] } : null,
      ...(unavailable ? { unavailable } : {}),
    };
    const n1 = /^(n1-[a-z]+-\d+)\+([a-z0-9]+)x(\d+)$/.exec(key);
    if (n1) {
      const [, machineType, short, count] = n1 as unknown as [string, string, string, string];
      info.machineType = machineType;
      info.accelerator = { type: GCP_ACCELERATOR[short] ?? short, count: Number(count) };
    }
    return [key, info];
  });
}

/** Every machine type ngsci knows, keyed by the name an offer's `instanceType` uses. */
export const INSTANCE_TYPES: Readonly<Record<string, InstanceTypeInfo>> = Object.freeze(
  Object.fromEntries([...build('aws', aws), ...build('gcp', gcp), ...build('azure', azure)]),
);

export class UnknownInstanceTypeError extends Error {
  override readonly name = 'UnknownInstanceTypeError';
}

/** How each cloud's API spells a machine type; a name that does not fit would fail the plan. */
const MACHINE_NAME: Record<Cloud, RegExp> = {
  aws: /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/,
  gcp: /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/,
  azure: /^(Standard|Basic)_[A-Za-z0-9_-]+$/,
};

/**
 * Why `info` cannot describe a machine the stacks can build, or [] when it can. The service applies
 * it to the machine types of an operator's catalog file at start; the stacks apply it again to a
 * type handed to them, so nothing malformed reaches a plan.
 */
export function machineTypeProblems(info: InstanceTypeInfo): string[] {
  const problems: string[] = [];
  const pattern = MACHINE_NAME[info.cloud];
  if (!pattern) return [`unknown cloud ${String(info.cloud)}`];
  if (!pattern.test(info.machineType))
    problems.push(`${info.machineType} is not how ${info.cloud} names a machine type`);
  if (!(Number.isInteger(info.vcpu) && info.vcpu > 0))
    problems.push('vcpu must be a positive integer');
  if (!(info.memoryGiB > 0)) problems.push('memoryGiB must be positive');
  if (info.gpu && !(Number.isInteger(info.gpu.count) && info.gpu.count > 0))
    problems.push('gpu.count must be a positive integer');
  const n1 = info.cloud === 'gcp' && (/^n1-/.test(info.machineType) || isGcpCustomN1(info));
  if (info.accelerator && !n1)
    problems.push(
      'only GCP N1 machines take a guest accelerator; other types have their GPUs built in',
    );
  if (n1 && info.gpu && !info.accelerator)
    problems.push('a GCP N1 machine with a GPU needs accelerator.type (such as nvidia-tesla-t4)');
  if (info.accelerator && info.accelerator.count !== (info.gpu?.count ?? 0))
    problems.push('accelerator.count must equal gpu.count');
  if (info.accelerator && !/^nvidia-[a-z0-9-]+$/.test(info.accelerator.type))
    problems.push(`${info.accelerator.type} is not a GCP accelerator type such as nvidia-tesla-t4`);
  if (isGcpCustomN1(info)) problems.push(...gcpCustomN1Problems(info));
  return problems;
}

// ---- GCP N1 custom machine types: `custom-<vCPUs>-<memory MiB>`, GPUs attached as accelerators

/** The N1 custom type name GCP takes: `custom-<vCPUs>-<memory in MiB>`. */
const CUSTOM_N1 = /^custom-(\d+)-(\d+)$/;
/** How an offer or a stack key names one with its GPUs: `custom-4-16384+t4x1`. */
const CUSTOM_N1_KEY = /^(custom-\d+-\d+)(?:\+([a-z0-9]+)x(\d+))?$/;

const isGcpCustomN1 = (info: Pick<InstanceTypeInfo, 'cloud' | 'machineType'>): boolean =>
  info.cloud === 'gcp' && CUSTOM_N1.test(info.machineType);

/**
 * The most vCPUs and memory an N1 machine may have with this many GPUs attached (GCP's GPU
 * documentation, checked 2026-11-29).
 */
const N1_GPU_LIMITS: Record<string, Record<number, { vcpu: number; memoryGiB: number }>> = {
  'nvidia-tesla-t4': {
    1: { vcpu: 48, memoryGiB: 312 },
    2: { vcpu: 48, memoryGiB: 312 },
    4: { vcpu: 96, memoryGiB: 624 },
  },
  'nvidia-tesla-v100': {
    1: { vcpu: 12, memoryGiB: 78 },
    2: { vcpu: 24, memoryGiB: 156 },
    4: { vcpu: 48, memoryGiB: 312 },
    8: { vcpu: 96, memoryGiB: 624 },
  },
};

/** The short GPU name of an accelerator type in a key (`nvidia-tesla-t4` → `t4`). */
const shortAccelerator = (type: string): string =>
  Object.entries(GCP_ACCELERATOR).find(([, t]) => t === type)?.[0] ?? type;

/**
 * An N1 custom machine: `vcpu` vCPUs, `memoryMiB` memory, optionally `gpu.count` GPUs attached as
 * accelerator `type`. Check it with `gcpCustomN1Problems` (machineTypeProblems does too).
 */
export function gcpCustomN1(
  vcpu: number,
  memoryMiB: number,
  accelerator?: { type: string; gpu: InstanceGpu },
): InstanceTypeInfo {
  return {
    cloud: 'gcp',
    family: 'n1',
    machineType: `custom-${vcpu}-${memoryMiB}`,
    vcpu,
    memoryGiB: memoryMiB / 1024,
    gpu: accelerator ? { ...accelerator.gpu } : null,
    ...(accelerator
      ? { accelerator: { type: accelerator.type, count: accelerator.gpu.count } }
      : {}),
  };
}

/** The key a stack takes for an N1 custom machine: `custom-4-16384` or `custom-4-16384+t4x1`. */
export function gcpCustomN1Key(info: InstanceTypeInfo): string {
  return info.accelerator
    ? `${info.machineType}+${shortAccelerator(info.accelerator.type)}x${info.accelerator.count}`
    : info.machineType;
}

/**
 * Why an N1 custom machine cannot be made, or [] when it can: vCPUs 1 or an even number up to 96,
 * memory a multiple of 256 MiB between 0.9 and 6.5 GiB per vCPU, and within what the attached
 * GPUs allow.
 */
export function gcpCustomN1Problems(info: InstanceTypeInfo): string[] {
  const problems: string[] = [];
  const m = CUSTOM_N1.exec(info.machineType);
  if (!m) return [`${info.machineType} is not an N1 custom type (custom-<vCPUs>-<MiB>)`];
  const vcpu = Number(m[1]);
  const mib = Number(m[2]);
  if (vcpu !== info.vcpu || mib !== Math.round(info.memoryGiB * 1024))
    problems.push(`${info.machineType} does not match ${info.vcpu} vCPU and ${info.memoryGiB} GiB`);
  if (!(vcpu === 1 || (vcpu % 2 === 0 && vcpu >= 2 && vcpu <= 96)))
    problems.push('an N1 custom machine has 1 vCPU or an even number up to 96');
  if (mib % 256 !== 0) problems.push('N1 custom memory is a multiple of 256 MiB');
  const perVcpu = mib / 1024 / vcpu;
  if (perVcpu < 0.9 || perVcpu > 6.5)
    problems.push(
      `N1 custom memory is 0.9 to 6.5 GiB per vCPU (asked ${Math.round(perVcpu * 100) / 100})`,
    );
  if (info.accelerator) {
    const limits = N1_GPU_LIMITS[info.accelerator.type];
    const limit = limits?.[info.accelerator.count];
    if (!limits) problems.push(`${info.accelerator.type} does not attach to N1 machines`);
    else if (!limit)
      problems.push(
        `${info.accelerator.type} attaches to N1 in counts of ${Object.keys(limits).join(', ')}`,
      );
    else if (vcpu > limit.vcpu || mib / 1024 > limit.memoryGiB)
      problems.push(
        `with ${info.accelerator.count}× ${info.gpu?.model ?? info.accelerator.type} an N1 machine takes at most ${limit.vcpu} vCPU and ${limit.memoryGiB} GiB`,
      );
  }
  return problems;
}

/** The N1 custom machine a key names (`custom-4-16384+t4x1`), or null when it names none. */
export function parseGcpCustomN1Key(
  key: string,
  gpu?: InstanceGpu | null,
): InstanceTypeInfo | null {
  const m = CUSTOM_N1_KEY.exec(key);
  if (!m) return null;
  const [, machineType, short, count] = m as unknown as [string, string, string?, string?];
  const [, v, mib] = CUSTOM_N1.exec(machineType) as unknown as [string, string, string];
  if (!short) return gcpCustomN1(Number(v), Number(mib));
  const type = GCP_ACCELERATOR[short] ?? short;
  const n = Number(count);
  const model = gpu?.model ?? short.toUpperCase();
  return gcpCustomN1(Number(v), Number(mib), {
    type,
    gpu: { model, count: n, memoryGiB: gpu?.memoryGiB ?? 16 },
  });
}

/**
 * The type's description, checked against the cloud it is asked for: the built-in entry, or
 * `defined` (a type from the operator's catalog file, which the service hands over with the
 * options) after `machineTypeProblems` found nothing wrong with it.
 */
export function instanceTypeInfo(
  cloud: Cloud,
  instanceType: string,
  defined?: InstanceTypeInfo,
): InstanceTypeInfo {
  const info =
    defined ??
    INSTANCE_TYPES[instanceType] ??
    (cloud === 'gcp' ? parseGcpCustomN1Key(instanceType) : null) ??
    undefined;
  if (!info || info.cloud !== cloud)
    throw new UnknownInstanceTypeError(`${instanceType} is not a known ${cloud} instance type`);
  const problems = defined || isGcpCustomN1(info) ? machineTypeProblems(info) : [];
  if (problems.length)
    throw new UnknownInstanceTypeError(`${instanceType}: ${problems.join('; ')}`);
  return info;
}

/** Types of one cloud, optionally one family (`g5`, `a2`, `NCasT4_v3`, ...). */
export function instanceTypesOf(cloud: Cloud, family?: string): [string, InstanceTypeInfo][] {
  return Object.entries(INSTANCE_TYPES).filter(
    ([, t]) => t.cloud === cloud && (family === undefined || t.family === family),
  );
}
