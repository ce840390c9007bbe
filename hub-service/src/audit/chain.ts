/**
 * The audit hash chain: one chain per instance, each event storing the hash of the event before
 * it, so an edited, deleted, inserted or reordered row is found by recomputing the chain. Appends
 * lock the chain's head row; verification walks every chain from its anchor (the start, or the
 * last link that retention pruned after archiving it).
 *
 * What it proves: a change made to rows behind the service's back (SQL) shows up. What it cannot
 * prove on its own: that somebody able to write the database did not recompute a whole chain;
 * the copy shipped to the audit sink (each line carries its hash) is the outside witness.
 */
import { createHash } from 'node:crypto';
import { and, asc, eq, gt, isNotNull, isNull, sql } from 'drizzle-orm';
import type { AuditBreak, AuditEventInput, AuditVerification } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { auditChainHeads, auditEvents } from '../db/schema.js';

/** The fields a link covers, as stored. */
export interface Linked {
  chain: string;
  user: string;
  server: string;
  instanceId: string | null;
  path: string;
  op: string;
  at: Date;
  bytes: number | null;
  durationMs: number | null;
}

/**
 * sha256 (hex) over a canonical encoding: a JSON array in a fixed order, so no field can bleed
 * into its neighbour (`"a","bc"` and `"ab","c"` encode differently) and null stays apart from "".
 */
export function linkHash(prevHash: string, e: Linked): string {
  const canonical = JSON.stringify([
    'ngsci-audit-v1',
    prevHash,
    e.chain,
    e.user,
    e.server,
    e.instanceId,
    e.path,
    e.op,
    e.at.toISOString(),
    e.bytes,
    e.durationMs,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

export type AuditRow = typeof auditEvents.$inferSelect;

export interface ChainIdentity {
  user: string;
  server: string;
  instanceId: string;
}

/**
 * Appends events to the instance's chain in one transaction that holds the chain head's row
 * lock (SELECT … FOR UPDATE), so two batches of one instance cannot fork the chain. Returns the
 * stored rows in chain order.
 */
export async function appendToChain(
  db: Db,
  who: ChainIdentity,
  events: AuditEventInput[],
): Promise<AuditRow[]> {
  if (!events.length) return [];
  const chain = who.instanceId;
  return db.transaction(async (tx) => {
    await tx.insert(auditChainHeads).values({ chain, lastHash: '' }).onConflictDoNothing();
    const [head] = await tx
      .select()
      .from(auditChainHeads)
      .where(eq(auditChainHeads.chain, chain))
      .for('update');
    let prev = head!.lastHash;
    const values = events.map((e) => {
      const link: Linked = {
        chain,
        user: who.user,
        server: who.server,
        instanceId: who.instanceId,
        path: e.path,
        op: e.op,
        at: new Date(e.at),
        bytes: e.bytes ?? null,
        durationMs: e.durationMs ?? null,
      };
      const hash = linkHash(prev, link);
      const row = {
        chain,
        userName: link.user,
        serverName: link.server,
        instanceId: link.instanceId,
        path: link.path,
        op: e.op,
        at: link.at,
        bytes: link.bytes,
        durationMs: link.durationMs,
        prevHash: prev,
        hash,
      };
      prev = hash;
      return row;
    });
    // one row at a time: the chain's order is the id order, which a multi-row insert does not
    // promise in writing
    const rows: AuditRow[] = [];
    for (const v of values) {
      const [r] = await tx.insert(auditEvents).values(v).returning();
      rows.push(r!);
    }
    await tx
      .update(auditChainHeads)
      .set({ lastId: rows[rows.length - 1]!.id, lastHash: prev, updatedAt: new Date() })
      .where(eq(auditChainHeads.chain, chain));
    return rows;
  });
}

const asLinked = (r: AuditRow): Linked => ({
  chain: r.chain!,
  user: r.userName,
  server: r.serverName,
  instanceId: r.instanceId,
  path: r.path,
  op: r.op,
  at: r.at,
  bytes: r.bytes,
  durationMs: r.durationMs,
});

const PAGE = 5000;

/** Recomputes one chain from its anchor; the first broken link, or null when intact. */
async function verifyChain(
  db: Db,
  chain: string,
  head: typeof auditChainHeads.$inferSelect | undefined,
): Promise<{ events: number; broken: AuditBreak | null }> {
  let expected = head?.anchorHash ?? '';
  let after = head?.anchorId ?? 0;
  let events = 0;
  let lastId: number | null = head?.anchorId ?? null;
  for (;;) {
    const rows = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.chain, chain), gt(auditEvents.id, after)))
      .orderBy(asc(auditEvents.id))
      .limit(PAGE);
    for (const r of rows) {
      events += 1;
      if (!head)
        return {
          events,
          broken: {
            chain,
            eventId: r.id,
            reason: 'no_head',
            expected: '(a head row)',
            stored: null,
            message: `chain ${chain} has events but no head row: its head was deleted`,
          },
        };
      if (r.prevHash !== expected)
        return {
          events,
          broken: {
            chain,
            eventId: r.id,
            reason: 'link',
            expected,
            stored: r.prevHash,
            message:
              `event ${r.id} does not follow the event before it in chain ${chain}: ` +
              'an event before it was deleted, inserted or moved',
          },
        };
      const computed = linkHash(expected, asLinked(r));
      if (r.hash !== computed)
        return {
          events,
          broken: {
            chain,
            eventId: r.id,
            reason: 'changed',
            expected: computed,
            stored: r.hash,
            message: `event ${r.id} of chain ${chain} was changed after it was written`,
          },
        };
      expected = computed;
      lastId = r.id;
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.id;
  }
  if (head && (head.lastHash !== expected || (head.lastId ?? null) !== lastId))
    return {
      events,
      broken: {
        chain,
        eventId: null,
        reason: 'truncated',
        expected: head.lastHash,
        stored: expected,
        message:
          `chain ${chain} ends at event ${lastId ?? 'none'} but its head says ${head.lastId ?? 'none'}: ` +
          'events at its end were deleted',
      },
    };
  return { events, broken: null };
}

/** Recomputes every chain (or one) and names the first broken link of each broken chain. */
export async function verifyChains(
  db: Db,
  opts: { chain?: string; now?: Date } = {},
): Promise<AuditVerification> {
  const heads = await db
    .select()
    .from(auditChainHeads)
    .where(opts.chain ? eq(auditChainHeads.chain, opts.chain) : undefined);
  const byChain = new Map(heads.map((h) => [h.chain, h]));
  // chains with events but no head are checked too: a deleted head is itself a break
  const withEvents = await db
    .selectDistinct({ chain: auditEvents.chain })
    .from(auditEvents)
    .where(
      and(isNotNull(auditEvents.chain), opts.chain ? eq(auditEvents.chain, opts.chain) : undefined),
    );
  const chains = [...new Set([...byChain.keys(), ...withEvents.map((r) => r.chain!)])].sort();
  const breaks: AuditBreak[] = [];
  let events = 0;
  for (const chain of chains) {
    const r = await verifyChain(db, chain, byChain.get(chain));
    events += r.events;
    if (r.broken) breaks.push(r.broken);
  }
  const [legacy] = opts.chain
    ? [{ n: 0 }]
    : await db
        .select({ n: sql<number>`count(*)::int` })
        .from(auditEvents)
        .where(isNull(auditEvents.chain));
  return {
    intact: breaks.length === 0,
    chains: chains.length,
    events,
    unchained: Number(legacy?.n ?? 0),
    breaks,
    checkedAt: (opts.now ?? new Date()).toISOString(),
  };
}
