/**
 * GPU money wasted (issue 15, part 3): the one definition every surface (API, sidebar, admin
 * panel, statements, CLI) shares.
 *
 * Idle: an agent sample is idle when the machine reported at least one GPU and every GPU's
 * utilisation is below the threshold (NGSCI_GPU_IDLE_PERCENT, default 5 %). A GPU without a
 * reading (nvidia-smi's `[N/A]`) makes the sample unknown, never idle: nothing is called wasted
 * that was not measured.
 *
 * Seconds: a sample stands for the time since the instance's previous sample, at most the sample
 * span (NGSCI_GPU_SAMPLE_SPAN, default 90 s: three of the agent's 30 s readings) before it, and
 * only while the instance was billed (from ready to stop). Time no fresh sample covers is
 * unsampled, not idle.
 *
 * Money: idle seconds priced at the instance's own rate (the list rate × the user's plan
 * multiplier), with the ledger's cumulative rounding: the share of the instance's charge during
 * which its GPUs sat idle.
 */
import { z } from 'zod';
import { formatHours, formatMicros } from './figures.js';
import { MicrosInt as Micros } from './money.js';

export const GPU_IDLE_PERCENT_DEFAULT = 5;
export const GPU_SAMPLE_SPAN_DEFAULT = 90;

/** true: every GPU below `percent`; false: some GPU at or above it; null: no GPU, or a GPU without a reading. */
export function gpuSampleIdle(
  gpus: ReadonlyArray<{ utilizationPercent: number | null }>,
  percent: number,
): boolean | null {
  if (!gpus.length) return null;
  if (gpus.some((g) => g.utilizationPercent === null || !Number.isFinite(g.utilizationPercent)))
    return null;
  return gpus.every((g) => (g.utilizationPercent as number) < percent);
}

const Seconds = z.number().int().min(0);

export const GpuIdle = z
  .object({
    idleSeconds: Seconds.meta({ description: 'billed seconds during which every GPU sat idle' }),
    sampledSeconds: Seconds.meta({
      description: 'billed GPU seconds the agent sampled at all (idle or busy)',
    }),
    idleMicros: Micros.meta({ description: "the idle seconds at the instance's own rate" }),
    thresholdPercent: z
      .number()
      .int()
      .meta({ description: 'a GPU below this utilisation (percent) counts as idle' }),
  })
  .meta({ id: 'GpuIdle' });
export type GpuIdle = z.infer<typeof GpuIdle>;

/** `idle GPU: 3.2 h, $8.40`: how every surface words it. */
export function formatGpuIdle(f: Pick<GpuIdle, 'idleSeconds' | 'idleMicros'>): string {
  return `idle GPU: ${formatHours(f.idleSeconds)}, ${formatMicros(f.idleMicros)}`;
}

/** Idle seconds as a share of the sampled seconds: `37 %`, `—` when nothing was sampled. */
export function formatIdleShare(f: Pick<GpuIdle, 'idleSeconds' | 'sampledSeconds'>): string {
  if (!(f.sampledSeconds > 0)) return '—';
  return `${Math.round((100 * f.idleSeconds) / f.sampledSeconds)} %`;
}

/** YYYY-MM as billing.ts's Month (not imported from there: billing.ts imports this file). */
const Month = z
  .string()
  .regex(/^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$/, 'a month as YYYY-MM, from 1970-01');

export const GpuWasteEntry = z
  .object({
    name: z.string().meta({ description: 'a user name, or a hub group' }),
    idleSeconds: Seconds,
    sampledSeconds: Seconds,
    idleMicros: Micros,
  })
  .meta({ id: 'GpuWasteEntry' });
export type GpuWasteEntry = z.infer<typeof GpuWasteEntry>;

export const GpuWasteQuery = z
  .object({
    month: Month.optional().meta({ description: 'default: this month (UTC)' }),
    limit: z.coerce.number().int().min(1).max(1000).default(50),
  })
  .strict()
  .meta({ id: 'GpuWasteQuery' });
export type GpuWasteQuery = z.input<typeof GpuWasteQuery>;

export const GpuWasteRanking = z
  .object({
    month: Month,
    thresholdPercent: z.number().int(),
    users: z
      .array(GpuWasteEntry)
      .meta({ description: 'most idle-GPU dollars first (then idle seconds, then name)' }),
    groups: z.array(GpuWasteEntry).meta({ description: 'the same by hub group' }),
    totalIdleMicros: Micros.meta({ description: "every user's idle-GPU µ$ in the month" }),
    asOf: z.iso.datetime(),
  })
  .meta({ id: 'GpuWasteRanking' });
export type GpuWasteRanking = z.infer<typeof GpuWasteRanking>;
