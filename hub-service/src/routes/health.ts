/** Liveness and readiness: answers once the database does. */
import { createRoute } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import { Health } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { json } from './common.js';

export function healthRoutes(deps: Pick<AppDeps, 'database' | 'version'>) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      security: [],
      responses: { 200: json(Health, 'the service and its database answer') },
    }),
    async (c) => {
      await deps.database.db.execute(sql`select 1`);
      return c.json(
        { status: 'ok' as const, version: deps.version, database: deps.database.kind },
        200,
      );
    },
  );
  return r;
}
