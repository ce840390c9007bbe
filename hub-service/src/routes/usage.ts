/** A user's usage over time, by size: seconds and µ$ (the sidebar's usage chart). */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { Usage, UsageQuery } from '@ngsci/contract';
import { newRouter, type AppDeps, type AppEnv } from '../http.js';
import { ApiError } from '../errors.js';
import { monthStart } from '../metering/money.js';
import { sql } from 'drizzle-orm';
import type { GpuIdle, OpenStream } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { resultRows } from '../metering/ledger.js';
import {
  measure,
  seriesAt,
  type Bucket,
  type LiveParts,
  type SeriesPoint,
} from '../metering/live.js';
import { GpuWaste } from '../metering/gpu-waste.js';
import type { PlanCache } from '../metering/plan-cache.js';
import type { ReadCache } from './read-cache.js';
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

/** The plans in memory and the read cache, as app.ts passes them to the read routes. */
export interface Reads {
  plans?: PlanCache;
  cache?: ReadCache;
}

/** What the live figures are computed from (metering/live.ts). */
export const liveParts = (
  deps: Pick<AppDeps, 'metering' | 'database'>,
  reads: Reads = {},
): LiveParts => ({
  db: deps.database.db,
  ledger: deps.metering.ledger,
  settings: deps.metering.settings,
  ...(reads.plans && { plans: reads.plans }),
  ...(reads.cache && { cache: reads.cache }),
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

export function usageRoutes(
  deps: Pick<AppDeps, 'metering' | 'database' | 'hub'>,
  reads: Reads = {},
) {
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
      const groups = await subjectGroups(c, deps.hub, user);
      const { series, gpuIdle, streams } = await usageAt(
        liveParts(deps, reads),
        gpuWaste,
        user,
        groups,
        { from, to, granularity: q.granularity, open: !q.to },
        now,
      );
      const totalMicros = series.reduce((s, p) => s + p.amountMicros, 0);
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

const DAY_MS = 86_400_000;

/**
 * The usage chart at `now`: the ledger's buckets and idle GPU time (gpu-waste.ts: whole days from
 * the totals) plus the open streams' unwritten part. With the read cache, the ledger's part is
 * kept per range: a range up to now (`open`) is read up to the end of the UTC day instead, with the
 * user's newest row start; that copy is the one up to any later `now` of the day while no row
 * starts at or after `now` (a new row drops the copy: routes/read-cache.ts).
 */
export async function usageAt(
  p: LiveParts,
  gpuWaste: GpuWaste,
  user: string,
  groups: readonly string[],
  r: { from: Date; to: Date; granularity: Bucket; open: boolean },
  now: Date,
): Promise<{ series: SeriesPoint[]; gpuIdle: GpuIdle; streams: OpenStream[] }> {
  const ask = (to: Date, newest: boolean) => async () => {
    const [rows, idle, latest] = await Promise.all([
      p.ledger.series(user, r.from, to, r.granularity),
      gpuWaste.userIdle(user, r.from, to),
      newest ? newestStart(p.db, user) : null,
    ]);
    return { rows, idle, latest };
  };
  const wholeDays = r.from.getTime() % DAY_MS === 0 && r.to.getTime() % DAY_MS === 0;
  const dayEnd = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS + DAY_MS - 1);
  // off, or its LISTEN down: the range as asked, as without a cache
  const stretch = p.cache?.active && r.open && !wholeDays && r.to.getTime() === now.getTime();
  const readTo = stretch ? dayEnd : r.to;
  const key = p.cache
    ? `usage:${r.from.toISOString()}:${readTo.toISOString()}:${r.granularity}`
    : undefined;
  let got = await measure(p, [user], () => groups, now, ask(readTo, !!stretch), key);
  if (got.written.latest !== null && got.written.latest >= now.getTime())
    got = await measure(p, [user], () => groups, now, ask(r.to, false));
  const { streams, written } = got;
  return {
    series: seriesAt(written.rows, streams, r.from, r.to, r.granularity, now),
    gpuIdle: { ...written.idle },
    streams,
  };
}

/** When the user's newest ledger or idle-GPU row starts (ms), or 0 when there is none. */
async function newestStart(db: Db, user: string): Promise<number> {
  const rows = resultRows<{ t: string | Date | null }>(
    await db.execute(sql`select greatest(
      (select max(started_at) from usage_intervals where user_name = ${user}),
      (select max(started_at) from gpu_idle_intervals where user_name = ${user})) as t`),
  );
  const t = rows[0]?.t;
  return t ? new Date(t).getTime() : 0;
}
