/**
 * GPU money wasted (issue 15, part 3): stretches of a GPU instance's billed time during which its
 * agent's samples saw every GPU idle (contract/src/gpu-waste.ts defines idle), priced at the
 * instance's own rate. `gpu_idle_intervals` is append-only like the ledger: (meter_key,
 * started_at) is unique and each new row starts where the instance's newest row ends, so a
 * replayed meter cycle, a second writer or a restarted service can never count a second twice.
 * The per-day totals below are kept by statement-level triggers on it (migration
 * 0012_gpu_idle_totals), in the same statement as every insert.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
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
 * One stretch of one instance (never crossing a UTC hour). `idle_from`/`idle_to` are the
 * instance's idle seconds before and after this row, so amount = R(idle_to) - R(idle_from) with the
 * ledger's cumulative rounding and the instance's total never drifts from its exact price.
 */
export const gpuIdleIntervals = pgTable(
  'gpu_idle_intervals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** the instance id, as the ledger's meter_key */
    meterKey: text('meter_key').notNull(),
    userName: text('user_name').notNull(),
    groups: text('groups')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    instanceId: uuid('instance_id'),
    serverName: text('server_name'),
    sizeId: text('size_id').notNull(),
    startedAt: ts('started_at').notNull(),
    endedAt: ts('ended_at').notNull(),
    /** seconds of this row some GPU sample stands for (the rest had no fresh sample) */
    sampledSeconds: integer('sampled_seconds').notNull(),
    /** seconds of this row whose sample saw every GPU idle */
    idleSeconds: integer('idle_seconds').notNull(),
    idleFrom: bigint('idle_from', { mode: 'number' }).notNull(),
    idleTo: bigint('idle_to', { mode: 'number' }).notNull(),
    /** the utilisation (percent) below which a GPU counted as idle when this row was written */
    thresholdPercent: integer('threshold_percent').notNull(),
    planId: text('plan_id').notNull(),
    multiplierPpm: integer('multiplier_ppm').notNull(),
    rateMicros: bigint('rate_micros', { mode: 'number' }).notNull(),
    ratePeriodSeconds: integer('rate_period_seconds').notNull(),
    amountMicros: bigint('amount_micros', { mode: 'number' }).notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('gpu_idle_intervals_stream_start').on(t.meterKey, t.startedAt),
    index('gpu_idle_intervals_user_start').on(t.userName, t.startedAt),
  ],
);

/** Running totals of gpu_idle_intervals per user, UTC day and size (what every surface reads). */
export const gpuIdleUserDays = pgTable(
  'gpu_idle_user_days',
  {
    userName: text('user_name').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    sizeId: text('size_id').notNull(),
    sampledSeconds: bigint('sampled_seconds', { mode: 'number' }).notNull(),
    idleSeconds: bigint('idle_seconds', { mode: 'number' }).notNull(),
    micros: bigint('micros', { mode: 'number' }).notNull(),
    rows: integer('rows').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userName, t.day, t.sizeId] })],
);

/** The same for each group named on a row: the admin panel's ranking of groups. */
export const gpuIdleGroupDays = pgTable(
  'gpu_idle_group_days',
  {
    groupName: text('group_name').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    sampledSeconds: bigint('sampled_seconds', { mode: 'number' }).notNull(),
    idleSeconds: bigint('idle_seconds', { mode: 'number' }).notNull(),
    micros: bigint('micros', { mode: 'number' }).notNull(),
    rows: integer('rows').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupName, t.day] })],
);
