/**
 * The spawner-bridge's routes: JupyterHub's NgsciSpawner calls these with the bridge secret when
 * the hub starts, stops or polls a server. They are in the OpenAPI document for completeness.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  BridgeInstance,
  BridgeStartRequest,
  BridgeStatus,
  BridgeStopRequest,
  Catalog,
  EventList,
  InstanceState,
  SizeRunway,
} from '@ngsci/contract';
import { budgetFor } from '../metering/budgets.js';
import { Credits, placementsFor } from '../metering/credits.js';
import { newRouter, type AppDeps } from '../http.js';
import { notFound } from '../errors.js';
import { toBridgeInstance } from '../instances/store.js';
import { forbiddingEntry } from '../packages.js';
import { errors, json } from './common.js';

const IdParam = z.object({ id: z.uuid() });
const security = [{ bridgeSecret: [] }];

/** The catalog for the spawn form; with `?user=`, that user's runway per size (GET /budget's). */
const BridgeCatalog = Catalog.extend({
  runway: z.array(SizeRunway).optional().meta({
    description: "with ?user=: the user's runway, quota refusal and idle timeout per size",
  }),
  placements: z
    .record(z.string(), z.object({ cloud: z.string(), region: z.string(), reason: z.string() }))
    .optional()
    .meta({
      description:
        "with ?user=: per size or pair offered on several clouds, the cloud that costs least after credits, and why; or offered on one cloud only that is not the hub's default, that cloud",
    }),
  spotPlacements: z
    .record(z.string(), z.object({ cloud: z.string(), region: z.string(), reason: z.string() }))
    .optional()
    .meta({
      description:
        'with ?user=: the same for a spot start (spot prices), where the form\'s "Automatic" cloud sends it',
    }),
}).meta({ id: 'BridgeCatalog' });

export function bridgeRoutes(
  deps: Pick<
    AppDeps,
    'store' | 'lifecycle' | 'catalog' | 'metering' | 'database' | 'config' | 'hub'
  >,
) {
  const r = newRouter();
  const credits = new Credits(deps.database.db);

  r.openapi(
    createRoute({
      method: 'get',
      path: '/catalog',
      security,
      request: {
        query: z.object({
          user: z.string().min(1).max(255).optional().meta({
            description: 'the user the spawn form is for: adds their runway per size',
          }),
        }),
      },
      responses: { 200: json(BridgeCatalog, 'the catalog'), ...errors(400, 401) },
    }),
    async (c) => {
      const { user } = c.req.valid('query');
      if (!user) return c.json(deps.catalog(), 200);
      // the user's groups from the hub, as a launch checks them; none if the hub does not know them
      const groups = (await deps.hub.getUser(user))?.groups ?? [];
      const b = await budgetFor(
        deps.metering,
        deps.database.db,
        user,
        groups,
        deps.config.NGSCI_DEFAULT_PLAN,
      );
      // where each size costs the organisation least after credits (metering/credits.ts)
      const catalog = deps.catalog();
      const now = deps.metering.now();
      const placements = await placementsFor(credits, catalog, now);
      // a spot start that names no cloud is placed by spot prices (Lifecycle.checkedMachine)
      const spotPlacements = await placementsFor(credits, catalog, now, true);
      // a pair the user's quotas forbid is unavailable on every cloud, with the reason
      const forbidden = b.limits.forbiddenSizes ?? [];
      const pairs = forbidden.length
        ? catalog.pairs?.map((p) => {
            const f = forbiddingEntry(forbidden, p.id);
            return f
              ? { ...p, offers: p.offers.map((o) => ({ ...o, available: false, note: f.reason })) }
              : p;
          })
        : catalog.pairs;
      return c.json({ ...catalog, pairs, runway: b.runway ?? [], placements, spotPlacements }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/start',
      security,
      request: {
        body: { content: { 'application/json': { schema: BridgeStartRequest } }, required: true },
      },
      responses: { 202: json(BridgeStatus, 'the instance is requested'), ...errors(400, 401, 409) },
    }),
    async (c) => {
      const row = await deps.lifecycle.bridgeStart(c.req.valid('json'));
      return c.json({ instance: toBridgeInstance(row) }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/stop',
      security,
      request: {
        body: { content: { 'application/json': { schema: BridgeStopRequest } }, required: true },
      },
      responses: {
        202: json(BridgeStatus, 'stopping (or null: nothing to stop)'),
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const { user, server } = c.req.valid('json');
      const row = await deps.lifecycle.bridgeStop(user, server);
      return c.json({ instance: row ? toBridgeInstance(row) : null }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/status',
      security,
      request: { query: z.object({ user: z.string().min(1), server: z.string().default('') }) },
      responses: {
        200: json(BridgeStatus, 'the newest instance of the server'),
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const { user, server } = c.req.valid('query');
      const row = await deps.lifecycle.bridgeStatus(user, server);
      return c.json({ instance: row ? toBridgeInstance(row) : null }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{id}',
      security,
      description:
        'With `unless` and `wait`, a long poll: the answer is held until the state differs from ' +
        '`unless`, at most `wait` seconds, so the spawner learns of readiness at once.',
      request: {
        params: IdParam,
        query: z.object({
          unless: InstanceState.optional(),
          wait: z.coerce.number().min(0).max(30).default(0),
        }),
      },
      responses: { 200: json(BridgeInstance, 'the instance'), ...errors(400, 401, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { unless, wait } = c.req.valid('query');
      const deadline = Date.now() + wait * 1000;
      let row = await deps.store.get(id);
      while (
        row &&
        unless &&
        row.state === unless &&
        Date.now() < deadline &&
        !c.req.raw.signal.aborted
      ) {
        await new Promise((r) => setTimeout(r, 100));
        row = await deps.store.get(id);
      }
      if (!row) throw notFound('instance');
      return c.json(toBridgeInstance(row), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{id}/events',
      security,
      request: {
        params: IdParam,
        query: z.object({ after: z.coerce.number().int().min(0).default(0) }),
      },
      responses: {
        200: json(EventList, 'events after the given id, oldest first'),
        ...errors(401, 404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json({ events: await deps.store.events(id, c.req.valid('query').after) }, 200);
    },
  );

  return r;
}
