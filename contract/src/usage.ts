/**
 * Usage, budgets and cost estimates as the API answers them. Money is integer micro-dollars.
 */
import { z } from 'zod';
import { MicrosInt as Micros, SizeIdString as SizeId } from './money.js';
import { LiveFigures, OpenStream } from './figures.js';
import { GpuIdle } from './gpu-waste.js';
import { CpuPackageId, GpuPackageId, checkMachineChoice } from './packages.js';
import { EstimateCredit, EstimateCredits } from './credits.js';

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
    asOf: z.iso
      .datetime()
      .optional()
      .meta({ description: "the service's clock; series include the unwritten part up to it" }),
    streams: z
      .array(OpenStream)
      .optional()
      .meta({ description: 'open streams, to tick (figures.ts)' }),
    gpuIdle: GpuIdle.optional().meta({
      description: 'idle GPU seconds and their µ$ in [from, to), as the meter wrote them',
    }),
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
    stopAt: z.iso.datetime().nullable().optional().meta({
      description:
        'a hard-stop budget that is spent: when the grace period ends and running servers stop',
    }),
    streams: z.array(OpenStream).optional().meta({
      description:
        "a group budget: its members' open streams, to tick spentMicros from asOf (figures.ts)",
    }),
  })
  .meta({ id: 'BudgetScope' });
export type BudgetScope = z.infer<typeof BudgetScope>;

/**
 * One launch choice (size, cloud, on-demand or spot) for one user: its rate after the user's
 * plan, the remaining budget's runway at that rate, whether a quota forbids it, and the idle
 * timeout that would apply. GET /budget answers one per offered choice.
 */
export const SizeRunway = z
  .object({
    size: z.string(),
    cloud: z.enum(['local', 'aws', 'gcp', 'azure']),
    spot: z.boolean(),
    rateMicrosPerHour: Micros.meta({ description: "the list rate × the user's plan multiplier" }),
    runwaySeconds: z
      .number()
      .int()
      .nullable()
      .meta({
        description:
          'how long the remaining budget lasts at this rate alone (the tightest budget that applies); ' +
          'null when no budget applies or the rate is 0',
      }),
    budget: z
      .string()
      .nullable()
      .meta({ description: 'the budget that sets the runway, as kind:name; null when none' }),
    forbidden: z
      .object({ code: z.enum(['quota_exceeded', 'budget_exhausted']), reason: z.string() })
      .nullable()
      .meta({ description: 'why a launch or resize to this choice is refused; null if allowed' }),
    idleTimeoutSeconds: z
      .number()
      .int()
      .meta({ description: 'idle servers of this size stop after this long; 0: never' }),
    simulated: z
      .boolean()
      .optional()
      .meta({ description: "a GPU size run as a process on the hub's machine, without a GPU" }),
  })
  .meta({ id: 'SizeRunway' });
export type SizeRunway = z.infer<typeof SizeRunway>;

/** `3 h 12 min`, `45 min`, `< 1 min`, `12 d 4 h`: how long a runway lasts, for people. */
export function formatRunway(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const min = Math.floor(seconds / 60);
  if (min < 1) return '< 1 min';
  const h = Math.floor(min / 60);
  if (h < 1) return `${min} min`;
  const d = Math.floor(h / 24);
  if (d < 1) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export const Budget = z
  .object({
    user: z.string(),
    month: z.string().meta({ example: '2026-11' }),
    spentMicros: Micros,
    burnMicrosPerHour: Micros.meta({ description: 'what the running instances cost per hour now' }),
    gpuHoursUsed: z.number(),
    gpuHoursLimit: z.number().int().nullable(),
    budgets: z.array(BudgetScope),
    asOf: z.iso.datetime().optional().meta({ description: "the service's clock for every figure" }),
    spentTodayMicros: Micros.optional().meta({ description: 'spent today (UTC) at asOf' }),
    figures: LiveFigures.optional().meta({
      description: 'today, this month and the open streams: tick them with figures.ts',
    }),
    exhaustedAt: z.iso
      .datetime()
      .nullable()
      .meta({ description: 'the earliest exhaustion among the budgets that apply' }),
    stopAt: z.iso.datetime().nullable().optional().meta({
      description:
        'a hard-stop budget is spent: when its grace period ends and running servers stop (the earliest)',
    }),
    runway: z.array(SizeRunway).optional().meta({
      description: 'per offered size, cloud and spot choice: runway, quota refusal, idle timeout',
    }),
    limits: z.object({
      maxConcurrent: z.number().int().nullable(),
      allowedSizes: z.array(z.string()).nullable(),
      forbiddenSizes: z
        .array(z.object({ entry: z.string(), reason: z.string() }))
        .optional()
        .meta({
          description:
            'what the quotas that apply forbid (a size id, `any.<gpu>` or `<cpu>.any`) and why: a forbid wins over any allow',
        }),
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
            size: SizeId.optional().meta({ description: 'a named size; or cpu (and gpu)' }),
            cpu: CpuPackageId.optional().meta({ description: 'a pair: its CPU package' }),
            gpu: GpuPackageId.optional().meta({
              description: "a pair's GPU package; default none",
            }),
            cloud: z.enum(['local', 'aws', 'gcp', 'azure']).optional(),
            hoursPerMonth: z.number().min(0).max(1_000_000),
            spot: z.boolean().default(false),
            ratePerHourMicros: Money.optional().meta({
              description: 'a custom rate instead of the catalog price',
            }),
          })
          .strict()
          .superRefine((v, ctx) => checkMachineChoice(v, ctx, { required: true })),
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
    // cloud credit grants (credits.ts): grants to try, and/or what this hub has recorded
    credits: z.array(EstimateCredit).max(100).optional(),
    useRecordedCredits: z.boolean().optional().meta({
      description: "apply what is left of this hub's recorded credit grants (admins only)",
    }),
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
    credits: EstimateCredits.optional().meta({
      description: 'when the scenario names credits: what they cover and the total after them',
    }),
  })
  .meta({ id: 'Estimate' });
export type Estimate = z.infer<typeof Estimate>;
