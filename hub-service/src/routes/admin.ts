/**
 * Admin API (/api/v1/admin/*, the scope custom:ngsci:admin): quotas and budgets, plans and their
 * assignments, price overrides, every user's spend, every instance, and stopping any instance.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  AdminUserList,
  InstanceList,
  Instance,
  Plan,
  PlanAssignment,
  PlanAssignmentInput,
  PlanAssignmentList,
  PlanId,
  PlanInput,
  PlanList,
  PriceOverride,
  PriceOverrideInput,
  PriceOverrideList,
  Quota,
  QuotaInput,
  QuotaList,
  ServerName,
  SizeId,
  Cloud,
  Month,
  MeterStatus,
} from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { ApiError } from '../errors.js';
import { toInstance } from '../instances/store.js';
import { combine, type QuotaRow } from '../metering/quotas.js';
import { PlanTable, type Plan as PlanRow } from '../metering/plans.js';
import {
  PlanStore,
  PriceOverrideStore,
  QuotaStore,
  type PlanAssignmentRow,
  type PriceOverrideRow,
} from '../metering/admin-store.js';
import { monthKey, nextMonthStart, parseMonth } from '../metering/money.js';
import { billedByInstanceAll, liveSpendByUserWithStreams } from '../metering/live.js';
import { errors, json } from './common.js';
import { baseEstimateRoute } from './base-estimate.js';
import { allowedSizesProblem, forbiddenSizesProblem } from '../packages.js';

const toQuota = (q: QuotaRow) => ({
  id: q.id,
  subjectKind: q.subjectKind,
  subjectName: q.subjectName,
  monthlyBudgetMicros: q.monthlyBudgetMicros,
  hardStop: q.hardStop,
  maxConcurrent: q.maxConcurrent,
  allowedSizes: q.allowedSizes,
  forbiddenSizes: q.forbiddenSizes,
  gpuHoursPerMonth: q.gpuHoursPerMonth,
  idleTimeoutCpuSeconds: q.idleTimeoutCpuSeconds,
  idleTimeoutGpuSeconds: q.idleTimeoutGpuSeconds,
  idleTimeoutCpuMinSeconds: q.idleTimeoutCpuMinSeconds,
  idleTimeoutCpuMaxSeconds: q.idleTimeoutCpuMaxSeconds,
  idleTimeoutGpuMinSeconds: q.idleTimeoutGpuMinSeconds,
  idleTimeoutGpuMaxSeconds: q.idleTimeoutGpuMaxSeconds,
  maxAgeSeconds: q.maxAgeSeconds,
  updatedAt: q.updatedAt.toISOString(),
});
const toPlan = (p: PlanRow) => ({
  id: p.id,
  label: p.label,
  multiplierPpm: p.multiplierPpm,
  builtIn: p.builtIn,
});
const toAssignment = (a: PlanAssignmentRow) => ({
  id: a.id,
  subjectKind: a.subjectKind,
  subjectName: a.subjectName,
  planId: a.planId,
});
const toOverride = (o: PriceOverrideRow) => ({
  size: o.sizeId,
  cloud: o.cloud as Cloud,
  onDemandMicrosPerHour: o.onDemandMicrosPerHour,
  spotMicrosPerHour: o.spotMicrosPerHour,
  note: o.note,
  updatedAt: o.updatedAt.toISOString(),
});

const Id = z.object({ id: z.coerce.number().int().positive() });

export function adminRoutes(
  deps: Pick<
    AppDeps,
    'auth' | 'database' | 'metering' | 'store' | 'lifecycle' | 'hub' | 'config' | 'catalog'
  >,
) {
  const r = newRouter();
  const db = deps.database.db;
  const quotaStore = new QuotaStore(db);
  const planStore = new PlanStore(db);
  const overrideStore = new PriceOverrideStore(db);
  r.use('*', deps.auth.adminOnly());
  baseEstimateRoute(r);

  // ---- quotas and budgets

  r.openapi(
    createRoute({
      method: 'get',
      path: '/quotas',
      responses: { 200: json(QuotaList, 'every quota row'), ...errors(401, 403) },
    }),
    async (c) => c.json({ quotas: (await quotaStore.list()).map(toQuota) }, 200),
  );

  // a package wildcard (`any.t4`, `m.any`) names packages that exist (packages.ts)
  const checkedAllowedSizes = (list: string[] | null): string[] | null => {
    const problem = allowedSizesProblem(list);
    if (problem) throw new ApiError(400, 'validation_failed', `allowedSizes: ${problem}`);
    return list;
  };
  const checkedForbiddenSizes = (list: string[] | null): string[] | null => {
    const problem = forbiddenSizesProblem(list);
    if (problem) throw new ApiError(400, 'validation_failed', `forbiddenSizes: ${problem}`);
    return list;
  };
  const quotaValues = (q: z.infer<typeof QuotaInput>) => ({
    subjectKind: q.subjectKind,
    subjectName: q.subjectName,
    monthlyBudgetMicros: q.monthlyBudgetMicros ?? null,
    hardStop: q.hardStop,
    maxConcurrent: q.maxConcurrent ?? null,
    allowedSizes: checkedAllowedSizes(q.allowedSizes ?? null),
    forbiddenSizes: checkedForbiddenSizes(q.forbiddenSizes ?? null),
    gpuHoursPerMonth: q.gpuHoursPerMonth ?? null,
    idleTimeoutCpuSeconds: q.idleTimeoutCpuSeconds ?? null,
    idleTimeoutGpuSeconds: q.idleTimeoutGpuSeconds ?? null,
    idleTimeoutCpuMinSeconds: q.idleTimeoutCpuMinSeconds ?? null,
    idleTimeoutCpuMaxSeconds: q.idleTimeoutCpuMaxSeconds ?? null,
    idleTimeoutGpuMinSeconds: q.idleTimeoutGpuMinSeconds ?? null,
    idleTimeoutGpuMaxSeconds: q.idleTimeoutGpuMaxSeconds ?? null,
    maxAgeSeconds: q.maxAgeSeconds ?? null,
    updatedAt: new Date(),
  });

  r.openapi(
    createRoute({
      method: 'post',
      path: '/quotas',
      request: {
        body: { content: { 'application/json': { schema: QuotaInput } }, required: true },
      },
      responses: { 201: json(Quota, 'created'), ...errors(400, 401, 403, 409) },
    }),
    async (c) => {
      const row = await quotaStore.create(quotaValues(c.req.valid('json')));
      if (!row)
        throw new ApiError(
          409,
          'already_exists',
          'a quota for this subject exists already; update it with PUT /admin/quotas/{id}',
        );
      return c.json(toQuota(row), 201);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/quotas/{id}',
      request: { params: Id },
      responses: { 200: json(Quota, 'the quota'), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await quotaStore.get(c.req.valid('param').id);
      if (!row) throw new ApiError(404, 'not_found', 'no such quota');
      return c.json(toQuota(row), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/quotas/{id}',
      request: {
        params: Id,
        body: { content: { 'application/json': { schema: QuotaInput } }, required: true },
      },
      responses: { 200: json(Quota, 'replaced'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const row = await quotaStore.replace(
        c.req.valid('param').id,
        quotaValues(c.req.valid('json')),
      );
      if (!row) throw new ApiError(404, 'not_found', 'no such quota');
      if (row === 'taken')
        throw new ApiError(
          409,
          'already_exists',
          'another quota has this subject already; change that one, or delete it first',
        );
      return c.json(toQuota(row), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/quotas/{id}',
      request: { params: Id },
      responses: { 204: { description: 'deleted' }, ...errors(401, 403, 404) },
    }),
    async (c) => {
      if (!(await quotaStore.delete(c.req.valid('param').id)))
        throw new ApiError(404, 'not_found', 'no such quota');
      return c.body(null, 204);
    },
  );

  // ---- plans and assignments

  r.openapi(
    createRoute({
      method: 'get',
      path: '/plans',
      responses: { 200: json(PlanList, 'every plan'), ...errors(401, 403) },
    }),
    async (c) => c.json({ plans: (await planStore.list()).map(toPlan) }, 200),
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/plans',
      request: { body: { content: { 'application/json': { schema: PlanInput } }, required: true } },
      responses: { 201: json(Plan, 'created'), ...errors(400, 401, 403, 409) },
    }),
    async (c) => {
      const row = await planStore.create(c.req.valid('json'));
      if (!row) throw new ApiError(409, 'already_exists', 'a plan with this id exists already');
      return c.json(toPlan(row), 201);
    },
  );

  const PlanParam = z.object({ id: PlanId });
  r.openapi(
    createRoute({
      method: 'put',
      path: '/plans/{id}',
      request: {
        params: PlanParam,
        body: {
          content: { 'application/json': { schema: PlanInput.omit({ id: true }) } },
          required: true,
        },
      },
      responses: {
        200: json(
          Plan,
          'updated; running instances keep their snapshot until the next meter cycle',
        ),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const row = await planStore.update(c.req.valid('param').id, c.req.valid('json'));
      if (!row) throw new ApiError(404, 'not_found', 'no such plan');
      return c.json(toPlan(row), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/plans/{id}',
      request: { params: PlanParam },
      responses: { 204: { description: 'deleted' }, ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const row = await planStore.get(id);
      if (!row) throw new ApiError(404, 'not_found', 'no such plan');
      if (row.builtIn)
        throw new ApiError(
          400,
          'bad_request',
          `'${id}' is a built-in plan; change its multiplier instead`,
        );
      const used = await planStore.assignmentCount(id);
      if (used > 0)
        throw new ApiError(
          400,
          'bad_request',
          `plan '${id}' is assigned ${used} time(s); remove the assignments first`,
        );
      await planStore.delete(id);
      return c.body(null, 204);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/plan-assignments',
      responses: { 200: json(PlanAssignmentList, 'every assignment'), ...errors(401, 403) },
    }),
    async (c) => c.json({ assignments: (await planStore.assignments()).map(toAssignment) }, 200),
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/plan-assignments',
      description: 'assigns a plan to a user or group, replacing its previous plan',
      request: {
        body: { content: { 'application/json': { schema: PlanAssignmentInput } }, required: true },
      },
      responses: { 200: json(PlanAssignment, 'assigned'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const a = c.req.valid('json');
      if (!(await planStore.get(a.planId)))
        throw new ApiError(400, 'bad_request', `no plan '${a.planId}'`);
      return c.json(toAssignment(await planStore.assign(a)), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/plan-assignments/{id}',
      request: { params: Id },
      responses: { 204: { description: 'removed' }, ...errors(401, 403, 404) },
    }),
    async (c) => {
      if (!(await planStore.unassign(c.req.valid('param').id)))
        throw new ApiError(404, 'not_found', 'no such assignment');
      return c.body(null, 204);
    },
  );

  // ---- price overrides

  r.openapi(
    createRoute({
      method: 'get',
      path: '/prices',
      responses: { 200: json(PriceOverrideList, 'every override'), ...errors(401, 403) },
    }),
    async (c) => c.json({ overrides: (await overrideStore.list()).map(toOverride) }, 200),
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/prices',
      description:
        'sets the price of one size on one cloud; the catalog, launches and estimates use it at once',
      request: {
        body: { content: { 'application/json': { schema: PriceOverrideInput } }, required: true },
      },
      responses: { 200: json(PriceOverride, 'set'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const p = c.req.valid('json');
      const size = deps.metering.prices.catalog().sizes.find((s) => s.id === p.size);
      if (!size) throw new ApiError(400, 'unknown_size', `unknown size '${p.size}'`);
      const values = {
        sizeId: p.size,
        cloud: p.cloud,
        onDemandMicrosPerHour: p.onDemandMicrosPerHour,
        spotMicrosPerHour: p.spotMicrosPerHour ?? null,
        note: p.note ?? null,
        updatedAt: new Date(),
      };
      const row = await overrideStore.put(values);
      await deps.metering.prices.changed();
      return c.json(toOverride(row), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/prices/{size}/{cloud}',
      request: { params: z.object({ size: SizeId, cloud: Cloud }) },
      responses: { 204: { description: 'back to the catalog price' }, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { size, cloud } = c.req.valid('param');
      if (!(await overrideStore.delete(size, cloud)))
        throw new ApiError(404, 'not_found', `no override for ${size} on ${cloud}`);
      await deps.metering.prices.changed();
      return c.body(null, 204);
    },
  );

  // ---- users, instances

  r.openapi(
    createRoute({
      method: 'get',
      path: '/users',
      request: { query: z.object({ month: Month.optional() }) },
      responses: {
        200: json(AdminUserList, "every user's spend this month against their budget"),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const now = deps.metering.now();
      const month = c.req.valid('query').month ?? monthKey(now);
      const from = parseMonth(month);
      const running = await deps.store.runningByUser();
      const hubUsers = await deps.hub.listActiveUsers(500).catch(() => []);
      const groups = new Map(hubUsers.map((u) => [u.name, u.groups ?? []]));
      // spent this month, as GET /budget answers it: ledger plus the unwritten part (figures.ts)
      const { spend, streams } = await liveSpendByUserWithStreams(
        { db, ledger: deps.metering.ledger, settings: deps.metering.settings },
        (u) => groups.get(u) ?? [],
        { from: from.getTime(), to: nextMonthStart(from).getTime() },
        now,
      );
      const names = [...new Set([...spend.keys(), ...running.keys(), ...groups.keys()])].sort();
      for (const n of names.filter((x) => !groups.has(x)).slice(0, 500)) {
        groups.set(n, (await deps.hub.getUser(n).catch(() => null))?.groups ?? []);
      }
      const rows = await deps.metering.quotas.rows();
      const planTable = await PlanTable.load(db, deps.config.NGSCI_DEFAULT_PLAN);
      const users = names.map((name) => {
        const g = groups.get(name) ?? [];
        const limits = combine(rows, name, g, deps.metering.settings.cull);
        const own = limits.budgets.find((b) => b.kind !== 'group');
        const spent = spend.get(name) ?? 0;
        return {
          name,
          groups: g,
          plan: planTable.planOf(name, g).id,
          running: running.get(name) ?? 0,
          spentMicros: spent,
          budgetMicros: own?.budgetMicros ?? null,
          percent: own
            ? own.budgetMicros > 0
              ? Math.floor((spent * 100) / own.budgetMicros)
              : 100
            : null,
        };
      });
      return c.json({ month, users, asOf: now.toISOString(), streams }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances',
      request: {
        query: z.object({
          all: z
            .enum(['true', 'false'])
            .optional()
            .meta({ description: 'include ended instances (newest 500)' }),
        }),
      },
      responses: { 200: json(InstanceList, "every user's instances"), ...errors(401, 403) },
    }),
    async (c) => {
      const rows = await deps.store.list({ includeEnded: c.req.valid('query').all === 'true' });
      // billed so far per instance, live to this second, as GET /instances answers it (live.ts)
      const now = deps.metering.now();
      const { billed, streams } = await billedByInstanceAll(
        { db, ledger: deps.metering.ledger, settings: deps.metering.settings },
        rows.map((r) => r.id),
        now,
      );
      return c.json(
        {
          instances: rows.map((r) => ({ ...toInstance(r), billedMicros: billed.get(r.id) ?? 0 })),
          asOf: now.toISOString(),
          streams,
        },
        200,
      );
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/instances/{user}/{server}/stop',
      request: { params: z.object({ user: z.string().min(1).max(255), server: ServerName }) },
      responses: {
        202: json(Instance, 'stopping, through the hub'),
        ...errors(401, 403, 404, 502),
      },
    }),
    async (c) => {
      const { user, server } = c.req.valid('param');
      const current = await deps.store.active(user, server);
      if (current)
        await deps.store.note(current.id, 0, `stop requested by admin ${c.get('user').name}`);
      const row = await deps.lifecycle.stop(user, server);
      return c.json(toInstance(row), 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/meter',
      responses: {
        200: json(
          MeterStatus,
          'the meter loop in this replica: whether it holds the lock, and its last cycle (unknown servers, culls, alerts)',
        ),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const meter = deps.metering.meter;
      const activeInstances = await deps.store.countActive();
      return c.json(
        {
          leader: meter?.leader ?? false,
          lastCycle: (meter?.last as Record<string, unknown> | null) ?? null,
          activeInstances,
        },
        200,
      );
    },
  );

  return r;
}
