/**
 * The data-access audit: the instance agent reports who opened and read which file under the
 * dataset mount; the service appends the events to a hash chain per instance, admins list, export
 * and verify them, set honeypot and threshold rules, and read the security events they raise.
 */
import { z } from 'zod';
import { queryInt } from './query.js';
import { ServerName } from './server-name.js';

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
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().meta({
      description:
        'on `close` of a file that was read: its size at close (an upper bound of the bytes read)',
    }),
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

/**
 * What the agent posts to `POST /api/v1/agent/audit` with its own credential. The user, server and
 * instance come from the credential; `server` is ignored, an `instanceId` other than the
 * credential's is refused.
 */
export const AuditBatch = z
  .object({
    server: ServerName.optional(),
    instanceId: z.string().max(64).optional(),
    events: z.array(AuditEventInput).min(1).max(1000),
  })
  .strict()
  .meta({ id: 'AuditBatch' });
export type AuditBatch = z.input<typeof AuditBatch>;

export const AuditAccepted = z.object({ accepted: z.number().int() }).meta({ id: 'AuditAccepted' });
export type AuditAccepted = z.infer<typeof AuditAccepted>;

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
    /** the hash chain the event belongs to (its instance id); null for events from before chains */
    chain: z.string().nullable(),
    hash: z.string().nullable(),
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
  after: queryInt(0, 0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  format: z.enum(['json', 'csv']).default('json'),
});
export type AuditQuery = z.input<typeof AuditQuery>;

/** One broken link of a hash chain: the first event whose stored hashes do not match. */
export const AuditBreak = z
  .object({
    chain: z.string(),
    /** the event where the chain breaks; null when events after the last one were removed */
    eventId: z.number().int().nullable(),
    reason: z.enum(['changed', 'link', 'truncated', 'no_head']).meta({
      description:
        '`changed`: the event was edited after it was written; `link`: an event before it was ' +
        'deleted, inserted or reordered; `truncated`: events at the end were deleted; ' +
        "`no_head`: the chain's head row is missing",
    }),
    expected: z.string(),
    stored: z.string().nullable(),
    message: z.string(),
  })
  .meta({ id: 'AuditBreak' });
export type AuditBreak = z.infer<typeof AuditBreak>;

export const AuditVerification = z
  .object({
    intact: z.boolean(),
    chains: z.number().int().meta({ description: 'chains checked' }),
    events: z.number().int().meta({ description: 'events checked' }),
    /** events stored before hash chains existed: not covered by verification */
    unchained: z.number().int(),
    /** the first broken link of each broken chain */
    breaks: z.array(AuditBreak),
    checkedAt: z.iso.datetime(),
  })
  .meta({ id: 'AuditVerification' });
export type AuditVerification = z.infer<typeof AuditVerification>;

export const AuditVerifyQuery = z.object({
  chain: z.string().min(1).max(64).optional().meta({ description: 'one chain (an instance id)' }),
});
export type AuditVerifyQuery = z.input<typeof AuditVerifyQuery>;

const RulePath = z
  .string()
  .min(2)
  .max(4096)
  .refine((p) => p.startsWith('/'), 'an absolute path');

export const AuditRuleInput = z
  .discriminatedUnion('kind', [
    z
      .object({
        kind: z.literal('honeypot'),
        path: RulePath.meta({
          description: 'a canary file, or a folder ending in `/`: any open or read of it alerts',
        }),
        stopServer: z.boolean().default(false),
        note: z.string().max(500).optional(),
      })
      .strict(),
    z
      .object({
        kind: z.literal('threshold'),
        path: RulePath.optional().meta({ description: 'only reads under this prefix count' }),
        windowSeconds: z
          .number()
          .int()
          .min(60)
          .max(31 * 86_400),
        // the column is a 32-bit integer: a larger count was a 500 (found by API fuzzing)
        maxFiles: z.number().int().min(1).max(2_147_483_647).optional(),
        maxBytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
        stopServer: z.boolean().default(false),
        note: z.string().max(500).optional(),
      })
      .strict()
      .refine((r) => r.maxFiles !== undefined || r.maxBytes !== undefined, {
        message: 'a threshold needs maxFiles, maxBytes or both',
      }),
  ])
  .meta({ id: 'AuditRuleInput' });
export type AuditRuleInput = z.input<typeof AuditRuleInput>;

export const AuditRule = z
  .object({
    id: z.number().int(),
    kind: z.enum(['honeypot', 'threshold']),
    path: z.string().nullable(),
    windowSeconds: z.number().int().nullable(),
    maxFiles: z.number().int().nullable(),
    maxBytes: z.number().int().nullable(),
    stopServer: z.boolean(),
    note: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'AuditRule' });
export type AuditRule = z.infer<typeof AuditRule>;

export const AuditRuleList = z.object({ rules: z.array(AuditRule) }).meta({ id: 'AuditRuleList' });
export type AuditRuleList = z.infer<typeof AuditRuleList>;

export const SecurityEventKind = z
  .enum([
    'agent_silent',
    'agent_back',
    'honeypot_read',
    'read_threshold',
    'bootstrap_refused',
    'identity_refused',
    'audit_pruned',
    'agent_rate_limited',
    'destroy_failed',
  ])
  .meta({ id: 'SecurityEventKind' });
export type SecurityEventKind = z.infer<typeof SecurityEventKind>;

export const SecurityEvent = z
  .object({
    id: z.number().int(),
    at: z.iso.datetime(),
    kind: SecurityEventKind,
    severity: z.enum(['info', 'warning', 'critical']),
    user: z.string().nullable(),
    server: z.string().nullable(),
    instanceId: z.string().nullable(),
    path: z.string().nullable(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'SecurityEvent' });
export type SecurityEvent = z.infer<typeof SecurityEvent>;

export const SecurityEventList = z
  .object({ events: z.array(SecurityEvent) })
  .meta({ id: 'SecurityEventList' });
export type SecurityEventList = z.infer<typeof SecurityEventList>;

export const SecurityEventQuery = z.object({
  kind: SecurityEventKind.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type SecurityEventQuery = z.input<typeof SecurityEventQuery>;
