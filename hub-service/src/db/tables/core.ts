/**
 * The core tables. Instances are keyed by (user, server); every start makes a new row, and a
 * partial unique index allows one active row per server, so two concurrent launches cannot both win.
 * Jobs, events and secrets hang off an instance; plans and their assignments set what users pay.
 * Money columns are bigint micro-dollars.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { InstanceEventKind } from '@ngsci/contract';
import { ts } from '../columns.js';

export const instances = pgTable(
  'instances',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userName: text('user_name').notNull(),
    /** the API's server name: `default` for the hub's default server */
    serverName: text('server_name').notNull(),
    sizeId: text('size_id').notNull(),
    cloud: text('cloud').notNull(),
    region: text('region').notNull(),
    spot: boolean('spot').notNull().default(false),
    state: text('state').notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    exitCode: integer('exit_code'),
    /** list price per hour at launch, before the plan multiplier */
    listRatePerHourMicros: bigint('list_rate_per_hour_micros', { mode: 'number' }).notNull(),
    baseUrl: text('base_url').notNull(),
    targetUrl: text('target_url'),
    providerRef: jsonb('provider_ref').$type<Record<string, string | number | boolean | null>>(),
    createdAt: ts('created_at').notNull().defaultNow(),
    readyAt: ts('ready_at'),
    stopRequestedAt: ts('stop_requested_at'),
    stoppedAt: ts('stopped_at'),
    /** a resize of this instance: the machine its successor starts on, resolved when accepted */
    resizeTarget: jsonb('resize_target').$type<{
      size: string;
      cloud: string;
      region: string;
      spot: boolean;
      ratePerHourMicros: number;
      /** set when the cloud took a spot machine back and the same server starts again */
      preempted?: boolean;
    }>(),
    /** that resize's step: stopping, starting (ask the hub), done or abandoned (instances/resize.ts) */
    resizeState: text('resize_state').$type<'stopping' | 'starting' | 'done' | 'abandoned'>(),
    /** a spot instance: what happens when the cloud takes it back (instances/preemption.ts) */
    onPreemption: text('on_preemption').$type<'on-demand' | 'spot' | 'stop'>(),
    /** when the instance's agent reported the cloud's notice that it takes the machine back */
    spotNoticeAt: ts('spot_notice_at'),
  },
  (t) => [
    uniqueIndex('instances_one_active_per_server')
      .on(t.userName, t.serverName)
      .where(sql`state not in ('stopped', 'failed')`),
    index('instances_user_created').on(t.userName, t.createdAt),
    index('instances_state').on(t.state),
  ],
);

export const instanceEvents = pgTable(
  'instance_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    instanceId: uuid('instance_id')
      .notNull()
      .references(() => instances.id),
    at: ts('at').notNull().defaultNow(),
    state: text('state').notNull(),
    progress: integer('progress').notNull(),
    message: text('message').notNull(),
    /** InstanceEvent.kind: null, or what a client acts on (`spot_notice`) */
    kind: text('kind').$type<InstanceEventKind>(),
  },
  (t) => [index('instance_events_instance').on(t.instanceId, t.id)],
);

/**
 * Provisioning work. A worker claims a queued job with FOR UPDATE SKIP LOCKED, heartbeats while it
 * runs, and a reaper re-queues or fails jobs whose heartbeat stopped (a crashed worker).
 */
export const jobs = pgTable(
  'jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    instanceId: uuid('instance_id')
      .notNull()
      .references(() => instances.id),
    kind: text('kind').$type<'start' | 'stop'>().notNull(),
    state: text('state').$type<'queued' | 'running' | 'done' | 'failed' | 'cancelled'>().notNull(),
    tag: text('tag').notNull().default('local'),
    attempts: integer('attempts').notNull().default(0),
    claimedBy: text('claimed_by'),
    heartbeatAt: ts('heartbeat_at'),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    error: text('error'),
    createdAt: ts('created_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
  },
  (t) => [index('jobs_queue').on(t.state, t.tag, t.id), index('jobs_instance').on(t.instanceId)],
);

/** The server's environment (it holds its hub token), encrypted, and deleted once it has started. */
export const instanceSecrets = pgTable('instance_secrets', {
  instanceId: uuid('instance_id')
    .primaryKey()
    .references(() => instances.id),
  ciphertext: text('ciphertext').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const plans = pgTable('plans', {
  id: text('id').primaryKey(),
  label: text('label').notNull(),
  /** multiplier on list prices in parts per million: 0 free, 1_000_000 list price */
  multiplierPpm: integer('multiplier_ppm').notNull(),
  builtIn: boolean('built_in').notNull().default(false),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const planAssignments = pgTable(
  'plan_assignments',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    subjectKind: text('subject_kind').$type<'user' | 'group'>().notNull(),
    subjectName: text('subject_name').notNull(),
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('plan_assignments_subject').on(t.subjectKind, t.subjectName)],
);
