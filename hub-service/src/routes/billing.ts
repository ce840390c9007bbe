/** Monthly statements, as JSON or CSV (`Accept: text/csv` or `?format=csv`). */
import { createRoute, z } from '@hono/zod-openapi';
import { Month, Statement, StatementList } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { statementCsv, statementFor } from '../metering/statements.js';
import { errors, json } from './common.js';
import { ForUser, liveParts, meteredSubject, subjectGroups, type Reads } from './usage.js';
import { liveMonths, liveStatement } from '../metering/live.js';
import { GpuWaste } from '../metering/gpu-waste.js';

export function billingRoutes(
  deps: Pick<AppDeps, 'metering' | 'database' | 'hub'>,
  reads: Reads = {},
) {
  const r = newRouter();
  const gpuWaste = new GpuWaste(deps.database.db, deps.metering.settings.gpuIdle);
  r.openapi(
    createRoute({
      method: 'get',
      path: '/billing/statements',
      request: { query: ForUser },
      responses: {
        200: json(StatementList, 'months with usage, newest first'),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const user = meteredSubject(c, c.req.valid('query').user);
      const now = deps.metering.now();
      // the running month's total is live to this second, as every other figure (figures.ts)
      const { statements, streams } = await liveMonths(
        liveParts(deps, reads),
        user,
        await subjectGroups(c, deps.hub, user),
        now,
      );
      return c.json({ user, statements, asOf: now.toISOString(), streams }, 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/billing/statements/{month}',
      request: {
        params: z.object({ month: Month }),
        query: ForUser.extend({ format: z.enum(['json', 'csv']).optional() }),
      },
      responses: {
        200: {
          content: {
            'application/json': { schema: Statement },
            'text/csv': { schema: z.string() },
          },
          description: 'the statement; the CSV ends with a total row equal to totalMicros',
        },
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const { month } = c.req.valid('param');
      const q = c.req.valid('query');
      const user = meteredSubject(c, q.user);
      // the running month's lines are live to this second, as its total in the list (live.ts)
      const now = deps.metering.now();
      const live = await liveStatement(
        liveParts(deps, { plans: reads.plans }),
        user,
        await subjectGroups(c, deps.hub, user),
        month,
        now,
        () => statementFor(deps.metering.ledger, user, month, gpuWaste),
      );
      const statement = { ...live.statement, asOf: now.toISOString(), streams: live.streams };
      const csv =
        q.format === 'csv' ||
        (q.format !== 'json' && /\btext\/csv\b/.test(c.req.header('accept') ?? ''));
      if (csv) {
        c.header('content-disposition', attachment(`ngsci-${user}-${month}.csv`));
        return c.body(statementCsv(statement), 200, { 'content-type': 'text/csv; charset=utf-8' });
      }
      return c.json(statement, 200);
    },
  );
  return r;
}

/**
 * The Content-Disposition of a download: an ASCII name for old clients and the exact one
 * (RFC 6266, RFC 8187), since a user name may be any text and a header value must be Latin-1
 * (a name like "研究者" made the CSV statement a 500; found by API fuzzing).
 */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\w.-]/g, '_');
  let exact: string;
  try {
    exact = encodeURIComponent(name).replace(
      /['()*]/g,
      (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
    );
  } catch {
    return `attachment; filename="${ascii}"`; // a lone surrogate: no exact form to give
  }
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
