/**
 * Trust tables: the per-instance agent credential and what the agent last reported (kernels,
 * liveness), security events (agent silent, honeypot reads, exfiltration thresholds, refused
 * bootstrap redemptions, audit pruning), the heads of the audit hash chains, and the admins'
 * audit rules (honeypot paths, read thresholds).
 */
import type { BootFailureCode, SecurityEventKind } from '@ngsci/contract';
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
import { instances } from './core.js';
import { ts } from '../columns.js';

/**
 * One agent credential per instance, issued when its start is provisioned and revoked when it
 * ends. Only the token's sha256 is stored. The row also carries the agent's latest report, which
 * idle culling reads instead of asking the server (the service never calls a user's server with
 * a credential of its own).
 */
export const instanceAgents = pgTable(
  'instance_agents',
  {
    instanceId: uuid('instance_id')
      .primaryKey()
      .references(() => instances.id),
    tokenHash: text('token_hash').notNull(),
    issuedAt: ts('issued_at').notNull().defaultNow(),
    revokedAt: ts('revoked_at'),
    /** the newest authenticated agent request of any kind */
    lastSeenAt: ts('last_seen_at'),
    /** kernels of the server and how many were executing, as of kernelsAt */
    kernelsTotal: integer('kernels_total'),
    kernelsBusy: integer('kernels_busy'),
    kernelsAt: ts('kernels_at'),
    /** the newest report in which a kernel was busy */
    lastBusyAt: ts('last_busy_at'),
    /** set when an 'agent silent' event was raised; cleared when the agent reports again */
    silentSince: ts('silent_since'),
    /**
     * the machine's newest boot report (agent/boot.ts): 'ready' or 'failed' with a code and a
     * message; null until it posts one. The terraform provisioner's readiness wait reads it.
     */
    bootStage: text('boot_stage').$type<'ready' | 'failed'>(),
    bootCode: text('boot_code').$type<BootFailureCode>(),
    bootMessage: text('boot_message'),
    bootAt: ts('boot_at'),
  },
  (t) => [uniqueIndex('instance_agents_token').on(t.tokenHash)],
);

export type { SecurityEventKind };

/** Security events: raised by the service, shown to admins, never written by a user's token. */
export const securityEvents = pgTable(
  'security_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    kind: text('kind').$type<SecurityEventKind>().notNull(),
    severity: text('severity').$type<'info' | 'warning' | 'critical'>().notNull(),
    userName: text('user_name'),
    serverName: text('server_name'),
    instanceId: uuid('instance_id'),
    path: text('path'),
    message: text('message').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>(),
  },
  (t) => [index('security_events_at').on(t.at), index('security_events_kind').on(t.kind, t.at)],
);

/**
 * The head of each audit hash chain (one chain per instance). Appends lock the head row, so two
 * batches of one instance cannot fork the chain. When old events are pruned (exported first),
 * `anchorId`/`anchorHash` record the last pruned link so verification starts from there.
 */
export const auditChainHeads = pgTable('audit_chain_heads', {
  chain: text('chain').primaryKey(),
  lastId: bigint('last_id', { mode: 'number' }),
  lastHash: text('last_hash').notNull(),
  anchorId: bigint('anchor_id', { mode: 'number' }),
  anchorHash: text('anchor_hash'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * Admin rules over data reads: a honeypot (canary) path prefix, any read of which is a critical
 * alert at once; or a threshold of files or bytes read per user over a sliding window.
 */
export const auditRules = pgTable('audit_rules', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kind: text('kind').$type<'honeypot' | 'threshold'>().notNull(),
  /** honeypot: the canary path (or prefix); threshold: an optional path prefix it applies to */
  path: text('path'),
  windowSeconds: integer('window_seconds'),
  maxFiles: integer('max_files'),
  maxBytes: bigint('max_bytes', { mode: 'number' }),
  stopServer: boolean('stop_server').notNull().default(false),
  note: text('note'),
  createdBy: text('created_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});
