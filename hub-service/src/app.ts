/**
 * The app factory: builds the hono app from its dependencies, with no side effects, so tests can
 * hand it a PGlite database, a fake hub and a fake clock. index.ts alone reads config and listens.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { ApiError } from './errors.js';
import { databaseApiError } from './db/unavailable.js';
import { bridgeAuth, tokenFrom } from './auth.js';
import { newRouter, type AppDeps, type AppEnv } from './http.js';
import { requestBodyLimit } from './limits/body.js';
import { clientAddress } from './limits/client-address.js';
import { callerRateLimit, limitFailedAuth } from './limits/rate.js';
import { defaultLimits } from './limits/settings.js';
import { healthRoutes } from './routes/health.js';
import { meRoutes } from './routes/me.js';
import { idleRoutes } from './routes/idle.js';
import { preemptionRoutes } from './routes/preemption.js';
import { catalogRoutes } from './routes/catalog.js';
import { instanceRoutes } from './routes/instances.js';
import { bridgeRoutes } from './routes/bridge.js';
import { usageRoutes } from './routes/usage.js';
import { billingRoutes } from './routes/billing.js';
import { forgetOnWrite } from './routes/read-cache.js';
import { budgetRoutes } from './routes/budget.js';
import { estimateRoutes } from './routes/estimate.js';
import { adminRoutes } from './routes/admin.js';
import { creditAdminRoutes, placementRoutes } from './routes/credits.js';
import { gpuWasteAdminRoutes } from './routes/gpu-waste.js';
import { notificationConfirmRoutes, notificationRoutes } from './routes/notifications.js';
import { auditRoutes } from './routes/audit.js';
import { agentRoutes } from './routes/agent.js';
import { bootstrapRoutes } from './routes/bootstrap.js';
import { oauthRoutes, sessionRoutes } from './routes/session.js';
import { AdminSessions } from './session/sessions.js';
import { declareSharedRefusals } from './routes/common.js';
import { measured, timingEnabled } from './timing.js';
import { PlanCache } from './metering/plan-cache.js';
import type { Logger } from './logger.js';
import { createMetrics } from './metrics.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** the admin routes that change plans or their assignments (routes/admin.ts) */
const PLAN_PATHS = /\/api\/v1\/admin\/(plans|plan-assignments)(\/|$)/;

