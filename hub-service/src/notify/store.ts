/**
 * Notices and preferences in the database. Notices are inserted once (a repeated dedupe key is
 * dropped by a unique index) and never updated; acknowledgements are rows of their own.
 */
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { Notification, NotifyChannel, NoticeKind } from '@ngsci/contract';
import { NOTICE_KINDS } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import {
  notificationAcks,
  notificationDeliveries,
  notificationPreferences,
  notifications,
} from '../db/schema.js';
import type { Notice } from './types.js';
import { NotifyUses } from './uses.js';

export type StoredNotice = typeof notifications.$inferSelect;

export interface Preferences {
  email: string | null;
  /** whether the owner of `email` opened the link mailed to it; mail goes only then */
  emailConfirmed: boolean;
  webhookSealed: string | null;
  webhookHost: string | null;
  channels: Record<NoticeKind, NotifyChannel[]>;
}

/** Without a choice of their own, a user gets JupyterLab for everything, plus email if they gave an address. */
export function defaultChannels(email: string | null): NotifyChannel[] {
  return email ? ['jupyterlab', 'email'] : ['jupyterlab'];
}

export class NotificationStore {
  /** the per-user hourly limits (POST /notify, confirmation mails) */
  readonly uses: NotifyUses;

  constructor(private readonly db: Db) {
    this.uses = new NotifyUses(db);
  }

  /** Stores the notice; null when its dedupe key was already used for this user. */
  async insert(n: Notice): Promise<StoredNotice | null> {
    const rows = await this.db
      .insert(notifications)
      .values({
        userName: n.user,
        kind: n.kind,
        level: n.level,
        title: n.title,
        body: n.body,
        serverName: n.server ?? null,
        instanceId: n.instanceId ?? null,
        actions: n.actions ?? [],
        dedupeKey: n.dedupeKey ?? null,
      })
      .onConflictDoNothing()
      .returning();
    return rows[0] ?? null;
  }

  async list(
    user: string,
    opts: { after: number; limit: number; unacknowledged: boolean },
  ): Promise<Notification[]> {
    const rows = await this.db
      .select({ n: notifications, ackAt: notificationAcks.at })
      .from(notifications)
      .leftJoin(notificationAcks, eq(notificationAcks.notificationId, notifications.id))
      .where(
        and(
          eq(notifications.userName, user),
          gt(notifications.id, opts.after),
          opts.unacknowledged ? isNull(notificationAcks.at) : undefined,
        ),
      )
      .orderBy(asc(notifications.id))
      .limit(opts.limit);
    return rows.map(({ n, ackAt }) => ({
      id: n.id,
      kind: n.kind as NoticeKind,
      level: n.level as Notification['level'],
      title: n.title,
      body: n.body,
      server: n.serverName,
      instanceId: n.instanceId,
      actions: n.actions as Notification['actions'],
      createdAt: n.createdAt.toISOString(),
      acknowledged: ackAt !== null,
    }));
  }

  async lastId(user: string): Promise<number> {
    const [row] = await this.db
      .select({ id: notifications.id })
      .from(notifications)
      .where(eq(notifications.userName, user))
      .orderBy(desc(notifications.id))
      .limit(1);
    return row?.id ?? 0;
  }

  /** Acknowledges the user's own notices (by id, or every one up to an id); answers how many were new. */
  async acknowledge(user: string, sel: { ids?: number[]; upTo?: number }): Promise<number> {
    const mine = await this.db
      .select({ id: notifications.id })
      .from(notifications)
      .where(
        and(
          eq(notifications.userName, user),
          sel.ids ? inArray(notifications.id, sel.ids) : lte(notifications.id, sel.upTo ?? 0),
        ),
      );
    if (!mine.length) return 0;
    const done = await this.db
      .insert(notificationAcks)
      .values(mine.map((r) => ({ notificationId: r.id, userName: user })))
      .onConflictDoNothing()
      .returning({ id: notificationAcks.notificationId });
    return done.length;
  }

  async recordDelivery(
    notificationId: number,
    channel: 'email' | 'webhook',
    error: string | null,
  ): Promise<void> {
    await this.db
      .insert(notificationDeliveries)
      .values({ notificationId, channel, ok: error === null, error });
  }

