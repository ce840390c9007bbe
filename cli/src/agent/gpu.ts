/**
 * GPU utilisation and memory from `nvidia-smi`. A machine without a GPU (no nvidia-smi, or no
 * driver) has no GPUs: that is an answer, not an error.
 */
import { execFile } from 'node:child_process';
import type { GpuSample } from '@ngsci/contract';

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,name,utilization.gpu,memory.used,memory.total',
  '--format=csv,noheader,nounits',
];

const num = (s: string | undefined): number | null => {
  const t = (s ?? '').trim();
  return /^\d+(\.\d+)?$/.test(t) ? Math.round(Number(t)) : null; // "[N/A]", "[Not Supported]"
};

/** Parses `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): GpuSample[] {
  const out: GpuSample[] = [];
  for (const line of csv.split(/\r?\n/)) {
    if (!line.trim()) continue;
    // the name may hold commas in principle; the numbers are the last three fields
    const parts = line.split(',');
    if (parts.length < 5) continue;
    const index = num(parts[0]);
    if (index === null) continue;
    const total = num(parts[parts.length - 1]);
    const used = num(parts[parts.length - 2]);
    const util = num(parts[parts.length - 3]);
    const name = parts
      .slice(1, parts.length - 3)
      .join(',')
      .trim();
    out.push({
      index,
      name,
      utilizationPercent: util === null ? null : Math.min(100, util),
      memoryUsedMiB: used,
      memoryTotalMiB: total,
    });
  }
  return out;
}

export type Runner = (
  cmd: string,
  args: string[],
) => Promise<{ code: number | null; stdout: string; stderr: string; missing?: boolean }>;

export const runCommand: Runner = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      if (e && e.code === 'ENOENT')
        return resolve({ code: null, stdout: '', stderr: '', missing: true });
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });

export interface GpuReading {
  gpus: GpuSample[];
  /** why there are none, when there are none: for the agent's log */
  note?: string;
}

export async function readGpus(nvidiaSmi: string, run: Runner = runCommand): Promise<GpuReading> {
  const r = await run(nvidiaSmi, NVIDIA_SMI_ARGS);
  if (r.missing) return { gpus: [], note: `${nvidiaSmi} not found: no NVIDIA GPU on this machine` };
  if (r.code !== 0) {
    return {
      gpus: [],
      note: `${nvidiaSmi} exited with ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]?.slice(0, 200) ?? ''}`,
    };
  }
  return { gpus: parseNvidiaSmi(r.stdout) };
}
