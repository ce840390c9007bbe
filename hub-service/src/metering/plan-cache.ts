/**
 * Every plan and assignment, kept in memory so a request that needs a user's plan (GET /me) asks
 * the database nothing: plans change when an admin changes them, users read them all the time.
 * The rule is the one of plans.ts (`PlanTable.planOf`, which is `choosePlan`).
 *
 * Kept current as the price overrides are (prices.ts), three ways: an admin's change through this
 * replica's API drops the copy at once and is announced on PLANS_CHANNEL, which every replica
 * LISTENs on (dropping its copy); and a copy older than `maxAgeMs` (the meter interval) is read
 * again whatever happened, so a lost notification costs at most that long on another replica.
 */
import { sql } from 'drizzle-orm';
import type { Database, Db } from '../db/client.js';
import { plans } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { listPricePlan, PlanTable, type Plan } from './plans.js';

/** The Postgres channel on which a change of the plans or their assignments is announced. */
export const PLANS_CHANNEL = 'ngsci_plans';

interface Snapshot {
  table: PlanTable;
  rows: Map<string, Plan>;
}

export class PlanCache {
  private snapshot: Promise<Snapshot> | null = null;
  private loadedAt = 0;

  constructor(
    private readonly db: Db,
    private readonly defaultPlan: string,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The plan `user` is on with `groups` (as planFor in plans.ts answers it). */
  async planOf(user: string, groups: readonly string[]): Promise<Plan> {
    const { table, rows } = await this.current();
    const ref = table.planOf(user, groups);
    return rows.get(ref.id) ?? listPricePlan(ref.id);
  }

  /**
   * The table itself, for code that prices many users at once (live.ts's open streams load a
   * PlanTable per request today; this one is current in the same way and costs no query).
   */
  async table(): Promise<PlanTable> {
    return (await this.current()).table;
  }

  /** Forgets the copy: the next question reads the tables again. */
  invalidate(): void {
    this.snapshot = null;
  }

  /** After a change through this replica: forgets the copy here and tells every replica. */
  async changed(): Promise<void> {
    this.invalidate();
    await this.db.execute(sql`select pg_notify(${PLANS_CHANNEL}, '')`);
  }

  /** LISTENs on PLANS_CHANNEL (and forgets the copy whenever the LISTEN is (re)established). */
  async follow(opts: {
    database: Pick<Database, 'listen'>;
    logger: Pick<Logger, 'warn'>;
  }): Promise<() => Promise<void>> {
    try {
      return await opts.database.listen(
        PLANS_CHANNEL,
        () => this.invalidate(),
        () => this.invalidate(),
      );
    } catch (err) {
      opts.logger.warn(
        { err: (err as Error).message, channel: PLANS_CHANNEL },
        'plans: LISTEN failed; another replica sees a change within the meter interval only',
      );
      return async () => {};
    }
  }

  private current(): Promise<Snapshot> {
    const t = this.now();
    if (!this.snapshot || t - this.loadedAt > this.maxAgeMs) {
      const loading = Promise.all([
        PlanTable.load(this.db, this.defaultPlan),
        this.db.select().from(plans),
      ]).then(([table, rows]) => ({ table, rows: new Map(rows.map((r) => [r.id, r])) }));
      this.snapshot = loading;
      this.loadedAt = t;
      // a failed read is not kept: the next question tries again
      loading.catch(() => {
        if (this.snapshot === loading) this.snapshot = null;
      });
    }
    return this.snapshot;
  }
}
