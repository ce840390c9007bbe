/** The sizes, what they map to on each cloud, and their prices. */
import { createRoute } from '@hono/zod-openapi';
import { Catalog } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { errors, json } from './common.js';

export function catalogRoutes(deps: Pick<AppDeps, 'catalog'>) {
  const r = newRouter();
  let last: Catalog | null = null;
  let body = '';
  r.openapi(
    createRoute({
      method: 'get',
      path: '/catalog',
      responses: { 200: json(Catalog, 'sizes with their offers and prices'), ...errors(401, 403) },
    }),
    (c) => {
      // the catalog is one object until the prices change (prices.ts memoises it): its JSON is
      // made once per object, not per request
      const catalog = deps.catalog();
      if (catalog !== last) {
        last = catalog;
        body = JSON.stringify(catalog);
      }
      return c.body(body, 200, { 'content-type': 'application/json' }) as never;
    },
  );
  return r;
}
