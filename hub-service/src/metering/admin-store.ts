/**
 * Data access behind the admin API (routes/admin.ts): quota rows, plans and their assignments,
 * price overrides. The stores answer rows or null/false and leave HTTP errors to the routes, as
 * InstanceStore does for the instance routes. What admins change here, the meter and the launch
 * checks read through Quotas, PlanTable and PriceBook.
 */
import { and, count, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { planAssignments, plans, priceOverrides, quotas } from '../db/schema.js';
import type { Plan } from './plans.js';
import type { QuotaRow } from './quotas.js';

export type QuotaValues = Omit<typeof quotas.$inferInsert, 'id'>;
export type PlanAssignmentRow = typeof planAssignments.$inferSelect;
export type PriceOverrideRow = typeof priceOverrides.$inferSelect;
export type PriceOverrideValues = typeof priceOverrides.$inferInsert;

/** Postgres's unique_violation, from postgres.js or PGlite (drizzle wraps it as the `cause`). */
function isUniqueViolation(err: unknown): boolean {
  for (let e = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause)
    if ((e as { code?: unknown }).code === '23505') return true;
  return false;
}

/** Quota and budget rows, one per subject (user, group or the default). */
export class QuotaStore {
  constructor(private readonly db: Db) {}

  list(): Promise<QuotaRow[]> {
    return this.db.select().from(quotas).orderBy(quotas.id);
  }

  async get(id: number): Promise<QuotaRow | null> {
    const [row] = await this.db.select().from(quotas).where(eq(quotas.id, id));
    return row ?? null;
  }

  /** null when the subject has a row already (the unique index decides, not a prior read) */
  async create(values: QuotaValues): Promise<QuotaRow | null> {
    const [row] = await this.db.insert(quotas).values(values).onConflictDoNothing().returning();
    return row ?? null;
  }

  /** null when there is no such row; 'taken' when another row has the subject already */
  async replace(id: number, values: QuotaValues): Promise<QuotaRow | null | 'taken'> {
    try {
      const [row] = await this.db.update(quotas).set(values).where(eq(quotas.id, id)).returning();
      return row ?? null;
    } catch (err) {
      if (isUniqueViolation(err)) return 'taken';
      throw err;
    }
  }

  async delete(id: number): Promise<boolean> {
    const gone = await this.db.delete(quotas).where(eq(quotas.id, id)).returning({ id: quotas.id });
    return gone.length > 0;
  }
}

/** Plans (price multipliers) and which user or group is on which. */
export class PlanStore {
  constructor(private readonly db: Db) {}

  list(): Promise<Plan[]> {
    return this.db.select().from(plans).orderBy(plans.id);
  }

  async get(id: string): Promise<Plan | null> {
    const [row] = await this.db.select().from(plans).where(eq(plans.id, id));
    return row ?? null;
  }

  /** null when a plan with this id exists already */
  async create(values: { id: string; label: string; multiplierPpm: number }): Promise<Plan | null> {
    const [row] = await this.db
      .insert(plans)
      .values({ ...values, builtIn: false })
      .onConflictDoNothing()
      .returning();
    return row ?? null;
  }

  async update(id: string, values: { label: string; multiplierPpm: number }): Promise<Plan | null> {
    const [row] = await this.db.update(plans).set(values).where(eq(plans.id, id)).returning();
    return row ?? null;
  }

  /** how many users and groups are assigned the plan (a plan in use cannot be deleted) */
  async assignmentCount(id: string): Promise<number> {
    const [used] = await this.db
      .select({ n: count() })
      .from(planAssignments)
      .where(eq(planAssignments.planId, id));
    return used?.n ?? 0;
  }

  async delete(id: string): Promise<void> {
    await this.db.delete(plans).where(eq(plans.id, id));
  }

  assignments(): Promise<PlanAssignmentRow[]> {
    return this.db.select().from(planAssignments).orderBy(planAssignments.id);
  }

  /** puts the subject on the plan, replacing its previous one */
  async assign(a: {
    subjectKind: 'user' | 'group';
    subjectName: string;
    planId: string;
  }): Promise<PlanAssignmentRow> {
    const [row] = await this.db
      .insert(planAssignments)
      .values(a)
      .onConflictDoUpdate({
        target: [planAssignments.subjectKind, planAssignments.subjectName],
        set: { planId: a.planId },
      })
      .returning();
    return row!;
  }

  async unassign(id: number): Promise<boolean> {
    const gone = await this.db
      .delete(planAssignments)
      .where(eq(planAssignments.id, id))
      .returning({ id: planAssignments.id });
    return gone.length > 0;
  }
}

/** Admins' prices for a size on a cloud, over the catalog's; PriceBook applies them. */
export class PriceOverrideStore {
  constructor(private readonly db: Db) {}

  list(): Promise<PriceOverrideRow[]> {
    return this.db.select().from(priceOverrides);
  }

  /** sets the size's price on the cloud, replacing an earlier override */
  async put(values: PriceOverrideValues): Promise<PriceOverrideRow> {
    const [row] = await this.db
      .insert(priceOverrides)
      .values(values)
      .onConflictDoUpdate({ target: [priceOverrides.sizeId, priceOverrides.cloud], set: values })
      .returning();
    return row!;
  }

  async delete(sizeId: string, cloud: string): Promise<boolean> {
    const gone = await this.db
      .delete(priceOverrides)
      .where(and(eq(priceOverrides.sizeId, sizeId), eq(priceOverrides.cloud, cloud)))
      .returning();
    return gone.length > 0;
  }
}
