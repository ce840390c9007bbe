/**
 * Which plan a user is on: their own assignment, else their groups' (the cheapest wins, so a
 * researcher in a non-profit group is never charged because of another group), else the default.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from './db/client.js';
import { planAssignments, plans } from './db/schema.js';

export type Plan = typeof plans.$inferSelect;

export async function planFor(
  db: Db,
  user: string,
  groups: string[],
  defaultPlan: string,
): Promise<Plan> {
  const own = await db
    .select({ plan: plans })
    .from(planAssignments)
    .innerJoin(plans, eq(plans.id, planAssignments.planId))
    .where(and(eq(planAssignments.subjectKind, 'user'), eq(planAssignments.subjectName, user)))
    .limit(1);
  if (own[0]) return own[0].plan;
  if (groups.length) {
    const viaGroups = await db
      .select({ plan: plans })
      .from(planAssignments)
      .innerJoin(plans, eq(plans.id, planAssignments.planId))
      .where(
        and(eq(planAssignments.subjectKind, 'group'), inArray(planAssignments.subjectName, groups)),
      );
    const cheapest = viaGroups
      .map((r) => r.plan)
      .sort((a, b) => a.multiplierPpm - b.multiplierPpm)[0];
    if (cheapest) return cheapest;
  }
  const fallback = await db.select().from(plans).where(eq(plans.id, defaultPlan)).limit(1);
  return (
    fallback[0] ?? {
      id: defaultPlan,
      label: defaultPlan,
      multiplierPpm: 1_000_000,
      builtIn: false,
      createdAt: new Date(0),
    }
  );
}
