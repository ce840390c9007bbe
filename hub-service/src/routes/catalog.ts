/** The sizes, what they map to on each cloud, and their prices. */
import { createRoute } from '@hono/zod-openapi';
import { Catalog } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { errors, json } from './common.js';

export function catalogRoutes(deps: Pick<AppDeps, 'catalog'>) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/catalog',
      responses: { 200: json(Catalog, 'sizes with their offers and prices'), ...errors(401, 403) },
    }),
    (c) => c.json(deps.catalog(), 200),
  );
  return r;
}
