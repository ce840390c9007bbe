/**
 * GET /admin/base-estimate: the base infrastructure's fixed monthly cost (terraform/src/base/),
 * priced with the contract's dated list prices, the same figures `ngsci admin estimate-base`
 * prints. Registered on the admin router, so only admins (custom:ngsci:admin) reach it.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  BaseCloud,
  BaseEstimate,
  BaseEstimateError,
  estimateBase,
  type BaseEstimateRequest,
} from '@ngsci/contract';
import type { newRouter } from '../http.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

const flag = z.enum(['true', 'false']).optional();
const int = z
  .string()
  .regex(/^\d{1,8}$/, 'a whole number')
  .optional();

export const BaseEstimateQuery = z
  .object({
    cloud: BaseCloud,
    hubMachineType: z.string().min(1).max(64).optional(),
    hubDiskGiB: int,
    dbTier: z.string().min(1).max(64).optional(),
    dbStorageGiB: int,
    dbHighAvailability: flag,
    datasetGiB: int,
    natGateway: flag,
    createDnsZone: flag,
  })
  .strict();

/** The query (all strings) as the estimate's request; out-of-range numbers fail in estimateBase. */
export function baseEstimateRequest(q: z.infer<typeof BaseEstimateQuery>): BaseEstimateRequest {
  const num = (v?: string) => (v === undefined ? undefined : Number(v));
  const bool = (v?: string) => (v === undefined ? undefined : v === 'true');
  return {
    cloud: q.cloud,
    hubMachineType: q.hubMachineType,
    hubDiskGiB: num(q.hubDiskGiB),
    dbTier: q.dbTier,
    dbStorageGiB: num(q.dbStorageGiB),
    dbHighAvailability: bool(q.dbHighAvailability),
    datasetGiB: num(q.datasetGiB),
    natGateway: bool(q.natGateway),
    createDnsZone: bool(q.createDnsZone),
  };
}

export function baseEstimateRoute(r: ReturnType<typeof newRouter>): void {
  r.openapi(
    createRoute({
      method: 'get',
      path: '/base-estimate',
      request: { query: BaseEstimateQuery },
      responses: {
        200: json(BaseEstimate, 'the base stack priced item by item, per month, in µ$'),
        ...errors(400, 401, 403),
      },
    }),
    (c) => {
      const req = baseEstimateRequest(c.req.valid('query'));
      try {
        return c.json(estimateBase(req), 200);
      } catch (err) {
        if (err instanceof BaseEstimateError) throw new ApiError(400, 'bad_request', err.message);
        if (err instanceof z.ZodError)
          throw new ApiError(
            400,
            'validation_failed',
            `invalid request: ${err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
          );
        throw err;
      }
    },
  );
}
