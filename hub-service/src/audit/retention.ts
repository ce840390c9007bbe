/**
 * Audit retention: events older than NGSCI_AUDIT_RETENTION are written to a JSONL archive (with
 * their hashes, so the archive verifies on its own), and only then deleted; each chain's anchor
 * moves to its last deleted link so verification still starts from a known hash, and an
 * `audit_pruned` security event records what went where. No archive written, no deletion.
 */
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { and, asc, eq, gt, inArray, isNull, lt, lte, max } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { auditChainHeads, auditEvents } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { SecurityEvents } from '../security/events.js';
import type { AuditRow } from './chain.js';
import { toEvent } from './store.js';

export interface PruneDeps {
  db: Db;
  config: Pick<Config, 'NGSCI_AUDIT_RETENTION' | 'NGSCI_AUDIT_ARCHIVE_DIR'>;
  security: Pick<SecurityEvents, 'raise'>;
  logger: Logger;
}

export interface PruneResult {
  deleted: number;
  firstId: number | null;
  lastId: number | null;
  archive: string | null;
  chains: number;
}

/** At most this many events per chain and run, so one run holds a bounded amount in memory. */
const MAX_PER_CHAIN = 50_000;

/** The event as the API shows it, plus the link to its predecessor, so an archive can be verified. */
const archiveLine = (r: AuditRow) => `${JSON.stringify({ ...toEvent(r), prevHash: r.prevHash })}\n`;

/**
 * One retention pass, for the service's periodic loop. Returns null when retention is off (0)
 * and refuses (throws) when no archive folder is set: audit events are never deleted unarchived.
 */
export async function pruneAudit(deps: PruneDeps, now: Date): Promise<PruneResult | null> {
  const retention = deps.config.NGSCI_AUDIT_RETENTION;
  if (!retention) return null;
  const dir = deps.config.NGSCI_AUDIT_ARCHIVE_DIR;
  if (!dir)
    throw new Error(
      'NGSCI_AUDIT_RETENTION is set but NGSCI_AUDIT_ARCHIVE_DIR is not: audit events are never deleted without an archive',
    );
  const cutoff = new Date(now.getTime() - retention * 1000);
  const db = deps.db;

  // receivedAt grows with the id within a chain (appends hold the chain's lock), so "older than
  // the cutoff" is a prefix of each chain and the pruned part ends at one link
  const chains = await db
    .select({ chain: auditEvents.chain, upTo: max(auditEvents.id) })
    .from(auditEvents)
    .where(lt(auditEvents.receivedAt, cutoff))
    .groupBy(auditEvents.chain);
  if (!chains.length) return { deleted: 0, firstId: null, lastId: null, archive: null, chains: 0 };

  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const archive = join(dir, `audit-${stamp}-${randomBytes(3).toString('hex')}.jsonl`);
  // 'wx': a new file, never an overwrite of an earlier archive; 0600: the archive is as
  // sensitive as the table
  const file = await open(archive, 'wx', 0o600);
  let deleted = 0;
  let firstId: number | null = null;
  let lastId: number | null = null;
  try {
    for (const { chain, upTo } of chains) {
      if (upTo === null) continue;
      await db.transaction(async (tx) => {
        let rows: AuditRow[];
        if (chain === null) {
          // events from before hash chains: no anchor to move
          rows = await tx
            .select()
            .from(auditEvents)
            .where(and(isNull(auditEvents.chain), lt(auditEvents.receivedAt, cutoff)))
            .orderBy(asc(auditEvents.id))
            .limit(MAX_PER_CHAIN);
        } else {
          const [head] = await tx
            .select()
            .from(auditChainHeads)
            .where(eq(auditChainHeads.chain, chain))
            .for('update');
          rows = await tx
            .select()
            .from(auditEvents)
            .where(
              and(
                eq(auditEvents.chain, chain),
                gt(auditEvents.id, head?.anchorId ?? 0),
                lte(auditEvents.id, upTo),
              ),
            )
            .orderBy(asc(auditEvents.id))
            .limit(MAX_PER_CHAIN);
          if (!rows.length) return;
          const last = rows[rows.length - 1]!;
          if (head)
            await tx
              .update(auditChainHeads)
              .set({ anchorId: last.id, anchorHash: last.hash, updatedAt: now })
              .where(eq(auditChainHeads.chain, chain));
        }
        if (!rows.length) return;
        // the archive is on disk (fsync) before the delete commits; a failed write throws and
        // rolls the transaction back, so nothing is deleted
        await file.write(rows.map(archiveLine).join(''));
        await file.sync();
        await tx.delete(auditEvents).where(
          inArray(
            auditEvents.id,
            rows.map((r) => r.id),
          ),
        );
        deleted += rows.length;
        for (const r of rows) {
          firstId = firstId === null ? r.id : Math.min(firstId, r.id);
          lastId = lastId === null ? r.id : Math.max(lastId, r.id);
        }
      });
    }
  } finally {
    await file.close();
  }
  const result = { deleted, firstId, lastId, archive, chains: chains.length };
  if (deleted) {
    await deps.security.raise({
      kind: 'audit_pruned',
      severity: 'info',
      message: `${deleted} audit events older than ${retention} s (ids ${firstId}–${lastId}) were archived to ${archive} and deleted`,
      details: { ...result, cutoff: cutoff.toISOString() },
    });
  } else {
    await rm(archive, { force: true });
    deps.logger.debug('audit retention: nothing to prune');
    return { ...result, archive: null };
  }
  return result;
}
