/** Who the caller is: name, admin, groups and plan, and how isolated local instances are. */
import { createRoute } from '@hono/zod-openapi';
import { Me } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { planFor } from '../metering/plans.js';
import { isolationSummary } from '../provisioners/local-policy.js';
import { errors, json } from './common.js';

export function meRoutes(deps: Pick<AppDeps, 'database' | 'config'>) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      responses: { 200: json(Me, 'the caller'), ...errors(401, 403) },
    }),
    async (c) => {
      const user = c.get('user');
      const plan = await planFor(
        deps.database.db,
        user.name,
        user.groups,
        deps.config.NGSCI_DEFAULT_PLAN,
      );
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
