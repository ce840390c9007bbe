/**
 * Per-user hourly limits counted in the database (`notify_uses`), so a limit holds across
 * replicas and restarts: `POST /notify` and confirmation mails. A use is counted only when it is
 * allowed; a refusal answers when the oldest use in the window leaves it.
 */
import { and, asc, eq, gt, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { notifyUses } from '../db/schema.js';

/** the advisory lock class that serialises one user's counting ("ngnu") */
const NOTIFY_USES_LOCK = 0x6e676e75;

export type UseKind = (typeof notifyUses.$inferInsert)['what'];

export type UseVerdict = { ok: true } | { ok: false; retryAfterSeconds: number };

export class NotifyUses {
  constructor(private readonly db: Db) {}

  /**
   * Counts one use of `what` by `user` if fewer than `perHour` were counted in the last hour
   * (0: no limit, nothing counted). Two replicas counting the same user take turns on a lock,
   * so the limit cannot be passed by sending at once.
   */
  async take(user: string, what: UseKind, perHour: number): Promise<UseVerdict> {
    if (perHour <= 0) return { ok: true };
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${NOTIFY_USES_LOCK}, hashtext(${user}))`);
      const since = sql`now() - interval '1 hour'`;
      await tx
        .delete(notifyUses)
        .where(and(eq(notifyUses.userName, user), lte(notifyUses.at, since)));
      const recent = await tx
        .select({
          leavesIn:
            sql<number>`extract(epoch from (${notifyUses.at} + interval '1 hour' - now()))`.mapWith(
              Number,
            ),
        })
        .from(notifyUses)
        .where(
          and(eq(notifyUses.userName, user), eq(notifyUses.what, what), gt(notifyUses.at, since)),
        )
        .orderBy(asc(notifyUses.at));
      if (recent.length >= perHour) {
        // the use that leaves the window first makes room for the next one
        const leavesIn = recent[recent.length - perHour]!.leavesIn;
        return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(leavesIn)) };
      }
      await tx.insert(notifyUses).values({ userName: user, what });
      return { ok: true };
    });
  }
}
