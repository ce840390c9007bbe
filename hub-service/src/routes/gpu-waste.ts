/**
 * GPU money wasted, for admins (GET /api/v1/admin/gpu-waste): users and groups ranked by the µ$
 * their GPU instances cost while every GPU sat idle (metering/gpu-waste.ts). A researcher's own
 * figure comes with GET /usage (routes/usage.ts) and their statements.
 */
import { createRoute } from '@hono/zod-openapi';
import { GpuWasteQuery, GpuWasteRanking } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { GpuWaste } from '../metering/gpu-waste.js';
import { monthKey, nextMonthStart, parseMonth } from '../metering/money.js';
import { errors, json } from './common.js';

export function gpuWasteAdminRoutes(deps: Pick<AppDeps, 'auth' | 'database' | 'metering'>) {
  const r = newRouter();
  const waste = new GpuWaste(deps.database.db, deps.metering.settings.gpuIdle);
  r.use('/gpu-waste', deps.auth.adminOnly());
  r.openapi(
    createRoute({
      method: 'get',
      path: '/gpu-waste',
      description:
        'Admins: users and groups ranked by idle-GPU dollars in a month (every GPU below ' +
        'NGSCI_GPU_IDLE_PERCENT while the instance was billed), as the meter has written them.',
      request: { query: GpuWasteQuery },
      responses: {
        200: json(GpuWasteRanking, 'the ranking, most idle-GPU µ$ first'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const now = deps.metering.now();
      const month = q.month ?? monthKey(now);
      const from = parseMonth(month);
      const ranked = await waste.ranking(from, nextMonthStart(from), q.limit);
      return c.json(
        {
          month,
          thresholdPercent: Math.round(waste.settings.idlePercent),
          ...ranked,
          asOf: now.toISOString(),
        },
        200,
      );
    },
  );
  return r;
}
