/** Monthly statements, derived from the usage ledger so they can always be recomputed. */
import { z } from 'zod';
import { MicrosInt as Micros } from './money.js';
import { OpenStream } from './figures.js';
import { GpuIdle } from './gpu-waste.js';

export const Month = z
  .string()
  // from 1970: Postgres has no year 0, and month 0000-01 was a 500 (found by API fuzzing)
  .regex(/^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$/, 'a month as YYYY-MM, from 1970-01')
  .meta({ id: 'Month', example: '2026-11' });
export type Month = z.infer<typeof Month>;

export const StatementLine = z
  .object({
    kind: z.enum(['compute', 'storage']),
    server: z.string().nullable(),
    instanceId: z.string().nullable(),
    size: z.string(),
    cloud: z.string(),
    region: z.string(),
    spot: z.boolean(),
    plan: z.string(),
    multiplierPpm: z.number().int(),
    ratePerHourMicros: Micros,
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    seconds: z.number().int(),
    amountMicros: Micros,
  })
  .meta({ id: 'StatementLine' });
export type StatementLine = z.infer<typeof StatementLine>;

export const Statement = z
  .object({
    user: z.string(),
    month: Month,
    lines: z.array(StatementLine),
    computeMicros: Micros,
    storageMicros: Micros,
    totalMicros: Micros,
    asOf: z.iso.datetime().optional().meta({
      description: "the service's clock; the running month's lines are live up to it",
    }),
    streams: z
      .array(OpenStream)
      .optional()
      .meta({ description: 'open streams, to tick the running month (figures.ts)' }),
    gpuIdle: GpuIdle.optional().meta({
      description: "the month's idle GPU seconds and their µ$ (already part of the lines' amounts)",
    }),
  })
  .meta({ id: 'Statement' });
export type Statement = z.infer<typeof Statement>;

export const StatementSummary = z
  .object({ month: Month, totalMicros: Micros, seconds: z.number().int() })
  .meta({ id: 'StatementSummary' });
export type StatementSummary = z.infer<typeof StatementSummary>;

export const StatementList = z
  .object({
    user: z.string(),
    statements: z.array(StatementSummary),
    asOf: z.iso
      .datetime()
      .optional()
      .meta({ description: "the service's clock; the running month's total is live up to it" }),
    streams: z
      .array(OpenStream)
      .optional()
      .meta({ description: 'open streams, to tick (figures.ts)' }),
  })
  .meta({ id: 'StatementList' });
export type StatementList = z.infer<typeof StatementList>;
