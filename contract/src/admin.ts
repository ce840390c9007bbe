/** What admins configure: quotas and budgets, plans and their assignments, price overrides. */
import { z } from 'zod';
import { CloudName as Cloud, MicrosInt as Micros, SizeIdString as SizeId } from './money.js';
import { OpenStream } from './figures.js';

const limit = (max: number) => z.number().int().min(0).max(max).nullable();
const minBound = z
  .number()
  .int()
  .min(1)
  .max(31 * 86400)
  .nullable();
/** min ≤ max, where a max of 0 is no upper bound and an unset side bounds nothing */
const boundsInOrder = (min: number | null | undefined, max: number | null | undefined) =>
  min == null || max == null || max === 0 || min <= max;

export const QuotaSubject = z.enum(['user', 'group', 'default']).meta({ id: 'QuotaSubject' });
export type QuotaSubject = z.infer<typeof QuotaSubject>;

export const QuotaInput = z
  .object({
    subjectKind: QuotaSubject,
    subjectName: z.string().max(255).default(''),
    monthlyBudgetMicros: limit(1e15).optional(),
    hardStop: z.boolean().default(false),
    maxConcurrent: limit(1000).optional(),
    allowedSizes: z.array(SizeId).max(200).nullable().optional(),
    // sizes refused whatever any row allows: ids, `any.<gpu>`, `<cpu>.any` (hub-service quotas.ts)
    forbiddenSizes: z.array(SizeId).max(200).nullable().optional(),
    gpuHoursPerMonth: limit(1_000_000).optional(),
    idleTimeoutCpuSeconds: limit(31 * 86400).optional(),
    idleTimeoutGpuSeconds: limit(31 * 86400).optional(),
    // the bounds a researcher chooses their own idle timeout within (idle.ts); max 0: no upper bound
    idleTimeoutCpuMinSeconds: minBound.optional(),
    idleTimeoutCpuMaxSeconds: limit(31 * 86400).optional(),
    idleTimeoutGpuMinSeconds: minBound.optional(),
    idleTimeoutGpuMaxSeconds: limit(31 * 86400).optional(),
    maxAgeSeconds: limit(366 * 86400).optional(),
  })
  .strict()
  .refine((q) => (q.subjectKind === 'default') === (q.subjectName === ''), {
    message: "subjectName must be '' for the default quota and a name for a user or group",
    path: ['subjectName'],
  })
  .refine((q) => boundsInOrder(q.idleTimeoutCpuMinSeconds, q.idleTimeoutCpuMaxSeconds), {
    message: 'idleTimeoutCpuMinSeconds must not be above idleTimeoutCpuMaxSeconds',
    path: ['idleTimeoutCpuMinSeconds'],
  })
  .refine((q) => boundsInOrder(q.idleTimeoutGpuMinSeconds, q.idleTimeoutGpuMaxSeconds), {
    message: 'idleTimeoutGpuMinSeconds must not be above idleTimeoutGpuMaxSeconds',
    path: ['idleTimeoutGpuMinSeconds'],
  })
  .meta({ id: 'QuotaInput' });
export type QuotaInput = z.input<typeof QuotaInput>;

