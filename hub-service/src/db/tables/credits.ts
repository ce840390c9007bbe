/**
 * Cloud credit grants that admins record. Only the grants are stored: how much of each one usage
 * has drawn down is derived from the usage ledger every time it is asked (metering/credits.ts),
 * so a restart, a replayed meter cycle or a grant edited after the fact can never count usage
 * twice or leave a running balance that drifts from the rows.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  date,
  index,
  integer,
  pgTable,
  text,
} from 'drizzle-orm/pg-core';
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

/**
 * The admin's credit settings, one row (id 1; absent: the defaults). `lower_charges`: the part of
 * a ledger row's list cost that grants cover is not charged to the researcher either (budgets,
 * statements and every figure follow from the rows); off, researchers pay list price times plan.
 */
export const creditSettings = pgTable(
  'credit_settings',
  {
    id: integer('id').primaryKey(),
    lowerCharges: boolean('lower_charges').notNull().default(false),
    updatedBy: text('updated_by').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [check('credit_settings_one_row', sql`${t.id} = 1`)],
);
