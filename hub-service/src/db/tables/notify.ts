/**
 * Notification tables. `notifications` is append-only: a notice is never changed once stored;
 * acknowledgements and delivery attempts are rows of their own. A (user, dedupe key) pair is
 * unique, so "each alert is sent once" holds across replicas and restarts.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const notifications = pgTable(
  'notifications',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userName: text('user_name').notNull(),
    kind: text('kind').notNull(),
    level: text('level').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    serverName: text('server_name'),
    instanceId: text('instance_id'),
    actions: jsonb('actions')
      .$type<Array<{ id: string; label: string }>>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    dedupeKey: text('dedupe_key'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('notifications_user_id').on(t.userName, t.id),
    uniqueIndex('notifications_user_dedupe')
      .on(t.userName, t.dedupeKey)
      .where(sql`dedupe_key is not null`),
  ],
);

export const notificationAcks = pgTable('notification_acks', {
  notificationId: bigint('notification_id', { mode: 'number' })
    .primaryKey()
    .references(() => notifications.id),
  userName: text('user_name').notNull(),
  at: ts('at').notNull().defaultNow(),
});

/** One row per attempt to reach a channel; `error` holds a message without secrets. */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    notificationId: bigint('notification_id', { mode: 'number' })
      .notNull()
      .references(() => notifications.id),
    channel: text('channel').$type<'email' | 'webhook'>().notNull(),
    ok: boolean('ok').notNull(),
    error: text('error'),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [index('notification_deliveries_notification').on(t.notificationId)],
);

/**
 * A user's channels. The webhook URL may carry a token, so it is stored sealed (SecretBox). Mail
 * goes only to an address its owner confirmed: until the link mailed to it is opened,
 * `email_confirmed_at` is null and only the hash of the link's single-use token is kept.
 */
export const notificationPreferences = pgTable(
  'notification_preferences',
  {
    userName: text('user_name').primaryKey(),
    email: text('email'),
    emailConfirmedAt: ts('email_confirmed_at'),
    /** sha256 of the pending confirmation token (hex); null once used or when none is pending */
    emailTokenHash: text('email_token_hash'),
    emailTokenExpiresAt: ts('email_token_expires_at'),
    webhookSealed: text('webhook_sealed'),
    webhookHost: text('webhook_host'),
    channels: jsonb('channels')
      .$type<Record<string, string[]>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('notification_preferences_email_token')
      .on(t.emailTokenHash)
      .where(sql`email_token_hash is not null`),
  ],
);

/**
 * What a user's per-hour limits count (`POST /notify`, confirmation mails): one row per use,
 * in the database so every replica counts the same uses. Rows older than the window are pruned
 * when the user's next use is counted.
 */
export const notifyUses = pgTable(
  'notify_uses',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userName: text('user_name').notNull(),
    what: text('what').$type<'notify' | 'confirmation_mail'>().notNull(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [index('notify_uses_user_at').on(t.userName, t.what, t.at)],
);
