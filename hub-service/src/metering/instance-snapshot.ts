/**
 * The meter's view of the active instances, read incrementally: the first read (and every
 * `fullEvery`-th) reads every active row; the others read only the rows changed since, and patch
 * the rows kept from before. At 10,000 running servers that is a handful of rows a cycle instead
 * of 10,000 (the same rows, the same order of states), at 100,000 it is most of a cycle's reading.
 *
 * Which rows changed: every insert or update of `instances` stamps `changed_xid` with its
 * transaction's id (trigger `instances_changed`, migration 0021). A read runs in one
 * repeatable-read snapshot and remembers that snapshot's xmin, the oldest transaction still in
 * progress when it was taken: every change that read could not see was made by a transaction with
 * an id at or above that xmin (in progress then, or begun after), whatever order they commit in,
 * so the next read asks for `changed_xid >= xmin` and misses nothing. A row seen twice is simply
 * taken again. Deleted rows (never done by the service; an admin's hand edit) leave at the next
 * full read.
 */
import { inArray, sql } from 'drizzle-orm';
import type { InstanceState } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instances } from '../db/schema.js';
import type { InstanceRow } from '../instances/store.js';
import { resultRows } from './ledger.js';

export class InstanceSnapshot {
  private readonly rows = new Map<string, InstanceRow>();
  /** the xmin of the last read's snapshot; null: the next read is a full one */
  private horizon: string | null = null;
  private reads = 0;
  private readonly active: ReadonlySet<string>;
  /** what the last read was: for the meter's phases and the tests */
  lastRead: { full: boolean; rows: number } = { full: true, rows: 0 };

  constructor(
    private readonly db: Db,
    private readonly states: readonly InstanceState[],
    private readonly fullEvery = 40,
  ) {
    this.active = new Set(states);
  }

  /** The instances in the states asked for, as of now. */
  async read(): Promise<InstanceRow[]> {
    const full = this.horizon === null || this.reads % this.fullEvery === 0;
    this.reads++;
    try {
      await this.db.transaction(
        async (tx) => {
          const [snap] = resultRows<{ xmin: string }>(
            await tx.execute(sql`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`),
          );
          if (full) {
            const rows = await tx
              .select()
              .from(instances)
              .where(inArray(instances.state, [...this.states]));
            this.rows.clear();
            for (const r of rows) this.rows.set(r.id, r);
            this.lastRead = { full: true, rows: rows.length };
          } else {
            const changed = await tx
              .select()
              .from(instances)
              .where(sql`changed_xid >= ${this.horizon}::xid8`);
            for (const r of changed) {
              if (this.active.has(r.state)) this.rows.set(r.id, r);
              else this.rows.delete(r.id);
            }
            this.lastRead = { full: false, rows: changed.length };
          }
          this.horizon = snap!.xmin;
        },
        { isolationLevel: 'repeatable read', accessMode: 'read only' },
      );
    } catch (err) {
      this.forget();
      throw err;
    }
    return [...this.rows.values()];
  }

  /** The next read is a full one (leadership changed; a failed read). */
  forget(): void {
    this.horizon = null;
    this.reads = 0;
    this.rows.clear();
  }
}
