/**
 * What the instance agent (`ngsci agent`) reports: GPU utilisation and memory, and spot or
 * preemption notices from the cloud's metadata endpoint.
 */
import { z } from 'zod';

const Server = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'a server name such as default')
  .default('default');

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

export const Accepted = z.object({ ok: z.literal(true) }).meta({ id: 'Accepted' });
