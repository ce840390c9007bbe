/**
 * Usage, budgets and cost estimates as the API answers them. Money is integer micro-dollars.
 */
import { z } from 'zod';
import { MicrosInt as Micros, SizeIdString as SizeId } from './money.js';

export const Granularity = z.enum(['hour', 'day', 'month']).meta({ id: 'Granularity' });
export type Granularity = z.infer<typeof Granularity>;

export const UsageQuery = z
  .object({
    from: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({ description: 'default: the start of this month (UTC)' }),
    to: z.iso.datetime({ offset: true }).optional().meta({ description: 'default: now' }),
    granularity: Granularity.default('day'),
  })
  .meta({ id: 'UsageQuery' });
export type UsageQuery = z.input<typeof UsageQuery>;

export const UsagePoint = z
  .object({
    start: z.iso.datetime(),
    size: z.string().meta({ description: 'a size id, or `home-volume` for storage' }),
    seconds: z.number().int().meta({ description: 'billed seconds (60 s minimum per start)' }),
    activeSeconds: z.number().int(),
    idleSeconds: z.number().int(),
    amountMicros: Micros,
  })
  .meta({ id: 'UsagePoint' });
export type UsagePoint = z.infer<typeof UsagePoint>;

export const Usage = z
  .object({
    user: z.string(),
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    granularity: Granularity,
    series: z.array(UsagePoint),
    totalMicros: Micros,
  })
  .meta({ id: 'Usage' });
export type Usage = z.infer<typeof Usage>;

export const BudgetScope = z
  .object({
    kind: z.enum(['user', 'group', 'default']),
    name: z.string(),
    budgetMicros: Micros,
    spentMicros: Micros,
    percent: z.number().int(),
    hardStop: z.boolean(),
    burnMicrosPerHour: Micros,
    exhaustedAt: z.iso.datetime().nullable().meta({
      description:
        'when the budget runs out at the current burn rate; null if it never does this month',
    }),
  })
  .meta({ id: 'BudgetScope' });
export type BudgetScope = z.infer<typeof BudgetScope>;

export const Budget = z
  .object({
    user: z.string(),
    month: z.string().meta({ example: '2026-11' }),
    spentMicros: Micros,
    burnMicrosPerHour: Micros.meta({ description: 'what the running instances cost per hour now' }),
    gpuHoursUsed: z.number(),
    gpuHoursLimit: z.number().int().nullable(),
    budgets: z.array(BudgetScope),
    exhaustedAt: z.iso
      .datetime()
      .nullable()
      .meta({ description: 'the earliest exhaustion among the budgets that apply' }),
    limits: z.object({
      maxConcurrent: z.number().int().nullable(),
      allowedSizes: z.array(z.string()).nullable(),
      idleTimeoutCpuSeconds: z.number().int(),
      idleTimeoutGpuSeconds: z.number().int(),
      maxAgeSeconds: z.number().int().nullable(),
    }),
  })
  .meta({ id: 'Budget' });
export type Budget = z.infer<typeof Budget>;

// ---- estimates

const Money = z.number().int().min(0).max(1e15);

export const EstimateScenario = z
  .object({
    months: z.number().int().min(1).max(120).default(12),
    alwaysOn: z
      .array(
        z
          .object({
            name: z.string().min(1).max(200),
            count: z.number().int().min(1).max(100_000).default(1),
            ratePerHourMicros: Money,
          })
          .strict(),
      )
      .max(1000)
      .default([]),
    fixedMonthly: z
      .array(z.object({ name: z.string().min(1).max(200), monthlyMicros: Money }).strict())
      .max(1000)
      .default([]),
    instanceHours: z
      .array(
        z
          .object({
            size: SizeId,
            cloud: z.enum(['local', 'aws', 'gcp', 'azure']).optional(),
            hoursPerMonth: z.number().min(0).max(1_000_000),
            spot: z.boolean().default(false),
            ratePerHourMicros: Money.optional().meta({
              description: 'a custom rate instead of the catalog price',
            }),
          })
          .strict(),
      )
      .max(1000)
      .default([]),
    storage: z
      .array(
        z
          .object({
            class: z.string().min(1).max(100),
            gb: z.number().min(0).max(1e9),
            gbMonthMicros: Money,
          })
          .strict(),
      )
      .max(1000)
      .default([]),
  })
  .strict()
  .meta({ id: 'EstimateScenario' });
export type EstimateScenario = z.input<typeof EstimateScenario>;

export const EstimateLine = z
  .object({
    kind: z.enum(['always_on', 'fixed', 'instance_hours', 'storage']),
    name: z.string(),
    quantity: z.number(),
    unit: z.string(),
    unitMicros: Micros,
    monthlyMicros: Micros,
  })
  .meta({ id: 'EstimateLine' });
export type EstimateLine = z.infer<typeof EstimateLine>;

export const Estimate = z
  .object({
    asOf: z.string(),
    months: z.number().int(),
    lines: z.array(EstimateLine),
    monthlyMicros: Micros,
    annualMicros: Micros,
    totalMicros: Micros.meta({ description: 'monthly × months' }),
  })
  .meta({ id: 'Estimate' });
export type Estimate = z.infer<typeof Estimate>;
