/**
 * Per-resource sizes: a CPU package (vCPUs and memory) with a GPU package (which GPUs, or none).
 * A chosen pair has one canonical size id, `<cpu>.<gpu>` (`m.t4`), which fits the SizeId rule, so
 * instances, the ledger, billing snapshots and quotas keep working on size ids; the flat sizes
 * (cpu-small, gpu-a100, ...) stay as named presets. The packages are fixed here so every surface
 * (API, CLI, magic, spawn form) validates the same names; the service's catalog says what each
 * cloud offers for a pair and at what price.
 */
import { z } from 'zod';

export const CPU_PACKAGE_IDS = ['s', 'm', 'l', 'xl'] as const;
export const GPU_PACKAGE_IDS = [
  'none',
  't4',
  'l4',
  'a10g',
  'v100',
  'a100',
  'a100x8',
  'h100x8',
] as const;

export const CpuPackageId = z
  .enum(CPU_PACKAGE_IDS, { error: `a CPU package: ${CPU_PACKAGE_IDS.join(', ')}` })
  .meta({ id: 'CpuPackageId', example: 'm' });
export type CpuPackageId = z.infer<typeof CpuPackageId>;

export const GpuPackageId = z
  .enum(GPU_PACKAGE_IDS, { error: `a GPU package: ${GPU_PACKAGE_IDS.join(', ')}` })
  .meta({ id: 'GpuPackageId', example: 't4' });
export type GpuPackageId = z.infer<typeof GpuPackageId>;

export const CpuPackage = z
  .object({
    id: CpuPackageId,
    label: z.string(),
    vcpu: z.number().int().positive(),
    memoryGiB: z.number().positive(),
  })
  .meta({ id: 'CpuPackage' });
export type CpuPackage = z.infer<typeof CpuPackage>;

export const GpuPackage = z
  .object({
    id: GpuPackageId,
    label: z.string(),
    gpu: z
      .object({
        model: z.string(),
        count: z.number().int().positive(),
        memoryGiB: z.number().meta({ description: 'at least this much memory per GPU' }),
      })
      .nullable(),
  })
  .meta({ id: 'GpuPackage' });
export type GpuPackage = z.infer<typeof GpuPackage>;

/** The size id of a pair: `m.t4`, `xl.none`. */
export const pairSizeId = (cpu: CpuPackageId, gpu: GpuPackageId): string => `${cpu}.${gpu}`;

/** The pair a size id names, or null for a preset (or anything else). */
export function parsePairSizeId(id: string): { cpu: CpuPackageId; gpu: GpuPackageId } | null {
  const m = /^([a-z0-9]+)\.([a-z0-9]+)$/.exec(id);
  if (!m) return null;
  const cpu = CpuPackageId.safeParse(m[1]);
  const gpu = GpuPackageId.safeParse(m[2]);
  return cpu.success && gpu.success ? { cpu: cpu.data, gpu: gpu.data } : null;
}

/**
 * The size a machine choice names: its `size`, or the pair's id for `cpu` with `gpu` (a missing
 * `gpu` is `none`). Null when it names neither; the schemas refuse both at once.
 */
export function chosenSizeId(choice: {
  size?: string | undefined;
  cpu?: CpuPackageId | undefined;
  gpu?: GpuPackageId | undefined;
}): string | null {
  if (choice.size) return choice.size;
  if (choice.cpu) return pairSizeId(choice.cpu, choice.gpu ?? 'none');
  return null;
}

/** What a pair's offer machine has, when the cloud gives more than the pair asks. */
export const MachineFit = z
  .object({
    vcpu: z.number().int().positive(),
    memoryGiB: z.number().positive(),
    gpuMemoryGiB: z.number().nullable(),
    beyondAsk: z
      .string()
      .nullable()
      .meta({ description: "e.g. 'you get 8 vCPU; you asked for 4'; null: exactly the ask" }),
  })
  .meta({ id: 'MachineFit' });
export type MachineFit = z.infer<typeof MachineFit>;

/** The rule every machine choice (launch, resize, spawn) follows: a size, or a pair, not both. */
export function checkMachineChoice(
  v: { size?: string | undefined; cpu?: string | undefined; gpu?: string | undefined },
  ctx: z.RefinementCtx,
  opts: { required: boolean },
): void {
  if (v.size && (v.cpu || v.gpu))
    ctx.addIssue({
      code: 'custom',
      path: ['size'],
      message: 'give either size or cpu (with gpu), not both',
    });
  else if (!v.size && !v.cpu && v.gpu)
    ctx.addIssue({
      code: 'custom',
      path: ['cpu'],
      message: 'gpu needs cpu as well (a CPU package: s, m, l, xl)',
    });
  else if (opts.required && !v.size && !v.cpu)
    ctx.addIssue({
      code: 'custom',
      path: ['size'],
      message: 'give a size (such as gpu-t4) or cpu with gpu (such as cpu m, gpu t4)',
    });
}
