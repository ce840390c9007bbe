/**
 * A researcher's own default for what their spot instances do when the cloud takes them back
 * (issue 15 part 2): one row per user who chose one. A launch that names its own choice wins over
 * this; without a row the admin's NGSCI_PREEMPTION_DEFAULT applies (instances/preemption-choice.ts).
 */
import { pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const preemptionChoices = pgTable('preemption_choices', {
  userName: text('user_name').primaryKey(),
  /** 'on-demand' | 'spot' | 'stop' (contract OnPreemption), checked by the route */
  choice: text('choice').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});
