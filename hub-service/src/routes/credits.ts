/**
 * Cloud credit grants (/api/v1/admin/credits, the scope custom:ngsci:admin): record, list and
 * remove grants, the organisation's statement per cloud and month; and, for every user,
 * `GET /api/v1/placement`: where a launch that names no cloud would go, and why.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  CreditGrant,
  CreditGrantInput,
  CreditGrantList,
  CreditSettings,
  CreditSettingsInput,
  CreditStatement,
  Month,
  Placement,
  SizeId,
} from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { ApiError } from '../errors.js';
import { resolveOffer } from '../catalog.js';
import {
  CREDIT_ALERT_DAYS,
  CREDIT_BURN_DAYS,
  Credits,
  creditStatementCsv,
  dayOf,
  toCreditGrant,
} from '../metering/credits.js';
import { readLowerCharges, writeLowerCharges } from '../metering/credit-cover.js';
import { errors, json } from './common.js';

type Deps = Pick<AppDeps, 'auth' | 'database' | 'metering'> & Partial<Pick<AppDeps, 'logger'>>;

export function creditAdminRoutes(deps: Deps) {
  const r = newRouter();
  const credits = new Credits(deps.database.db);
  r.use('/credits', deps.auth.adminOnly());
  r.use('/credits/*', deps.auth.adminOnly());

  r.openapi(
    createRoute({
      method: 'get',
      path: '/credits',
      responses: {
        200: json(CreditGrantList, 'every grant with its draw-down, and the alerts'),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const [summary, settings] = await Promise.all([
        credits.summary(deps.metering.now(), {
          alertDays: CREDIT_ALERT_DAYS,
          burnDays: CREDIT_BURN_DAYS,
        }),
        readLowerCharges(deps.database.db),
      ]);
      return c.json({ ...summary, lowerCharges: settings.lowerCharges }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/credits/settings',
      responses: {
        200: json(CreditSettings, "whether credits also lower researchers' charges"),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json(await readLowerCharges(deps.database.db), 200),
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/credits/settings',
      request: {
        body: { content: { 'application/json': { schema: CreditSettingsInput } }, required: true },
      },
      responses: {
        200: json(
          CreditSettings,
          'saved; the meter applies it to the rows it writes from now on (within 10 s)',
        ),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const { lowerCharges } = c.req.valid('json');
      const user = c.get('user').name;
      const saved = await writeLowerCharges(deps.database.db, lowerCharges, user);
      deps.logger?.info({ admin: user, lowerCharges }, 'credit settings: lower charges');
      return c.json(saved, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/credits',
      request: {
        body: { content: { 'application/json': { schema: CreditGrantInput } }, required: true },
      },
      responses: { 201: json(CreditGrant, 'recorded'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const row = await credits.add({ ...input, createdBy: c.get('user').name });
      // a grant that starts in the past draws down the usage since its start at once
      const now = deps.metering.now();
      const { draw } = await credits.state(now);
      return c.json(toCreditGrant(row, draw.used.get(row.id) ?? 0, dayOf(now)), 201);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/credits/{id}',
      request: {
        params: z.object({
          id: z.coerce
            .number()
            .int()
            .positive()
            .max(2 ** 53),
        }),
      },
      responses: {
        200: json(CreditGrant, 'removed; its draw-down as it was'),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const now = deps.metering.now();
      const { draw } = await credits.state(now);
      const row = await credits.remove(id);
      if (!row) throw new ApiError(404, 'not_found', `no credit grant ${id}`);
      return c.json(toCreditGrant(row, draw.used.get(row.id) ?? 0, dayOf(now)), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/credits/statement/{month}',
      request: {
        params: z.object({ month: Month }),
        query: z.object({ format: z.enum(['json', 'csv']).optional() }),
      },
      responses: {
        200: {
          content: {
            'application/json': { schema: CreditStatement },
            'text/csv': { schema: z.string() },
          },
          description: 'list cost, credits applied and net cost per cloud for the month',
        },
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const { month } = c.req.valid('param');
      const q = c.req.valid('query');
      const statement = await credits.statement(month, deps.metering.now());
      const csv =
        q.format === 'csv' ||
        (q.format !== 'json' && /\btext\/csv\b/.test(c.req.header('accept') ?? ''));
      if (csv) {
        c.header('content-disposition', `attachment; filename="ngsci-credits-${month}.csv"`);
        return c.body(creditStatementCsv(statement), 200, {
          'content-type': 'text/csv; charset=utf-8',
        });
      }
      return c.json(statement, 200);
    },
  );
  return r;
}

export function placementRoutes(deps: Pick<AppDeps, 'database' | 'metering' | 'catalog'>) {
  const r = newRouter();
  const credits = new Credits(deps.database.db);
  r.openapi(
    createRoute({
      method: 'get',
      path: '/placement',
      request: {
        query: z.object({
          size: SizeId,
          spot: z.enum(['true', 'false']).optional(),
        }),
      },
      responses: {
        200: json(Placement, 'the cloud a launch of this size that names none goes to, and why'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const catalog = deps.catalog();
      const spot = q.spot === 'true';
      const placement = await credits.placement(
        catalog,
        { size: q.size, spot },
        deps.metering.now(),
      );
      // no cloud offers it: the same refusal a launch would get
      if (!placement) resolveOffer(catalog, { size: q.size, spot });
      if (!placement)
        throw new ApiError(400, 'size_unavailable', `size '${q.size}' is offered on no cloud`);
      return c.json(placement, 200);
    },
  );
  return r;
}
