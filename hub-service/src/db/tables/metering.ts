/**
 * Metering, billing and budget tables. `usage_intervals` is the append-only ledger every statement
 * is derived from; the others hold what admins configure (quotas, price overrides) and what the
 * meter has already done once (alerts sent, idle warnings, the meter lease).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  date,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

/**
 * One accrued stretch of usage. `meter_key` names the stream (an instance id for compute,
 * `home:<user>` for the home volume); (meter_key, started_at) is unique and each new row starts at
 * the previous row's end, so a replayed meter cycle can never insert an overlap.
 * Amounts use cumulative rounding: `billed_from`/`billed_to` are the stream's billed seconds
 * before and after this row, and amount = R(billed_to) - R(billed_from) with
 * R(s) = floor((2 * rate * s * multiplier_ppm + P) / (2 * P)) with P = rate_period_seconds * 1_000_000
 * (round half up),
 * so a stream's total never drifts from its exact price by more than half a micro-dollar.
 */
export const usageIntervals = pgTable(
  'usage_intervals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    meterKey: text('meter_key').notNull(),
    kind: text('kind').$type<'compute' | 'storage'>().notNull(),
    userName: text('user_name').notNull(),
    groups: text('groups')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    instanceId: uuid('instance_id'),
    serverName: text('server_name'),
    sizeId: text('size_id').notNull(),
    sizeClass: text('size_class').$type<'cpu' | 'gpu' | 'storage'>().notNull(),
    cloud: text('cloud').notNull(),
    region: text('region').notNull(),
    spot: boolean('spot').notNull().default(false),
    planId: text('plan_id').notNull(),
    multiplierPpm: integer('multiplier_ppm').notNull(),
    /** list price in µ$ per rate_period_seconds: per hour (3600) for compute, per month (730 h) for storage */
    rateMicros: bigint('rate_micros', { mode: 'number' }).notNull(),
    ratePeriodSeconds: integer('rate_period_seconds').notNull(),
    startedAt: ts('started_at').notNull(),
    endedAt: ts('ended_at').notNull(),
    billedFrom: bigint('billed_from', { mode: 'number' }).notNull(),
    billedTo: bigint('billed_to', { mode: 'number' }).notNull(),
    activeSeconds: integer('active_seconds').notNull().default(0),
    idleSeconds: integer('idle_seconds').notNull().default(0),
    /** the row that reaches the end of its stream (the instance stopped) */
    final: boolean('final').notNull().default(false),
    amountMicros: bigint('amount_micros', { mode: 'number' }).notNull(),
    /**
     * µ$ of the row's list cost that cloud credit grants covered, recorded only while the admin
     * chooses that credits also lower researchers' charges (metering/credit-cover.ts); then
     * amount_micros is charged on the rest. 0 otherwise (the replay still draws grants down).
     */
    creditMicros: bigint('credit_micros', { mode: 'number' }).notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('usage_intervals_stream_start').on(t.meterKey, t.startedAt),
    // a user's rows over a range (the usage chart, a month's statement lines)
    index('usage_intervals_user_start').on(t.userName, t.startedAt, t.amountMicros),
    // no index on groups or on started_at alone: spend by group, by user or over everyone reads
    // the per-day totals below, and every index here is paid for by each meter cycle's insert
  ],
);

/**
 * Running totals of the ledger per user, UTC day and size: what month-to-date spend, today's
 * spend, GPU-hours and the statements list read, so a budget check costs a few dozen rows however
 * long the ledger grows. They are kept by statement-level triggers on usage_intervals (migration
 * 0008_usage_totals), in the same statement as every insert (and, should an admin ever edit the
 * ledger by hand, every update, delete or truncate), so they cannot drift from the rows; the
 * migration filled them from the rows that existed. `micros` is the exact Σ amount_micros of the
 * rows that started that day (rows never cross an hour, so never a day).
 */
