/**
 * Admins' price overrides. They are kept in memory because `services.catalog()` is synchronous and
 * called on every launch, and every replica keeps its copy current three ways: an admin's change
 * reloads the replica that made it and is announced on PRICES_CHANNEL, which every other replica
 * LISTENs on (reloading at once); each replica also reloads every meter interval whether or not it
 * holds the meter, so a lost notification costs at most one interval; and the meter's leader
 * reloads at the start of each cycle. A launch's quoted price is therefore never older than one
 * meter interval on any replica.
 */
import { sql } from 'drizzle-orm';
import type { Catalog, Cloud } from '@ngsci/contract';
import type { Database, Db } from '../db/client.js';
import type { Logger } from '../logger.js';
import { priceOverrides } from '../db/schema.js';

export type PriceOverrideRow = typeof priceOverrides.$inferSelect;

/** The Postgres channel on which a change of the price overrides is announced (no payload). */
export const PRICES_CHANNEL = 'ngsci_prices';

export function applyOverrides(base: Catalog, overrides: readonly PriceOverrideRow[]): Catalog {
  if (!overrides.length) return base;
  const byKey = new Map(overrides.map((o) => [`${o.sizeId}/${o.cloud}`, o]));
  return {
    ...base,
    sizes: base.sizes.map((s) => ({
      ...s,
      offers: s.offers.map((o) => {
        const ov = byKey.get(`${s.id}/${o.cloud}`);
        if (!ov) return o;
        return {
          ...o,
          onDemandMicrosPerHour: ov.onDemandMicrosPerHour,
          spotMicrosPerHour: ov.spotMicrosPerHour,
          note: ov.note ?? `price set by an admin (catalog: ${o.onDemandMicrosPerHour} µ$/h)`,
        };
      }),
    })),
  };
}

export class PriceBook {
  private rows: PriceOverrideRow[] = [];
  private cached: { base: Catalog; rows: PriceOverrideRow[]; result: Catalog } | null = null;
  /** refreshes started and the newest one applied: a slow, older read never replaces a newer one */
  private started = 0;
  private applied = 0;

  constructor(
    private readonly db: Db,
    private readonly base: () => Catalog,
  ) {}

  /** Reloads the overrides from the database. */
  async refresh(): Promise<void> {
    const n = ++this.started;
    const rows = await this.db.select().from(priceOverrides);
    if (n < this.applied) return;
    this.applied = n;
    this.rows = rows;
  }

  /**
   * After an admin's change: reloads this replica and tells every other one (PRICES_CHANNEL).
   * Postgres delivers the notification to every listening connection, this process's too.
   */
  async changed(): Promise<void> {
    await this.refresh();
    await this.db.execute(sql`select pg_notify(${PRICES_CHANNEL}, '')`);
  }

  /**
   * Keeps this replica's copy current: LISTENs on PRICES_CHANNEL (reloading on each notification,
   * and whenever the LISTEN is (re)established, since notifications sent while it was down are
   * lost), and reloads every `intervalSeconds` as the last line. Resolves to the way to stop.
   */
  async follow(opts: {
    database: Pick<Database, 'listen'>;
    intervalSeconds: number;
    logger: Pick<Logger, 'warn'>;
  }): Promise<() => Promise<void>> {
    const reload = (why: string) =>
      void this.refresh().catch((err: unknown) =>
        opts.logger.warn({ err: (err as Error).message, why }, 'price overrides not reloaded'),
      );
    const timer = setInterval(() => reload('interval'), opts.intervalSeconds * 1000);
    timer.unref();
    let unlisten: (() => Promise<void>) | null = null;
    try {
      unlisten = await opts.database.listen(
        PRICES_CHANNEL,
        () => reload('notification'),
        () => reload('listening'),
      );
    } catch (err) {
      // the interval still keeps the copy at most one interval old
      opts.logger.warn(
        { err: (err as Error).message, channel: PRICES_CHANNEL },
        'price overrides: LISTEN failed; reloading every meter interval only',
      );
    }
    return async () => {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
    };
  }

  list(): readonly PriceOverrideRow[] {
    return this.rows;
  }

  /** The catalog with the overrides applied; memoised until either changes. */
  catalog(): Catalog {
    const base = this.base();
    if (this.cached && this.cached.base === base && this.cached.rows === this.rows)
      return this.cached.result;
    const result = applyOverrides(base, this.rows);
    this.cached = { base, rows: this.rows, result };
    return result;
  }

  has(size: string, cloud: Cloud): boolean {
    return this.rows.some((r) => r.sizeId === size && r.cloud === cloud);
  }
}
