/**
 * Which plan a user is on. One rule, `choosePlan`: their own assignment, else the cheapest of their
 * groups' plans (so a researcher in a non-profit group is never charged because of another group),
 * else the default plan. Two ways to feed it: `planFor` asks the database for one user (GET /me,
 * GET /budget); `PlanTable` loads the tables once and answers for many users (the meter prices
 * thousands of servers per cycle, the admin user list).
 */
import { and, eq, inArray, or } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { planAssignments, plans } from '../db/schema.js';

export type Plan = typeof plans.$inferSelect;

export interface PlanRef {
  id: string;
  multiplierPpm: number;
}

/**
 * The plan rule, pure: `own` is the user's assignment, `viaGroups` their groups' plans, in
 * any order (on a tie the first wins), `fallback` the default plan.
 */
export function choosePlan<P extends PlanRef>(
  own: P | undefined,
  viaGroups: readonly P[],
  fallback: P,
): P {
  if (own) return own;
  let cheapest: P | undefined;
  for (const p of viaGroups)
    if (!cheapest || p.multiplierPpm < cheapest.multiplierPpm) cheapest = p;
  return cheapest ?? fallback;
}

/** The default plan when its row is missing (an operator named a plan nobody created): list price. */
export function listPricePlan(id: string): Plan {
  return { id, label: id, multiplierPpm: 1_000_000, builtIn: false, createdAt: new Date(0) };
}

/** One user's plan, straight from the database. */
export async function planFor(
  db: Db,
  user: string,
  groups: readonly string[],
  defaultPlan: string,
): Promise<Plan> {
  const ownRule = and(
    eq(planAssignments.subjectKind, 'user'),
    eq(planAssignments.subjectName, user),
  );
  const [assigned, fallback] = await Promise.all([
    db
      .select({ kind: planAssignments.subjectKind, plan: plans })
      .from(planAssignments)
      .innerJoin(plans, eq(plans.id, planAssignments.planId))
      .where(
        groups.length
          ? or(
              ownRule,
              and(
                eq(planAssignments.subjectKind, 'group'),
                inArray(planAssignments.subjectName, [...groups]),
              ),
            )
          : ownRule,
      ),
    db.select().from(plans).where(eq(plans.id, defaultPlan)).limit(1),
  ]);
  return choosePlan(
    assigned.find((r) => r.kind === 'user')?.plan,
    assigned.filter((r) => r.kind === 'group').map((r) => r.plan),
    fallback[0] ?? listPricePlan(defaultPlan),
  );
}

/** Every plan and assignment, loaded once, to answer for many users without a query each. */
export class PlanTable {
  private constructor(
    private readonly byId: Map<string, PlanRef>,
    private readonly users: Map<string, string>,
    private readonly groups: Map<string, string>,
    private readonly defaultPlan: string,
  ) {}

  static async load(db: Db, defaultPlan: string): Promise<PlanTable> {
    const [p, a] = await Promise.all([db.select().from(plans), db.select().from(planAssignments)]);
    return new PlanTable(
      new Map(p.map((r) => [r.id, { id: r.id, multiplierPpm: r.multiplierPpm }])),
      new Map(a.filter((r) => r.subjectKind === 'user').map((r) => [r.subjectName, r.planId])),
      new Map(a.filter((r) => r.subjectKind === 'group').map((r) => [r.subjectName, r.planId])),
      defaultPlan,
    );
  }

  planOf(user: string, groups: readonly string[]): PlanRef {
    const plan = (id: string | undefined) => (id === undefined ? undefined : this.byId.get(id));
    const viaGroups = groups.flatMap((g) => plan(this.groups.get(g)) ?? []);
    const fallback = plan(this.defaultPlan) ?? {
      id: this.defaultPlan,
      multiplierPpm: listPricePlan(this.defaultPlan).multiplierPpm,
    };
    return choosePlan(plan(this.users.get(user)), viaGroups, fallback);
  }
}