export const usageUserDays = pgTable(
  'usage_user_days',
  {
    userName: text('user_name').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    kind: text('kind').$type<'compute' | 'storage'>().notNull(),
    sizeId: text('size_id').notNull(),
    micros: bigint('micros', { mode: 'number' }).notNull(),
    /** Σ (billed_to - billed_from) */
    billedSeconds: bigint('billed_seconds', { mode: 'number' }).notNull(),
    /** Σ (billed_to - billed_from) of rows whose size_class is gpu */
    gpuSeconds: bigint('gpu_seconds', { mode: 'number' }).notNull(),
    activeSeconds: bigint('active_seconds', { mode: 'number' }).notNull(),
    idleSeconds: bigint('idle_seconds', { mode: 'number' }).notNull(),
    rows: integer('rows').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userName, t.day, t.kind, t.sizeId] })],
);

/** The same for each group named on a row (`groups`): what group budgets read. */
export const usageGroupDays = pgTable(
  'usage_group_days',
  {
    groupName: text('group_name').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    micros: bigint('micros', { mode: 'number' }).notNull(),
    rows: integer('rows').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupName, t.day] })],
);

/**
 * Quotas and budgets for one subject: a user, a group, or the default (subject_name '').
 * A null field means "no limit from this row".
 */
export const quotas = pgTable(
  'quotas',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    subjectKind: text('subject_kind').$type<'user' | 'group' | 'default'>().notNull(),
    subjectName: text('subject_name').notNull().default(''),
    monthlyBudgetMicros: bigint('monthly_budget_micros', { mode: 'number' }),
    hardStop: boolean('hard_stop').notNull().default(false),
    maxConcurrent: integer('max_concurrent'),
    allowedSizes: text('allowed_sizes').array(),
    /** sizes this subject may not use, whatever any row allows (quotas.ts: a forbid wins) */
    forbiddenSizes: text('forbidden_sizes').array(),
    gpuHoursPerMonth: integer('gpu_hours_per_month'),
    idleTimeoutCpuSeconds: integer('idle_timeout_cpu_seconds'),
    idleTimeoutGpuSeconds: integer('idle_timeout_gpu_seconds'),
    /** the bounds a researcher chooses their own idle timeout within (tables/idle.ts); max 0: none */
    idleTimeoutCpuMinSeconds: integer('idle_timeout_cpu_min_seconds'),
    idleTimeoutCpuMaxSeconds: integer('idle_timeout_cpu_max_seconds'),
    idleTimeoutGpuMinSeconds: integer('idle_timeout_gpu_min_seconds'),
    idleTimeoutGpuMaxSeconds: integer('idle_timeout_gpu_max_seconds'),
    maxAgeSeconds: integer('max_age_seconds'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('quotas_subject').on(t.subjectKind, t.subjectName)],
);

/** An admin's price for one offer; replaces the catalog's figure everywhere (launch, estimate). */
export const priceOverrides = pgTable(
  'price_overrides',
  {
    sizeId: text('size_id').notNull(),
    cloud: text('cloud').notNull(),
    onDemandMicrosPerHour: bigint('on_demand_micros_per_hour', { mode: 'number' }).notNull(),
    spotMicrosPerHour: bigint('spot_micros_per_hour', { mode: 'number' }),
    note: text('note'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sizeId, t.cloud] })],
);

/** Budget thresholds already announced: each (subject, month, threshold) once. */
export const budgetAlerts = pgTable(
  'budget_alerts',
  {
    subjectKind: text('subject_kind').notNull(),
    subjectName: text('subject_name').notNull(),
    month: text('month').notNull(),
    threshold: integer('threshold').notNull(),
    sentAt: ts('sent_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.subjectKind, t.subjectName, t.month, t.threshold] })],
);

/** When a server's idle clock was last reset by "Keep running", and the last idle warning. */
export const idleState = pgTable('idle_state', {
  instanceId: uuid('instance_id').primaryKey(),
  keepRunningAt: ts('keep_running_at'),
  warnedAt: ts('warned_at'),
});
