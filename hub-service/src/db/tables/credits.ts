/**
 * Cloud credit grants that admins record. Only the grants are stored: how much of each one usage
 * has drawn down is derived from the usage ledger every time it is asked (metering/credits.ts),
 * so a restart, a replayed meter cycle or a grant edited after the fact can never count usage
 * twice or leave a running balance that drifts from the rows.
 */
import { sql } from 'drizzle-orm';
import { bigint, bigserial, check, date, index, pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const creditGrants = pgTable(
  'credit_grants',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    cloud: text('cloud').$type<'aws' | 'gcp' | 'azure'>().notNull(),
    amountMicros: bigint('amount_micros', { mode: 'number' }).notNull(),
    /** first UTC day whose usage the grant covers */
    startsOn: date('starts_on', { mode: 'string' }).notNull(),
    /** last UTC day whose usage the grant covers (inclusive) */
    expiresOn: date('expires_on', { mode: 'string' }).notNull(),
    note: text('note'),
    createdBy: text('created_by').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('credit_grants_cloud').on(t.cloud, t.expiresOn),
    check('credit_grants_amount_positive', sql`${t.amountMicros} > 0`),
    check('credit_grants_days_in_order', sql`${t.startsOn} <= ${t.expiresOn}`),
    check('credit_grants_cloud_known', sql`${t.cloud} in ('aws', 'gcp', 'azure')`),
  ],
);
