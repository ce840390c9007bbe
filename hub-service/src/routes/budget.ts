/**
 * The caller's budget (spend, limits, projected exhaustion) and "Keep running", which resets the
 * idle clock of a server the culler warned about.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { Budget, Instance, ServerName } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import type { PlanCache } from '../metering/plan-cache.js';
import type { ReadCache } from './read-cache.js';
import { ApiError } from '../errors.js';
import { toInstance } from '../instances/store.js';
import { budgetFor, budgetJson } from '../metering/budgets.js';
import { errors, json } from './common.js';
import { ForUser, meteredSubject } from './usage.js';

export function budgetRoutes(
  deps: Pick<AppDeps, 'metering' | 'database' | 'config' | 'store' | 'hub'>,
  /** the plans in memory (app.ts's, as GET /me has them); without it the plan tables are read */
  plans?: PlanCache,
  /** the read cache (read-cache.ts): the settled figures from memory */
  cache?: ReadCache,
) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/budget',
      request: { query: ForUser },
      responses: {
        200: json(Budget, 'this month: spend, budgets, limits, projected exhaustion'),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const me = c.get('user');
      const user = meteredSubject(c, c.req.valid('query').user);
      const groups = user === me.name ? me.groups : ((await deps.hub.getUser(user))?.groups ?? []);
      const args = [
        deps.metering,
        deps.database.db,
        user,
        groups,
        deps.config.NGSCI_DEFAULT_PLAN,
        deps.metering.now(),
        plans,
        cache,
      ] as const;
      // from the read cache: the settled part's JSON is kept (budgets.ts budgetJson), the same
      // bytes as c.json gives the object (read-cache.test.ts compares them)
      if (cache?.active)
        return c.body(await budgetJson(...args), 200, {
          'content-type': 'application/json',
        }) as never;
      return c.json(await budgetFor(...args), 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'post',
      path: '/instances/{server}/keep-running',
      request: { params: z.object({ server: ServerName }), query: ForUser },
      responses: {
        200: json(Instance, 'the idle clock starts again now'),
        ...errors(401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { server } = c.req.valid('param');
      const user = meteredSubject(c, c.req.valid('query').user);
      const row = await deps.store.active(user, server);
      if (!row) throw new ApiError(404, 'not_found', `server '${server}' has no running instance`);
      if (row.state !== 'running')
        throw new ApiError(409, 'instance_not_running', `server '${server}' is ${row.state}`);
      const meter = deps.metering.meter;
      if (!meter)
        throw new ApiError(409, 'instance_not_running', 'the meter is not running in this service');
      await meter.keepRunning(row.id);
      await deps.store.note(
        row.id,
        100,
        `kept running by ${c.get('user').name}; the idle clock starts again`,
      );
      return c.json(toInstance(row), 200);
    },
  );
  return r;
}
