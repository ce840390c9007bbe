/**
 * A researcher's own idle timeouts (contract idle.ts): one row per user who chose one. A null
 * class means "the admin's timeout". The bounds live on the quota rows (tables/metering.ts); a
 * choice is kept as the researcher made it, and clamped into the bounds that apply when it is used.
 */
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const idleChoices = pgTable('idle_choices', {
  userName: text('user_name').primaryKey(),
  cpuSeconds: integer('cpu_seconds'),
  gpuSeconds: integer('gpu_seconds'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});
