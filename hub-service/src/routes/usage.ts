/** A user's usage over time, by size: seconds and µ$ (the sidebar's usage chart). */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { Usage, UsageQuery } from '@ngsci/contract';
import { newRouter, type AppDeps, type AppEnv } from '../http.js';
import { ApiError } from '../errors.js';
import { monthStart } from '../metering/money.js';
import { liveSeries, type LiveParts } from '../metering/live.js';
import { GpuWaste } from '../metering/gpu-waste.js';
import { errors, json } from './common.js';

export const ForUser = z.object({
  user: z.string().min(1).max(255).optional().meta({ description: 'admins only: another user' }),
});

/** The caller, or with `?user=` another user when the caller is an admin. */
export function meteredSubject(c: Context<AppEnv>, requested: string | undefined): string {
  const me = c.get('user');
  if (!requested || requested === me.name) return me.name;
  if (!me.admin) throw new ApiError(403, 'forbidden', "only admins may read another user's usage");
  return requested;
}

/** What the live figures are computed from (metering/live.ts). */
export const liveParts = (deps: Pick<AppDeps, 'metering' | 'database'>): LiveParts => ({
  db: deps.database.db,
  ledger: deps.metering.ledger,
  settings: deps.metering.settings,
});

/** The hub groups of the subject (they choose the plan, hence the multiplier). */
export async function subjectGroups(
  c: Context<AppEnv>,
  hub: Pick<AppDeps['hub'], 'getUser'>,
  user: string,
): Promise<readonly string[]> {
  const me = c.get('user');
  if (user === me.name) return me.groups;
  return (await hub.getUser(user).catch(() => null))?.groups ?? [];
}

const MAX_POINTS = 24 * 93;

export function usageRoutes(deps: Pick<AppDeps, 'metering' | 'database' | 'hub'>) {
  const r = newRouter();
  const gpuWaste = new GpuWaste(deps.database.db, deps.metering.settings.gpuIdle);
  r.openapi(
    createRoute({
      method: 'get',
      path: '/usage',
      request: { query: UsageQuery.extend(ForUser.shape) },
      responses: { 200: json(Usage, 'usage by time bucket and size'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const user = meteredSubject(c, q.user);
      const now = deps.metering.now();
      const from = q.from ? new Date(q.from) : monthStart(now);
      const to = q.to ? new Date(q.to) : now;
      if (!(from < to)) throw new ApiError(400, 'bad_request', '`from` must be before `to`');
      const bucketHours = q.granularity === 'hour' ? 1 : q.granularity === 'day' ? 24 : 24 * 28;
      if ((to.getTime() - from.getTime()) / 3_600_000 / bucketHours > MAX_POINTS) {
        throw new ApiError(
          400,
          'bad_request',
          `too many ${q.granularity} buckets; narrow from/to or use a coarser granularity`,
        );
      }
      // the ledger's rows plus the open streams' unwritten part, up to this second (figures.ts)
      const { series, streams } = await liveSeries(
        liveParts(deps),
        user,
        await subjectGroups(c, deps.hub, user),
        from,
        to,
        q.granularity,
        now,
      );
      const totalMicros = series.reduce((s, p) => s + p.amountMicros, 0);
      // idle GPU time as the meter has written it (gpu-waste.ts): whole days from the totals
      const gpuIdle = await gpuWaste.userIdle(user, from, to);
      return c.json(
        {
          user,
          from: from.toISOString(),
          to: to.toISOString(),
          granularity: q.granularity,
          series,
          totalMicros,
          asOf: now.toISOString(),
          streams,
          gpuIdle,
        },
        200,
      );
    },
  );
  return r;
}
