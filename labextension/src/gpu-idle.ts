/**
 * GPU money wasted in the sidebar and the admin panel: the contract's wording (gpu-waste.ts), so
 * the sidebar, the CLI and the API's figures read the same.
 */
import { formatGpuIdle, formatIdleShare, type GpuIdle } from '@ngsci/contract';
import { formatHours, formatMicros } from './format';

/** `idle GPU: 3.2 h, $8.40 this month`; null when no GPU was sampled (nothing to say). */
export function gpuIdleLine(f: GpuIdle | undefined | null, period = 'this month'): string | null {
  if (!f || !(f.sampledSeconds > 0)) return null;
  return `${formatGpuIdle(f)} ${period}`;
}

/** What "idle" means, for the line's tooltip. */
export function gpuIdleHint(
  f: Pick<GpuIdle, 'thresholdPercent' | 'sampledSeconds' | 'idleSeconds'>,
): string {
  return (
    `Billed time during which every GPU was below ${f.thresholdPercent}% utilisation ` +
    `(${formatIdleShare(f)} of the ${formatHours(f.sampledSeconds)} your GPUs were sampled), ` +
    "priced at the instance's rate."
  );
}

/** One row of the admin ranking: name, idle hours, idle share, idle dollars. */
export function gpuWasteRow(e: {
  name: string;
  idleSeconds: number;
  sampledSeconds: number;
  idleMicros: number;
}): string[] {
  return [e.name, formatHours(e.idleSeconds), formatIdleShare(e), formatMicros(e.idleMicros)];
}
