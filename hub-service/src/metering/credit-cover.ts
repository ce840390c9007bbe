/**
 * Credits that also lower what researchers are charged (the admin's choice, off by default:
 * `credit_settings.lower_charges`, PUT /api/v1/admin/credits/settings, `ngsci admin credits
 * --lower-charges on|off`).
 *
 * Decided once, when the meter writes a ledger row, so that every money figure a user sees keeps
 * one definition: the sums over the rows. With the setting on, the part of a row's list cost the
 * cloud's grants cover is recorded on the row (`credit_micros`) and the researcher is charged the
 * uncovered share of the row's price: amount = price × (list − covered) / list, rounded half up
 * (price: list × plan, as always). Budgets, statements, the status bar, the sidebar and the CLI
 * read the rows as before.
 *
 * A row's coverage is what the credit replay (credits.ts, drawDownInOrder over usageInOrder) gives
 * that row: the same draw-down, over every earlier row in the order the ledger wrote them, then
 * the new rows in the order they are inserted. It is decided inside the transaction that inserts
 * the rows, under an advisory lock every covering writer takes, after reading every row written
 * before, so two writers (a leadership hand-over) or a cycle retried after a crash cannot spend
 * the same credit twice; a row the insert drops (it was written already) is taken out and the
 * rest decided again. What each grant has given is kept between cycles (read on only from the
 * newest row seen) and read afresh from the whole ledger every hour, after a change of grants and
 * when leadership changes.
 *
 * Not retroactive: a grant recorded with a start in the past, or removed, changes the
 * organisation's replay (its statements), but a row already written keeps the charge it was
 * written with. Rows written while the setting was off record no coverage.
 */
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { creditGrants, creditSettings } from '../db/schema.js';
import type { IntervalRow, LedgerCover } from './ledger.js';
import { intervalMicros } from './money.js';
import {
  CREDIT_CLOUDS,
  dayOf,
  drawDownInOrder,
  usageInOrder,
  type CloudDay,
  type GrantRow,
} from './credits.js';

/** The advisory lock covering writers take (in their insert's transaction). */
export const CREDIT_COVER_LOCK = 0x6e676372;

/** The list µ$ of a row: its billed seconds at list price (no plan), cumulative rounding. */
export const rowListMicros = (r: IntervalRow): number =>
  intervalMicros(r.rateMicros, r.billedFrom, r.billedTo, 1_000_000, r.ratePeriodSeconds);

/**
 * What the researcher is charged for a row whose list cost `list` grants covered `covered` of:
 * the uncovered share of the row's price, rounded half up (all of it when nothing is covered,
 * nothing when all is).
 */
export function chargedMicros(amount: number, list: number, covered: number): number {
  if (covered <= 0 || list <= 0) return amount;
  if (covered >= list) return 0;
  const a = BigInt(amount);
  const l = BigInt(list);
  return Number((2n * (l - BigInt(covered)) * a + l) / (2n * l));
}

/**
 * Decides the coverage of `rows`, in order, after the draw-down `used` (updated in place): each
 * row of a cloud with grants takes its list cost from them as the replay would, and is charged
 * the rest. Pure.
 */
export function coverRows(
  grants: readonly GrantRow[],
  used: Map<number, number>,
  rows: readonly IntervalRow[],
): IntervalRow[] {
  const pieces: CloudDay[] = rows.map((r) => ({
    cloud: CREDIT_CLOUDS.includes(r.cloud as never) ? r.cloud : '',
    day: dayOf(r.startedAt as Date),
    listMicros: rowListMicros(r),
  }));
  const { taken } = drawDownInOrder(grants, pieces, used);
  return rows.map((r, i) => {
    const covered = taken[i]!;
    return covered > 0
      ? {
          ...r,
          creditMicros: covered,
          amountMicros: chargedMicros(r.amountMicros, pieces[i]!.listMicros, covered),
        }
      : { ...r, creditMicros: 0 };
  });
}

/** The admin's setting (absent row: off). */
export async function readLowerCharges(db: Pick<Db, 'select'>): Promise<{
  lowerCharges: boolean;
  updatedBy: string | null;
  updatedAt: string | null;
}> {
  const [row] = await db.select().from(creditSettings).where(eq(creditSettings.id, 1));
  return {
    lowerCharges: row?.lowerCharges ?? false,
    updatedBy: row?.updatedBy ?? null,
    updatedAt: row?.updatedAt.toISOString() ?? null,
  };
}