  async deliveries(notificationId: number) {
    return this.db
      .select()
      .from(notificationDeliveries)
      .where(eq(notificationDeliveries.notificationId, notificationId))
      .orderBy(asc(notificationDeliveries.id));
  }

  async preferences(user: string): Promise<Preferences> {
    const [row] = await this.db
      .select()
      .from(notificationPreferences)
      .where(eq(notificationPreferences.userName, user));
    const email = row?.email ?? null;
    const stored = (row?.channels ?? {}) as Partial<Record<NoticeKind, NotifyChannel[]>>;
    const channels = Object.fromEntries(
      NOTICE_KINDS.map((k) => [k, stored[k] ?? defaultChannels(email)]),
    ) as Record<NoticeKind, NotifyChannel[]>;
    return {
      email,
      emailConfirmed: email !== null && row?.emailConfirmedAt != null,
      webhookSealed: row?.webhookSealed ?? null,
      webhookHost: row?.webhookHost ?? null,
      channels,
    };
  }

  async savePreferences(
    user: string,
    change: {
      email?: string | null;
      webhook?: { sealed: string; host: string } | null;
      channels?: Partial<Record<NoticeKind, NotifyChannel[]>>;
    },
  ): Promise<void> {
    const [row] = await this.db
      .select()
      .from(notificationPreferences)
      .where(eq(notificationPreferences.userName, user));
    const email = change.email !== undefined ? change.email : (row?.email ?? null);
    // another address (or none) needs its own confirmation; the pending link goes with the old one
    const sameEmail = email !== null && email === (row?.email ?? null);
    const next = {
      email,
      emailConfirmedAt: sameEmail ? (row?.emailConfirmedAt ?? null) : null,
      emailTokenHash: sameEmail ? (row?.emailTokenHash ?? null) : null,
      emailTokenExpiresAt: sameEmail ? (row?.emailTokenExpiresAt ?? null) : null,
      webhookSealed:
        change.webhook !== undefined
          ? (change.webhook?.sealed ?? null)
          : (row?.webhookSealed ?? null),
      webhookHost:
        change.webhook !== undefined ? (change.webhook?.host ?? null) : (row?.webhookHost ?? null),
      channels: { ...(row?.channels ?? {}), ...(change.channels ?? {}) },
      updatedAt: sql`now()`,
    };
    await this.db
      .insert(notificationPreferences)
      .values({ userName: user, ...next })
      .onConflictDoUpdate({ target: notificationPreferences.userName, set: next });
  }

  /**
   * Starts (or restarts) the confirmation of the user's address: keeps the hash of a new token,
   * which replaces any earlier one. False when the address is not the user's current one.
   */
  async expectConfirmation(
    user: string,
    email: string,
    token: { hash: string; expiresAt: Date },
  ): Promise<boolean> {
    const rows = await this.db
      .update(notificationPreferences)
      .set({ emailTokenHash: token.hash, emailTokenExpiresAt: token.expiresAt })
      .where(
        and(eq(notificationPreferences.userName, user), eq(notificationPreferences.email, email)),
      )
      .returning({ user: notificationPreferences.userName });
    return rows.length > 0;
  }

  /**
   * Confirms the address a token was issued for, if the token is pending and not expired, and
   * spends the token, so a link works once. Null when no pending token matches.
   */
  async confirmEmail(tokenHash: string): Promise<{ user: string; email: string } | null> {
    const rows = await this.db
      .update(notificationPreferences)
      .set({ emailConfirmedAt: sql`now()`, emailTokenHash: null, emailTokenExpiresAt: null })
      .where(
        and(
          eq(notificationPreferences.emailTokenHash, tokenHash),
          gt(notificationPreferences.emailTokenExpiresAt, sql`now()`),
          isNotNull(notificationPreferences.email),
        ),
      )
      .returning({ user: notificationPreferences.userName, email: notificationPreferences.email });
    const row = rows[0];
    return row?.email ? { user: row.user, email: row.email } : null;
  }
}
