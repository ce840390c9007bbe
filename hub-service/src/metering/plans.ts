/**
 * Plan resolution for many users at once (the meter prices thousands of servers per cycle): the
 * same rule as ../plans.ts planFor — own assignment, else the cheapest of the groups', else the
 * default plan — over tables loaded once per cycle.
 */
import type { Db } from '../db/client.js';
import { planAssignments, plans } from '../db/schema.js';

export interface PlanRef {
  id: string;
  multiplierPpm: number;
}

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
    const own = this.users.get(user);
    if (own && this.byId.has(own)) return this.byId.get(own)!;
    let best: PlanRef | null = null;
    for (const g of groups) {
      const p = this.byId.get(this.groups.get(g) ?? '');
      if (p && (!best || p.multiplierPpm < best.multiplierPpm)) best = p;
    }
    return (
      best ?? this.byId.get(this.defaultPlan) ?? { id: this.defaultPlan, multiplierPpm: 1_000_000 }
    );
  }
}
