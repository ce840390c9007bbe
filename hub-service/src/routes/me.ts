/** Who the caller is: name, admin, groups and plan, and how isolated local instances are. */
import { createRoute } from '@hono/zod-openapi';
import { Me } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import type { PlanCache } from '../metering/plan-cache.js';
import type { Plan } from '../metering/plans.js';
import { isolationSummary } from '../provisioners/local-policy.js';
import { errors, json } from './common.js';

/** Answers kept at most (the least recently made go first). */
const MAX_KEPT = 20_000;

/** One user's answer as JSON, with everything it was made from. */
interface Kept {
  admin: boolean;
  groups: readonly string[];
  plan: Pick<Plan, 'id' | 'label' | 'multiplierPpm'>;
  mode: string;
  sharedDemo: boolean;
  body: string;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

export function meRoutes(deps: Pick<AppDeps, 'config' | 'readCache'>, plans: PlanCache) {
  const r = newRouter();
  // each user's answer as JSON while the read cache answers (read-cache.ts), checked on every
  // request against what it was made from (the caller as the token says, the plan in memory, the
  // isolation setting), so there is nothing to forget
  const kept = new Map<string, Kept>();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      responses: { 200: json(Me, 'the caller'), ...errors(401, 403) },
    }),
    async (c) => {
      const user = c.get('user');
      // the plans in memory, current with every admin change (plan-cache.ts): no query
      const plan = await plans.planOf(user.name, user.groups);
      // an ngsci admin: this token holds the admin scope, or the user is a hub admin whose
      // server's token never does (they sign in to the admin panel: routes/session.ts)
      const admin = user.admin || user.hubAdmin;
      const localIsolation = isolationSummary(deps.config);
      const cached = deps.readCache?.active === true;
      let k = cached ? kept.get(user.name) : undefined;
      if (
        k &&
        k.admin === admin &&
        sameList(k.groups, user.groups) &&
        k.plan.id === plan.id &&
        k.plan.label === plan.label &&
        k.plan.multiplierPpm === plan.multiplierPpm &&
        k.mode === localIsolation.mode &&
        k.sharedDemo === localIsolation.sharedDemo
      )
        return c.body(k.body, 200, { 'content-type': 'application/json' }) as never;
      const me = {
        name: user.name,
        admin,
        groups: user.groups,
        plan: { id: plan.id, label: plan.label, multiplierPpm: plan.multiplierPpm },
        localIsolation,
      };
      if (!cached) return c.json(me, 200);
      if (!k && kept.size >= MAX_KEPT) kept.delete(kept.keys().next().value!);
      k = {
        admin,
        groups: [...user.groups],
        plan: me.plan,
        mode: localIsolation.mode,
        sharedDemo: localIsolation.sharedDemo,
        body: JSON.stringify(me),
      };
      kept.set(user.name, k);
      return c.body(k.body, 200, { 'content-type': 'application/json' }) as never;
    },
  );
  return r;
}
