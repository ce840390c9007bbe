/** The sizes, what they map to on each cloud, and their prices. */
import { createRoute } from '@hono/zod-openapi';
import { Catalog } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { errors, json } from './common.js';
import { prepareJson, sendPrepared, type PreparedJson } from './prepared-json.js';

export function catalogRoutes(deps: Pick<AppDeps, 'catalog'>) {
  const r = newRouter();
  let last: Catalog | null = null;
  let prepared: PreparedJson | null = null;
  r.openapi(
    createRoute({
      method: 'get',
      path: '/catalog',
      responses: {
        200: json(Catalog, 'sizes with their offers and prices (gzip when the client accepts it)'),
        304: {
          description: 'the catalog the client holds (If-None-Match) is still the current one',
        },
        ...errors(401, 403),
      },
    }),
    (c) => {
      // the catalog is one object until the prices change (prices.ts memoises it): its JSON, gzip
      // and entity tag are made once per object, not per request
      const catalog = deps.catalog();
      if (catalog !== last || !prepared) {
        last = catalog;
        prepared = prepareJson(catalog);
      }
      return sendPrepared(c, prepared) as never;
    },
  );
  return r;
}
