/** Cost estimates for a usage scenario; see docs/billing.md for the scenario format. */
import { createRoute } from '@hono/zod-openapi';
import { Estimate, EstimateScenario } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { estimate } from '../metering/estimate.js';
import { errors, json } from './common.js';

export function estimateRoutes(deps: Pick<AppDeps, 'catalog'>) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/estimate',
      request: {
        // no body is the empty scenario, every field at its default
        body: { content: { 'application/json': { schema: EstimateScenario } }, required: false },
      },
      responses: {
        200: json(Estimate, 'line items, the monthly and the annual total'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => c.json(estimate(deps.catalog(), c.req.valid('json')), 200),
  );
  return r;
}
