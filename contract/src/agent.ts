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

/**
 * Why a machine refused to start its server, found by the checks it runs after the bootstrap
 * exchange and before the single-user server starts:
 * - `hub_unreachable`: `GET $JUPYTERHUB_API_URL/` did not answer JupyterHub's JSON from the machine;
 * - `gpu_unavailable`: a GPU size, but `nvidia-smi -L` listed no GPU inside the container (or venv);
 * - `agent_missing`: the image (or venv) has no working `ngsci agent`;
 * - `user_privileged`: the notebook's user could gain root on the machine (sudo, admin or wheel
 *   group, a sudoers entry) or is not the dedicated account;
 * - `rebooted`: the machine restarted; its environment lived in memory and its bootstrap token is
 *   spent, so its server cannot come back (the instance is replaced, never left billing).
 */
export const BootFailureCode = z
  .enum(['hub_unreachable', 'gpu_unavailable', 'agent_missing', 'user_privileged', 'rebooted'])
  .meta({ id: 'BootFailureCode' });
export type BootFailureCode = z.infer<typeof BootFailureCode>;

/** What a machine posts to `POST /api/v1/agent/boot` with its agent credential. */
export const BootReport = z
  .discriminatedUnion('stage', [
    z.object({ stage: z.literal('ready') }).strict(),
    z
      .object({
        stage: z.literal('failed'),
        code: BootFailureCode,
        message: z
          .string()
          .min(1)
          .max(2000)
          .meta({ description: 'what failed, in words an operator can act on' }),
      })
      .strict(),
  ])
  .meta({ id: 'BootReport' });
export type BootReport = z.infer<typeof BootReport>;

/** The newest boot report of an instance; `pending` until its machine has posted one. */
export const BootStatus = z
  .object({
    state: z.enum(['pending', 'ready', 'failed']),
    code: BootFailureCode.optional(),
    message: z.string().optional(),
  })
  .meta({ id: 'BootStatus' });
export type BootStatus = z.infer<typeof BootStatus>;