export function createApp(deps: AppDeps) {
  const base = deps.prefix.replace(/\/$/, '');
  const limits = deps.limits ?? defaultLimits;
  const plans =
    deps.plans ??
    new PlanCache(
      deps.database.db,
      deps.config.NGSCI_DEFAULT_PLAN,
      deps.config.NGSCI_METER_INTERVAL * 1000,
    );
  const app = newRouter();

  const debug = deps.logger.isLevelEnabled('debug');
  const request = async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 64) ?? randomUUID();
    c.set('requestId', requestId);
    c.set('log', lazyChild(deps.logger, { requestId }));
    c.header('x-request-id', requestId);
    const started = performance.now();
    await next();
    if (debug) {
      const ms = Math.round(performance.now() - started);
      c.get('log').debug(
        { method: c.req.method, path: c.req.path, status: c.res.status, ms },
        'request',
      );
    }
  };
  app.use('*', (c, next) => {
    if (!timingEnabled()) return request(c, next);
    // NGSCI_SERVER_TIMING: the phases of this request in a Server-Timing header (timing.ts)
    return measured(async (t) => {
      const json = c.json.bind(c);
      c.json = ((...args: Parameters<typeof json>) => {
        const t0 = performance.now();
        try {
          return json(...args);
        } finally {
          t.add('serialize', performance.now() - t0);
        }
      }) as typeof c.json;
      await request(c, next);
      try {
        c.res.headers.set('server-timing', t.header());
      } catch {
        // an answer whose headers cannot change goes without
      }
    });
  });

  // before anything reads a body or asks the hub about a token (limits/body.ts)
  const largerBodies = new Map([
    [`${base}/api/v1/agent/audit`, limits.NGSCI_AUDIT_BODY_LIMIT],
    // what a spot notice's save kept: up to 200 notebooks of 200 variables' names
    [`${base}/api/v1/agent/spot/variables`, limits.NGSCI_AUDIT_BODY_LIMIT],
    [`${base}/api/v1/bridge/start`, limits.NGSCI_BRIDGE_BODY_LIMIT],
  ]);
  app.use(
    '*',
    requestBodyLimit((path) => largerBodies.get(path) ?? limits.NGSCI_BODY_LIMIT),
  );

  // Prometheus: request rate and latency per route, and GET /metrics (metrics.ts)
  const metrics = createMetrics(deps);
  app.use('*', metrics.record);
  app.route('/', metrics.routes);

  app.onError((err, c) => errorResponse(err, c));
  app.notFound((c) =>
    errorResponse(new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`), c),
  );

  const api = newRouter();
  api.route('/', healthRoutes(deps));
  // the read routes' cache (routes/read-cache.ts): a write answered here is read back at once
  const reads = { plans, cache: deps.readCache };
  if (deps.readCache) api.use('/api/v1/*', forgetOnWrite(deps.readCache));
  // the admin sign-in: browser pages under the prefix, and a cookie session (routes/session.ts)
  const sessions = deps.sessions ?? new AdminSessions({ config: deps.config });
  api.route('/', oauthRoutes(deps, sessions));
  api.route('/api/v1', sessionRoutes(deps, sessions));
  api.use('/api/v1/bridge/*', bridgeAuth(deps.bridgeSecret));
  api.route('/api/v1/bridge', bridgeRoutes(deps));
  // cloud machines at boot: a single-use bootstrap token, no hub token (routes/bootstrap.ts)
  api.route('/api/v1', bootstrapRoutes(deps));
  // the link mailed to confirm an email address: its single-use token is the proof
  api.route('/api/v1', notificationConfirmRoutes(deps));
  // instance agents: their own per-instance credential, nothing else (agent/credentials.ts)
  api.use('/api/v1/agent/*', deps.agents.middleware() as never);
  // hub tokens, with a bound on lookups that fail per client address (limits/rate.ts)
  const authenticate = limitFailedAuth(deps.auth.middleware(sessions) as never, {
    perMinute: limits.NGSCI_AUTH_FAILURES_PER_MINUTE,
    clientAddress: clientAddress(limits.NGSCI_TRUSTED_PROXIES),
    needsLookup: (c) => {
      const token = tokenFrom(c.req.header('authorization'));
      return token !== null && !deps.auth.knows(token);
    },
  });
  api.use('/api/v1/*', async (c, next) => {
    if (c.req.path.endsWith('/api/v1/openapi.json') || c.req.path.includes('/api/v1/bridge/'))
      return next();
    if (c.req.path.includes('/api/v1/agent/')) return next();
    if (c.req.path.endsWith('/api/v1/bootstrap')) return next();
    if (c.req.path.endsWith('/api/v1/notifications/confirm')) return next();
    if (/\/api\/v1\/session(\/logout)?$/.test(c.req.path)) return next();
    return authenticate(c as unknown as Context, next);
  });
  // changes per authenticated user or agent; launches and resizes have a tighter budget
  api.use(
    '/api/v1/*',
    callerRateLimit({
      perMinute: limits.NGSCI_WRITES_PER_MINUTE,
      what: 'changes',
      counts: (c) => WRITE_METHODS.has(c.req.method),
    }),
  );
  api.use(
    '/api/v1/*',
    callerRateLimit({
      perMinute: limits.NGSCI_LAUNCHES_PER_MINUTE,
      what: 'launches and resizes',
      counts: (c) =>
        c.req.method === 'POST' &&
        (c.req.path === `${base}/api/v1/instances` ||
          (c.req.path.startsWith(`${base}/api/v1/instances/`) && c.req.path.endsWith('/resize'))),
    }),
  );
  api.route('/api/v1', meRoutes(deps, plans));
  api.route('/api/v1', idleRoutes(deps));
  api.route('/api/v1', preemptionRoutes(deps));
  api.route('/api/v1', catalogRoutes(deps));
  api.route('/api/v1', instanceRoutes(deps, reads));
  api.route('/api/v1', notificationRoutes(deps));
  api.route('/api/v1', auditRoutes(deps));
  api.route('/api/v1', agentRoutes(deps));
  api.route('/api/v1', usageRoutes(deps, reads));
  api.route('/api/v1', billingRoutes(deps, reads));
  api.route('/api/v1', budgetRoutes(deps, plans, deps.readCache));
  api.route('/api/v1', estimateRoutes(deps));
  api.route('/api/v1', placementRoutes(deps));
  // a change of the plans or their assignments: every replica's copy is dropped (plan-cache.ts)
  api.use('/api/v1/admin/*', async (c, next) => {
    await next();
    // the announcement is best effort: other replicas re-read within the meter interval anyway
    if (WRITE_METHODS.has(c.req.method) && PLAN_PATHS.test(c.req.path))
      await plans.changed().catch(() => undefined);
  });
  api.route('/api/v1/admin', adminRoutes(deps));
  api.route('/api/v1/admin', creditAdminRoutes(deps));
  api.route('/api/v1/admin', gpuWasteAdminRoutes(deps));

  // the refusals of the shared middleware above, in every route's declared responses
  declareSharedRefusals(api.openAPIRegistry);
  api.doc31('/api/v1/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'ngsci hub-service',
      version: deps.version,
      description:
        'Cloud GPU instances for JupyterHub users: launch, resize, stop, usage and budgets.',
    },
    servers: [{ url: base }],
    security: [{ hubToken: [] }],
  });
  api.openAPIRegistry.registerComponent('securitySchemes', 'hubToken', {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description: 'a JupyterHub token: "token <t>" or "Bearer <t>"',
  });

  app.route(base || '/', api);
  return app;
}

/**
 * A request's logger: `logger.child(bindings)`, made when something first logs with it (most
 * requests log nothing, and making a child costs more than the rest of answering GET /me).
 */
function lazyChild(logger: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | null = null;
  return new Proxy({} as Logger, {
    get(_, key) {
      child ??= logger.child(bindings);
      const value = Reflect.get(child, key, child) as unknown;
      return typeof value === 'function' ? value.bind(child) : value;
    },
  });
}

function errorResponse(err: unknown, c: Context<AppEnv>) {
  const requestId = c.get('requestId') ?? 'unknown';
  if (err instanceof ZodError) {
    const details = err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const summary = details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; ');
    return c.json(
      { code: 'validation_failed', message: `invalid request: ${summary}`, requestId, details },
      400,
    );
  }
  if (err instanceof ApiError) {
    if (err.status >= 500)
      c.get('log')?.warn({ code: err.code, msg: err.message }, 'request failed');
    return c.json({ code: err.code, message: err.message, requestId }, err.status);
  }
  if (err instanceof HTTPException && err.status === 413) {
    // a body over its route's limit (limits/body.ts), refused before it was read
    return c.json({ code: 'payload_too_large', message: err.message, requestId }, 413);
  }
  if (err instanceof HTTPException && err.status < 500) {
    // hono's own refusals: a malformed JSON body, a wrong content type
    return c.json({ code: 'bad_request', message: err.message || 'bad request', requestId }, 400);
  }
  if (err instanceof SyntaxError) {
    return c.json({ code: 'bad_request', message: 'the body is not valid JSON', requestId }, 400);
  }
  const unavailable = databaseApiError(err);
  if (unavailable) {
    // the database is restarting, unreachable or out of disk: a 503 the caller can act on
    c.get('log')?.error({ err, code: unavailable.code }, 'database unavailable');
    c.header('retry-after', '5');
    return c.json({ code: unavailable.code, message: unavailable.message, requestId }, 503);
  }
  c.get('log')?.error({ err }, 'unhandled error');
  return c.json(
    {
      code: 'internal',
      message: 'internal error; the request id is in the service log',
      requestId,
    },
    500,
  );
}
