/**
 * Admins' price overrides. They are kept in memory (loaded at start, after each admin change and
 * on every meter cycle, so every replica converges) because `services.catalog()` is synchronous
 * and called on every launch.
 */
import type { Catalog, Cloud } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { priceOverrides } from '../db/schema.js';

export type PriceOverrideRow = typeof priceOverrides.$inferSelect;

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

  constructor(
    private readonly db: Db,
    private readonly base: () => Catalog,
  ) {}

  async refresh(): Promise<void> {
    this.rows = await this.db.select().from(priceOverrides);
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
