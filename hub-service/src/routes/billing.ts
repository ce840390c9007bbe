/** Monthly statements, as JSON or CSV (`Accept: text/csv` or `?format=csv`). */
import { createRoute, z } from '@hono/zod-openapi';
import { Month, Statement, StatementList } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { statementCsv, statementFor } from '../metering/statements.js';
import { errors, json } from './common.js';
import { ForUser, meteredSubject } from './usage.js';

export function billingRoutes(deps: Pick<AppDeps, 'metering'>) {
  const r = newRouter();
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
      return c.json({ user, statements: await deps.metering.ledger.months(user) }, 200);
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
      const statement = await statementFor(deps.metering.ledger, user, month);
      const csv =
        q.format === 'csv' ||
        (q.format !== 'json' && /\btext\/csv\b/.test(c.req.header('accept') ?? ''));
      if (csv) {
        c.header('content-disposition', `attachment; filename="ngsci-${user}-${month}.csv"`);
        return c.body(statementCsv(statement), 200, { 'content-type': 'text/csv; charset=utf-8' });
      }
      return c.json(statement, 200);
    },
  );
  return r;
}
