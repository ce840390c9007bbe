/**
 * Single-use bootstrap tokens of cloud machines. A machine's user-data carries the token; at boot
 * the machine trades it once for its server's environment. Only the token's sha256 is stored, and
 * the environment (it holds the server's hub token) is sealed with the service's SecretBox and
 * wiped when the token is spent or expires.
 */
import { index, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instances } from './core.js';
import { ts } from '../columns.js';

export const bootstrapTokens = pgTable(
  'bootstrap_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    instanceId: uuid('instance_id')
      .notNull()
      .references(() => instances.id),
    /** hex sha256 of the token; the token itself is never stored */
    tokenHash: text('token_hash').notNull(),
    /** the server's environment sealed with SecretBox; null once spent or expired */
    sealedEnv: text('sealed_env'),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
    /** the cloud's id of the machine (from `terraform output`); redemption must prove it */
    cloudInstanceId: text('cloud_instance_id'),
    /** the identity that redeemed the token: a repeat from it within a short window is answered again */
    redeemedBy: text('redeemed_by'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('bootstrap_tokens_hash').on(t.tokenHash),
    index('bootstrap_tokens_instance').on(t.instanceId),
  ],
);