export async function writeLowerCharges(db: Db, on: boolean, by: string) {
  await db
    .insert(creditSettings)
    .values({ id: 1, lowerCharges: on, updatedBy: by })
    .onConflictDoUpdate({
      target: creditSettings.id,
      set: { lowerCharges: on, updatedBy: by, updatedAt: sql`now()` },
    });
  return readLowerCharges(db);
}

const id = (r: IntervalRow) => `${r.meterKey}@${(r.startedAt as Date).getTime()}`;

/** Thrown inside the transaction to roll it back: rows it dropped had taken credit. */
class Redo extends Error {
  constructor(readonly dropped: Set<string>) {
    super('credit cover: rows already written took credit; deciding again');
  }
}

export class CreditCover implements LedgerCover {
  private setting: { on: boolean; at: number } | null = null;
  /** the draw-down up to row `top`, for the grants `key`, read in full at `at` */
  private state: {
    key: string;
    from: string;
    top: number;
    used: Map<number, number>;
    at: number;
  } | null = null;

  constructor(
    private readonly db: Db,
    private readonly opts: { settingTtlMs?: number; resyncMs?: number; clock?: () => number } = {},
  ) {}

  private now(): number {
    return this.opts.clock?.() ?? Date.now();
  }

  /** The setting, read at most every 10 s (a change reaches the meter within that). */
  async lowerCharges(): Promise<boolean> {
    const ttl = this.opts.settingTtlMs ?? 10_000;
    const t = this.now();
    if (this.setting && t - this.setting.at >= 0 && t - this.setting.at < ttl)
      return this.setting.on;
    const on = (await readLowerCharges(this.db)).lowerCharges;
    this.setting = { on, at: t };
    return on;
  }

  forget(): void {
    this.state = null;
    this.setting = null;
  }

  async write(
    rows: IntervalRow[],
    append: (db: Db, rows: IntervalRow[]) => Promise<string[]>,
  ): Promise<string[]> {
    const clean = rows.map((r) => (r.creditMicros ? { ...r, creditMicros: 0 } : r));
    if (
      !clean.some((r) => CREDIT_CLOUDS.includes(r.cloud as never)) ||
      !(await this.lowerCharges())
    )
      return append(this.db, clean);
    let todo = clean;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          const db = tx as unknown as Db;
          await db.execute(sql`select pg_advisory_xact_lock(${CREDIT_COVER_LOCK})`);
          const grants = await db.select().from(creditGrants);
          const days = todo.map((r) => ({ cloud: r.cloud, day: dayOf(r.startedAt as Date) }));
          if (
            !grants.some((g) =>
              days.some((d) => d.cloud === g.cloud && d.day >= g.startsOn && d.day <= g.expiresOn),
            )
          )
            return append(db, todo);
          const used = await this.usedBefore(db, grants);
          const covered = coverRows(grants, new Map(used), todo);
          const ok = new Set(await append(db, covered));
          const dropped = covered.filter((r) => !ok.has(id(r)));
          // a dropped row (written already) that took credit: the rows after it were decided
          // short; roll back and decide again without it (once: the dropped rows are there)
          if (attempt === 0 && dropped.some((r) => (r.creditMicros ?? 0) > 0))
            throw new Redo(new Set(dropped.map(id)));
          return [...ok];
        });
      } catch (err) {
        if (!(err instanceof Redo)) throw err;
        todo = todo.filter((r) => !err.dropped.has(id(r)));
      }
    }
  }

  /** What each grant has given to every row written so far (read under the lock). */
  private async usedBefore(db: Db, grants: GrantRow[]): Promise<Map<number, number>> {
    const key = grants
      .map((g) => `${g.id}:${g.cloud}:${g.amountMicros}:${g.startsOn}:${g.expiresOn}`)
      .sort()
      .join(',');
    const from = grants.reduce((m, g) => (g.startsOn < m ? g.startsOn : m), '9999-12-31');
    const t = this.now();
    const s = this.state;
    const fresh =
      !s || s.key !== key || t - s.at < 0 || t - s.at >= (this.opts.resyncMs ?? 3_600_000);
    const base = fresh
      ? { key, from, top: 0, used: new Map<number, number>(), at: t }
      : { ...s, used: new Map(s.used) };
    const { pieces, top } = await usageInOrder(db, base.from, base.top, true);
    drawDownInOrder(grants, pieces, base.used);
    // every row this read is committed: what it drew stays drawn whatever this transaction does
    this.state = { ...base, top: Math.max(top, base.top) };
    return base.used;
  }
}
