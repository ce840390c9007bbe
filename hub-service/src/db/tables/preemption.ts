/**
 * A researcher's own default for what their spot instances do when the cloud takes them back
 * (issue 15 part 2): one row per user who chose one. A launch that names its own choice wins over
 * this; without a row the admin's NGSCI_PREEMPTION_DEFAULT applies (instances/preemption-choice.ts).
 * keep_state: at a spot notice each notebook's kernel variables are saved (by the agent, or an open page)
 * (keep-state, as a resize with "Keep my variables"), restored after the relaunch.
 */
import { boolean, pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const preemptionChoices = pgTable('preemption_choices', {
  userName: text('user_name').primaryKey(),
  /** 'on-demand' | 'spot' | 'stop' (contract OnPreemption), checked by the route */
  /** null: no choice of their own (the admin's applies); the row may only carry keep_state */
  choice: text('choice'),
  keepState: boolean('keep_state').notNull().default(false),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});
