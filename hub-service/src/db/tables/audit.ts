/**
 * The data-access audit ledger: one row per file open, read or close that an instance agent saw
 * under the dataset mount. Append-only; admins list and export it.
 */
import { bigint, bigserial, index, integer, pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** the hub user the reporting token belongs to: an agent can only report for its owner */
    userName: text('user_name').notNull(),
    serverName: text('server_name').notNull(),
    instanceId: text('instance_id'),
    path: text('path').notNull(),
    op: text('op').$type<'open' | 'read' | 'close'>().notNull(),
    at: ts('at').notNull(),
    bytes: bigint('bytes', { mode: 'number' }),
    durationMs: integer('duration_ms'),
    receivedAt: ts('received_at').notNull().defaultNow(),
    /** the hash chain this event belongs to (one per instance; see tables/trust.ts) */
    chain: text('chain'),
    /** hash of the previous event of the chain ('' for the first) */
    prevHash: text('prev_hash'),
    /** sha256 over prevHash and this event's fields (audit/chain.ts) */
    hash: text('hash'),
  },
  (t) => [
    index('audit_events_at').on(t.at),
    index('audit_events_user_at').on(t.userName, t.at),
    index('audit_events_chain').on(t.chain, t.id),
  ],
);