export const Quota = z
  .object({
    id: z.number().int(),
    subjectKind: QuotaSubject,
    subjectName: z.string(),
    monthlyBudgetMicros: Micros.nullable(),
    hardStop: z.boolean(),
    maxConcurrent: z.number().int().nullable(),
    allowedSizes: z.array(z.string()).nullable(),
    forbiddenSizes: z.array(z.string()).nullable().optional(),
    gpuHoursPerMonth: z.number().int().nullable(),
    idleTimeoutCpuSeconds: z.number().int().nullable(),
    idleTimeoutGpuSeconds: z.number().int().nullable(),
    idleTimeoutCpuMinSeconds: z.number().int().nullable().optional(),
    idleTimeoutCpuMaxSeconds: z.number().int().nullable().optional(),
    idleTimeoutGpuMinSeconds: z.number().int().nullable().optional(),
    idleTimeoutGpuMaxSeconds: z.number().int().nullable().optional(),
    maxAgeSeconds: z.number().int().nullable(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Quota' });
export type Quota = z.infer<typeof Quota>;

export const QuotaList = z.object({ quotas: z.array(Quota) }).meta({ id: 'QuotaList' });
export type QuotaList = z.infer<typeof QuotaList>;

export const PlanId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes');
export type PlanId = z.infer<typeof PlanId>;

export const PlanInput = z
  .object({
    id: PlanId,
    label: z.string().min(1).max(200),
    multiplierPpm: z
      .number()
      .int()
      .min(0)
      .max(100_000_000)
      .meta({ description: '0 free, 1000000 list price' }),
  })
  .strict()
  .meta({ id: 'PlanInput' });
export type PlanInput = z.input<typeof PlanInput>;

export const Plan = z
  .object({
    id: z.string(),
    label: z.string(),
    multiplierPpm: z.number().int(),
    builtIn: z.boolean(),
  })
  .meta({ id: 'Plan' });
export type Plan = z.infer<typeof Plan>;
export const PlanList = z.object({ plans: z.array(Plan) }).meta({ id: 'PlanList' });
export type PlanList = z.infer<typeof PlanList>;

export const PlanAssignmentInput = z
  .object({
    subjectKind: z.enum(['user', 'group']),
    subjectName: z.string().min(1).max(255),
    planId: PlanId,
  })
  .strict()
  .meta({ id: 'PlanAssignmentInput' });
export type PlanAssignmentInput = z.input<typeof PlanAssignmentInput>;
export const PlanAssignment = z
  .object({
    id: z.number().int(),
    subjectKind: z.enum(['user', 'group']),
    subjectName: z.string(),
    planId: z.string(),
  })
  .meta({ id: 'PlanAssignment' });
export type PlanAssignment = z.infer<typeof PlanAssignment>;
export const PlanAssignmentList = z
  .object({ assignments: z.array(PlanAssignment) })
  .meta({ id: 'PlanAssignmentList' });
export type PlanAssignmentList = z.infer<typeof PlanAssignmentList>;

export const PriceOverrideInput = z
  .object({
    size: SizeId,
    cloud: Cloud,
    onDemandMicrosPerHour: Micros.min(0),
    spotMicrosPerHour: Micros.min(0).nullable().optional(),
    note: z.string().max(500).optional(),
  })
  .strict()
  .meta({ id: 'PriceOverrideInput' });
export type PriceOverrideInput = z.input<typeof PriceOverrideInput>;
export const PriceOverride = z
  .object({
    size: z.string(),
    cloud: Cloud,
    onDemandMicrosPerHour: Micros,
    spotMicrosPerHour: Micros.nullable(),
    note: z.string().nullable(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'PriceOverride' });
export type PriceOverride = z.infer<typeof PriceOverride>;
export const PriceOverrideList = z
  .object({ overrides: z.array(PriceOverride) })
  .meta({ id: 'PriceOverrideList' });
export type PriceOverrideList = z.infer<typeof PriceOverrideList>;

export const AdminUser = z
  .object({
    name: z.string(),
    groups: z.array(z.string()),
    plan: z.string(),
    running: z.number().int(),
    spentMicros: Micros,
    budgetMicros: Micros.nullable(),
    percent: z.number().int().nullable(),
  })
  .meta({ id: 'AdminUser' });
export type AdminUser = z.infer<typeof AdminUser>;
export const AdminUserList = z
  .object({
    month: z.string(),
    users: z.array(AdminUser),
    asOf: z.iso
      .datetime()
      .optional()
      .meta({ description: "the service's clock; spentMicros include usage up to it" }),
    streams: z
      .array(OpenStream)
      .optional()
      .meta({ description: "every user's open streams, to tick spentMicros (figures.ts)" }),
  })
  .meta({ id: 'AdminUserList' });
export type AdminUserList = z.infer<typeof AdminUserList>;

/** The admin sign-in of a browser (`GET /session`), from the service's own hub OAuth login. */
export const AdminSession = z
  .object({
    user: z.string(),
    admin: z.boolean().meta({ description: 'the signed-in token holds the admin scope' }),
    csrf: z.string().meta({ description: 'send it back in x-ngsci-csrf with every change' }),
    expiresAt: z.string().meta({ description: 'when the sign-in ends (ISO 8601)' }),
  })
  .meta({ id: 'AdminSession' });
export type AdminSession = z.infer<typeof AdminSession>;

/** `GET /admin/meter`: the meter loop in the replica that answers. */
export const MeterStatus = z
  .object({
    leader: z.boolean(),
    lastCycle: z.record(z.string(), z.unknown()).nullable(),
    activeInstances: z.number().int(),
  })
  .meta({ id: 'MeterStatus' });
export type MeterStatus = z.infer<typeof MeterStatus>;
