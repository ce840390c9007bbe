/** Who the caller is: name, admin, groups and plan, and how isolated local instances are. */
import { createRoute } from '@hono/zod-openapi';
import { Me } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import type { PlanCache } from '../metering/plan-cache.js';
import { isolationSummary } from '../provisioners/local-policy.js';
import { errors, json } from './common.js';

export function meRoutes(deps: Pick<AppDeps, 'config'>, plans: PlanCache) {
  const r = newRouter();
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
      return c.json(
        {
          name: user.name,
          // an ngsci admin: this token holds the admin scope, or the user is a hub admin whose
          // server's token never does (they sign in to the admin panel: routes/session.ts)
          admin: user.admin || user.hubAdmin,
          groups: user.groups,
          plan: { id: plan.id, label: plan.label, multiplierPpm: plan.multiplierPpm },
          localIsolation: isolationSummary(deps.config),
        },
        200,
      );
    },
  );
  return r;
}
