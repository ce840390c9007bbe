/**
 * The data-access audit: the instance agent reports who opened and read which file under the
 * dataset mount; the service stores the events append-only, admins list and export them.
 */
import { z } from 'zod';

export const AuditOp = z.enum(['open', 'read', 'close']).meta({ id: 'AuditOp' });
export type AuditOp = z.infer<typeof AuditOp>;

export const AuditEventInput = z
  .object({
    path: z
      .string()
      .min(1)
      .max(4096)
      .refine((p) => p.startsWith('/'), 'an absolute path'),
    op: AuditOp,
    at: z.iso.datetime({ offset: true }),
    bytes: z
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .meta({ description: 'bytes read, where known' }),
    durationMs: z
      .number()
      .int()
      .min(0)
      .max(2_147_483_647)
      .optional()
      .meta({ description: 'open to close, where known' }),
  })
  .strict()
  .meta({ id: 'AuditEventInput' });
export type AuditEventInput = z.infer<typeof AuditEventInput>;

export const AuditBatch = z
  .object({
    server: z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'a server name such as default')
      .default('default'),
    instanceId: z.string().max(64).optional(),
    events: z.array(AuditEventInput).min(1).max(1000),
  })
  .strict()
  .meta({ id: 'AuditBatch' });
export type AuditBatch = z.input<typeof AuditBatch>;

export const AuditAccepted = z.object({ accepted: z.number().int() }).meta({ id: 'AuditAccepted' });

export const AuditEvent = z
  .object({
    id: z.number().int(),
    user: z.string(),
    server: z.string(),
    instanceId: z.string().nullable(),
    path: z.string(),
    op: AuditOp,
    at: z.iso.datetime(),
    bytes: z.number().int().nullable(),
    durationMs: z.number().int().nullable(),
    receivedAt: z.iso.datetime(),
  })
  .meta({ id: 'AuditEvent' });
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AuditList = z
  .object({
    events: z.array(AuditEvent),
    nextAfter: z
      .number()
      .int()
      .nullable()
      .meta({ description: 'pass as `after` for the next page; null at the end' }),
  })
  .meta({ id: 'AuditList' });
export type AuditList = z.infer<typeof AuditList>;

export const AuditQuery = z.object({
  user: z.string().min(1).max(255).optional(),
  path: z.string().min(1).max(4096).optional().meta({ description: 'a path prefix' }),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  format: z.enum(['json', 'csv']).default('json'),
});
