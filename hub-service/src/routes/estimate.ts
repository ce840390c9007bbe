/** Cost estimates for a usage scenario; see docs/billing.md for the scenario format. */
import { createRoute } from '@hono/zod-openapi';
import { Estimate, EstimateScenario } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { estimate } from '../metering/estimate.js';
import { ApiError } from '../errors.js';
import { applyCredits, monthlyByCloud, type EstimateGrant } from '../metering/credits-estimate.js';
import { Credits } from '../metering/credits.js';
import { errors, json } from './common.js';

export function estimateRoutes(deps: Pick<AppDeps, 'catalog' | 'database' | 'metering'>) {
  const r = newRouter();
  const recorded = new Credits(deps.database.db);
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
    async (c) => {
      const scenario = c.req.valid('json');
      const est = estimate(deps.catalog(), scenario);
      if (!scenario?.credits?.length && !scenario?.useRecordedCredits) return c.json(est, 200);
      // credit grants: those the scenario tries, and what is left of the hub's own (admins)
      const grants: EstimateGrant[] = (scenario.credits ?? []).map((g) => ({
        cloud: g.cloud,
        source: 'scenario',
        amountMicros: g.amountMicros,
        expiresOn: g.expiresOn ?? null,
        note: g.note ?? null,
      }));
      const now = deps.metering.now();
      if (scenario.useRecordedCredits) {
        if (!c.get('user').admin)
          throw new ApiError(
            403,
            'forbidden',
            "only admins may estimate with the hub's credit grants",
          );
        const { grants: rows, draw, today } = await recorded.state(now);
        for (const g of rows) {
          const left = g.amountMicros - (draw.used.get(g.id) ?? 0);
          if (left > 0 && g.expiresOn >= today)
            grants.push({
              cloud: g.cloud,
              source: 'recorded',
              amountMicros: left,
              expiresOn: g.expiresOn,
              note: g.note,
            });
        }
      }
      const monthly = monthlyByCloud(deps.catalog(), scenario, est);
      return c.json({ ...est, credits: applyCredits(est, monthly, grants, now) }, 200);
    },
  );
  return r;
}
