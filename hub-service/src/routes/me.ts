/** Who the caller is: name, admin, groups and plan. */
import { createRoute } from '@hono/zod-openapi';
import { Me } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../app.js';
import { planFor } from '../plans.js';
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
          admin: user.admin,
          groups: user.groups,
          plan: { id: plan.id, label: plan.label, multiplierPpm: plan.multiplierPpm },
        },
        200,
      );
    },
  );
  return r;
}
