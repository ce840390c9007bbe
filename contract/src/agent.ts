/**
 * What the instance agent (`ngsci agent`) reports with its own per-instance credential: GPU
 * utilisation and memory, whether its server's kernels are executing, and spot or preemption
 * notices from the cloud's metadata endpoint. The instance is the credential's; `server` and
 * `instanceId` in a body are optional and must match it.
 */
import { z } from 'zod';
import { ServerName } from './server-name.js';

/** Optional: the credential names the instance; a body that names one must name the same. */
const Server = ServerName.optional();

export const GpuSample = z
  .object({
    index: z.number().int().min(0).max(255),
    name: z.string().max(200),
    utilizationPercent: z.number().int().min(0).max(100).nullable(),
    memoryUsedMiB: z.number().int().min(0).nullable(),
    memoryTotalMiB: z.number().int().min(0).nullable(),
  })
  .strict()
  .meta({ id: 'GpuSample' });
export type GpuSample = z.infer<typeof GpuSample>;

export const GpuReport = z
  .object({
    server: Server,
    instanceId: z.string().max(64).optional(),
    gpus: z.array(GpuSample).max(64).meta({ description: 'empty when the machine has no GPU' }),
  })
  .strict()
  .meta({ id: 'GpuReport' });
export type GpuReport = z.input<typeof GpuReport>;

export const GpuStatus = z
  .object({
    server: z.string(),
    instanceId: z.string().nullable(),
    reportedAt: z.iso
      .datetime()
      .nullable()
      .meta({ description: 'null when no agent has reported yet' }),
    gpus: z.array(GpuSample),
  })
  .meta({ id: 'GpuStatus' });
export type GpuStatus = z.infer<typeof GpuStatus>;

export const SpotCloud = z.enum(['aws', 'gcp', 'azure']).meta({ id: 'SpotCloud' });
export type SpotCloud = z.infer<typeof SpotCloud>;

export const SpotNotice = z
  .object({
    server: Server,
    instanceId: z.string().max(64).optional(),
    cloud: SpotCloud,
    action: z
      .string()
      .min(1)
      .max(100)
      .meta({ description: 'terminate, stop, hibernate, preempt, Preempt...' }),
    at: z.iso
      .datetime({ offset: true })
      .nullable()
      .meta({ description: 'when the cloud will act, if it says' }),
  })
  .strict()
  .meta({ id: 'SpotNotice' });
export type SpotNotice = z.input<typeof SpotNotice>;

export const KernelReport = z
  .object({
    total: z.number().int().min(0).max(10_000).meta({ description: "the server's kernels" }),
    busy: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .meta({ description: "how many of them were executing ('busy')" }),
  })
  .strict()
  .refine((r) => r.busy <= r.total, { message: 'busy cannot exceed total', path: ['busy'] })
  .meta({ id: 'KernelReport' });
export type KernelReport = z.infer<typeof KernelReport>;

export const Accepted = z.object({ ok: z.literal(true) }).meta({ id: 'Accepted' });
export type Accepted = z.infer<typeof Accepted>;
