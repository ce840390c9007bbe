/**
 * The authorization matrix: every route of the service, asked by every kind of caller, answers
 * the status in MATRIX. The routes come from the OpenAPI document (and, for the few pages that
 * are not in it, from OUTSIDE_THE_DOCUMENT), so a route added without a row fails here, and so
 * does a row whose route is gone. Every request carries a valid body and targets user A's things
 * (A's server, A's instance, `?user=alice`), so a refusal is the refusal of the caller, not of
 * the input. docs/security.md shows the same table; the last test keeps the two equal.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Authenticator } from '../auth.js';
import { createApp } from '../app.js';
import { accessScopes } from '../config.js';
import { defaultLimits } from '../limits/settings.js';
import { AdminSessions, CSRF_HEADER } from '../session/sessions.js';
import { ACCESS, BRIDGE_SECRET, eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';

const ADMIN_SCOPE = 'custom:ngsci:admin';
const P = '/services/ngsci';

/** Who asks. "userB" asks for A's things; "adminServer" is an admin's own server's token. */
const CALLERS = [
  'anonymous',
  'userA',
  'userB',
  'serverA',
  'agentA',
  'bridge',
  'admin',
  'adminServer',
] as const;
type Caller = (typeof CALLERS)[number];

/** What the docs' table calls each caller. */
const CALLER_TITLES: Record<Caller, string> = {
  anonymous: 'anonymous',
  userA: 'user A',
  userB: 'user B on A',
  serverA: "A's server token",
  agentA: "A's agent",
  bridge: 'bridge secret',
  admin: 'admin sign-in',
  adminServer: "admin's server token",
};

/** Pages the service serves that the OpenAPI document does not describe (browser pages, itself). */
const OUTSIDE_THE_DOCUMENT = [
  'GET /oauth_login',
  'GET /oauth_callback',
  'GET /signed_in',
  'GET /api/v1/openapi.json',
  // Prometheus (metrics.ts); the same without the prefix, from this machine: metrics.test.ts
  'GET /metrics',
];

/** A request for one cell, built fresh for it (a stop needs a server of its own to stop). */
interface CellRequest {
  path: string;
  body?: unknown;
}
type Fixture = (f: Fixtures) => Promise<CellRequest> | CellRequest;

type Statuses = [number, number, number, number, number, number, number, number];

/**
 * The status each caller gets from each route (its method and path as the OpenAPI document
 * writes them), in the order of CALLERS. 401: who are you? 403: not you.
 */
// prettier-ignore
const MATRIX: Array<[route: string, expected: Statuses]> = [
  // route                                                anon userA userB srvA agent bridge admin admSrv
  ['GET /health',                                        [200, 200,  200,  200, 200,  200,   200,  200]],
  ['GET /oauth_login',                                   [302, 302,  302,  302, 302,  302,   302,  302]],
  ['GET /oauth_callback',                                [401, 401,  401,  401, 401,  401,   401,  401]],
  ['GET /signed_in',                                     [200, 200,  200,  200, 200,  200,   200,  200]],
  ['GET /api/v1/openapi.json',                           [200, 200,  200,  200, 200,  200,   200,  200]],
  ['GET /metrics',                                       [401, 403,  403,  403, 403,  403,   401,  403]],
  ['GET /api/v1/session',                                [401, 401,  401,  401, 401,  401,   200,  401]],
  ['GET /api/v1/bridge/catalog',                         [401, 401,  401,  401, 401,  200,   401,  401]],
  ['POST /api/v1/bridge/start',                          [401, 401,  401,  401, 401,  202,   401,  401]],
  ['POST /api/v1/bridge/stop',                           [401, 401,  401,  401, 401,  202,   401,  401]],
  ['GET /api/v1/bridge/status',                          [401, 401,  401,  401, 401,  200,   401,  401]],
  ['GET /api/v1/bridge/instances/{id}',                  [401, 401,  401,  401, 401,  200,   401,  401]],
  ['GET /api/v1/bridge/instances/{id}/events',           [401, 401,  401,  401, 401,  200,   401,  401]],
  ['POST /api/v1/bootstrap',                             [401, 401,  401,  401, 401,  401,   401,  401]],
  ['GET /api/v1/me',                                     [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/me/idle-timeout',                        [401, 200,  200,  200, 401,  401,   200,  200]],
  ['PUT /api/v1/me/idle-timeout',                        [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/me/preemption',                          [401, 200,  200,  200, 401,  401,   200,  200]],
  ['PUT /api/v1/me/preemption',                          [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/catalog',                                [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/instances',                              [401, 200,  403,  200, 401,  401,   200,  403]],
  ['POST /api/v1/instances',                             [401, 202,  403,  202, 401,  401,   202,  403]],
  ['GET /api/v1/instances/{server}',                     [401, 200,  403,  200, 401,  401,   200,  403]],
  ['POST /api/v1/instances/{server}/stop',               [401, 202,  403,  202, 401,  401,   202,  403]],
  ['POST /api/v1/instances/{server}/resize',             [401, 202,  403,  202, 401,  401,   202,  403]],
  ['GET /api/v1/instances/{server}/events',              [401, 200,  403,  200, 401,  401,   200,  403]],
  ['GET /api/v1/notifications',                          [401, 200,  200,  200, 401,  401,   200,  200]],
  ['POST /api/v1/notifications/ack',                     [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/notifications/preferences',              [401, 200,  200,  200, 401,  401,   200,  200]],
  ['PUT /api/v1/notifications/preferences',              [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/notifications/confirm',                  [404, 404,  404,  404, 404,  404,   404,  404]],
  ['POST /api/v1/notify',                                [401, 202,  202,  202, 401,  401,   202,  202]],
  ['POST /api/v1/agent/audit',                           [401, 403,  403,  403, 202,  403,   401,  403]],
  ['GET /api/v1/admin/audit',                            [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/audit/verify',                     [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/audit/rules',                      [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/admin/audit/rules',                     [401, 403,  403,  403, 401,  401,   201,  403]],
  ['DELETE /api/v1/admin/audit/rules/{id}',              [401, 403,  403,  403, 401,  401,   204,  403]],
  ['GET /api/v1/admin/security-events',                  [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/agent/gpu',                             [401, 403,  403,  403, 202,  403,   401,  403]],
  ['POST /api/v1/agent/kernels',                         [401, 403,  403,  403, 202,  403,   401,  403]],
  ['POST /api/v1/agent/boot',                            [401, 403,  403,  403, 202,  403,   401,  403]],
  ['GET /api/v1/instances/{server}/gpu',                 [401, 200,  403,  200, 401,  401,   200,  403]],
  ['POST /api/v1/agent/spot',                            [401, 403,  403,  403, 202,  403,   401,  403]],
  ['POST /api/v1/agent/spot/variables',                  [401, 403,  403,  403, 202,  403,   401,  403]],
  ['GET /api/v1/usage',                                  [401, 200,  403,  200, 401,  401,   200,  403]],
  ['GET /api/v1/billing/statements',                     [401, 200,  403,  200, 401,  401,   200,  403]],
  ['GET /api/v1/billing/statements/{month}',             [401, 200,  403,  200, 401,  401,   200,  403]],
  ['GET /api/v1/budget',                                 [401, 200,  403,  200, 401,  401,   200,  403]],
  ['POST /api/v1/instances/{server}/keep-running',       [401, 200,  403,  200, 401,  401,   200,  403]],
  ['POST /api/v1/estimate',                              [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/admin/quotas',                           [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/admin/quotas',                          [401, 403,  403,  403, 401,  401,   201,  403]],
  ['GET /api/v1/admin/quotas/{id}',                      [401, 403,  403,  403, 401,  401,   200,  403]],
  ['PUT /api/v1/admin/quotas/{id}',                      [401, 403,  403,  403, 401,  401,   200,  403]],
  ['DELETE /api/v1/admin/quotas/{id}',                   [401, 403,  403,  403, 401,  401,   204,  403]],
  ['GET /api/v1/admin/plans',                            [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/admin/plans',                           [401, 403,  403,  403, 401,  401,   201,  403]],
  ['PUT /api/v1/admin/plans/{id}',                       [401, 403,  403,  403, 401,  401,   200,  403]],
  ['DELETE /api/v1/admin/plans/{id}',                    [401, 403,  403,  403, 401,  401,   204,  403]],
  ['GET /api/v1/admin/plan-assignments',                 [401, 403,  403,  403, 401,  401,   200,  403]],
  ['PUT /api/v1/admin/plan-assignments',                 [401, 403,  403,  403, 401,  401,   200,  403]],
  ['DELETE /api/v1/admin/plan-assignments/{id}',         [401, 403,  403,  403, 401,  401,   204,  403]],
  ['GET /api/v1/admin/prices',                           [401, 403,  403,  403, 401,  401,   200,  403]],
  ['PUT /api/v1/admin/prices',                           [401, 403,  403,  403, 401,  401,   200,  403]],
  ['DELETE /api/v1/admin/prices/{size}/{cloud}',         [401, 403,  403,  403, 401,  401,   204,  403]],
  ['GET /api/v1/admin/users',                            [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/gpu-waste',                        [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/instances',                        [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/admin/instances/{user}/{server}/stop',  [401, 403,  403,  403, 401,  401,   202,  403]],
  ['GET /api/v1/admin/meter',                            [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/base-estimate',                    [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/placement',                              [401, 200,  200,  200, 401,  401,   200,  200]],
  ['GET /api/v1/admin/credits',                          [401, 403,  403,  403, 401,  401,   200,  403]],
  ['POST /api/v1/admin/credits',                         [401, 403,  403,  403, 401,  401,   201,  403]],
  ['DELETE /api/v1/admin/credits/{id}',                  [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/credits/statement/{month}',        [401, 403,  403,  403, 401,  401,   200,  403]],
  ['GET /api/v1/admin/credits/settings',                 [401, 403,  403,  403, 401,  401,   200,  403]],
  ['PUT /api/v1/admin/credits/settings',                 [401, 403,  403,  403, 401,  401,   200,  403]],
  // last: the admin's sign-out ends the session the admin column uses
  ['POST /api/v1/session/logout',                        [204, 204,  204,  204, 204,  204,   204,  204]],
];

/** The request of each row, built afresh for each cell and aimed at A's things. */
const REQUESTS: Record<string, Fixture> = {
  'GET /health': () => ({ path: '/health' }),
  'GET /oauth_login': () => ({ path: '/oauth_login' }),
  'GET /oauth_callback': () => ({ path: '/oauth_callback?code=x&state=y' }),
  'GET /signed_in': () => ({ path: '/signed_in' }),
  'GET /api/v1/openapi.json': () => ({ path: '/api/v1/openapi.json' }),
  'GET /metrics': () => ({ path: '/metrics' }),
  'GET /api/v1/session': () => ({ path: '/api/v1/session' }),
  'GET /api/v1/bridge/catalog': () => ({ path: '/api/v1/bridge/catalog' }),
  'POST /api/v1/bridge/start': (f) => ({
    path: '/api/v1/bridge/start',
    body: {
      user: 'alice',
      server: f.name(),
      options: { size: 'cpu-small' },
      env: {},
      baseUrl: '/user/alice/x/',
    },
  }),
  'POST /api/v1/bridge/stop': async (f) => ({
    path: '/api/v1/bridge/stop',
    body: { user: 'alice', server: await f.runningServer() },
  }),
  'GET /api/v1/bridge/status': () => ({ path: '/api/v1/bridge/status?user=alice&server=' }),
  'GET /api/v1/bridge/instances/{id}': (f) => ({ path: `/api/v1/bridge/instances/${f.instanceA}` }),
  'GET /api/v1/bridge/instances/{id}/events': (f) => ({
    path: `/api/v1/bridge/instances/${f.instanceA}/events`,
  }),
  'POST /api/v1/bootstrap': (f) => ({
    path: '/api/v1/bootstrap',
    body: { instanceId: f.instanceA, identity: { cloud: 'gcp', jwt: 'a.b.c' } },
  }),
  'GET /api/v1/me': () => ({ path: '/api/v1/me' }),
  'GET /api/v1/me/idle-timeout': () => ({ path: '/api/v1/me/idle-timeout' }),
  'PUT /api/v1/me/idle-timeout': () => ({
    path: '/api/v1/me/idle-timeout',
    body: { cpuSeconds: 600 },
  }),
  'GET /api/v1/me/preemption': () => ({ path: '/api/v1/me/preemption' }),
  'PUT /api/v1/me/preemption': () => ({
    path: '/api/v1/me/preemption',
    body: { onPreemption: 'stop' },
  }),
  'GET /api/v1/catalog': () => ({ path: '/api/v1/catalog' }),
  'GET /api/v1/instances': () => ({ path: '/api/v1/instances?user=alice' }),
  'POST /api/v1/instances': (f) => ({
    path: '/api/v1/instances?user=alice',
    body: { size: 'cpu-small', server: f.name() },
  }),
  'GET /api/v1/instances/{server}': () => ({ path: '/api/v1/instances/default?user=alice' }),
  'POST /api/v1/instances/{server}/stop': async (f) => ({
    path: `/api/v1/instances/${await f.runningServer()}/stop?user=alice`,
  }),
  'POST /api/v1/instances/{server}/resize': async (f) => ({
    path: `/api/v1/instances/${await f.runningServer()}/resize?user=alice`,
    body: { size: 'cpu-large' },
  }),
  'GET /api/v1/instances/{server}/events': () => ({
    path: '/api/v1/instances/default/events?user=alice',
  }),
  'GET /api/v1/notifications': () => ({ path: '/api/v1/notifications' }),
  'POST /api/v1/notifications/ack': () => ({
    path: '/api/v1/notifications/ack',
    body: { upTo: 1 },
  }),
  'GET /api/v1/notifications/preferences': () => ({ path: '/api/v1/notifications/preferences' }),
  'PUT /api/v1/notifications/preferences': () => ({
    path: '/api/v1/notifications/preferences',
    body: { channels: { budget: ['jupyterlab'] } },
  }),
  // no hub token needed: the token in the link is the proof; this one was never issued
  'GET /api/v1/notifications/confirm': () => ({
    path: `/api/v1/notifications/confirm?token=${'A'.repeat(43)}`,
  }),
  'POST /api/v1/notify': () => ({ path: '/api/v1/notify', body: { message: 'the cell finished' } }),
  'POST /api/v1/agent/audit': () => ({
    path: '/api/v1/agent/audit',
    body: { events: [{ path: '/data/a.csv', op: 'open', at: new Date().toISOString() }] },
  }),
  'GET /api/v1/admin/audit': () => ({ path: '/api/v1/admin/audit?user=alice' }),
  'GET /api/v1/admin/audit/verify': () => ({ path: '/api/v1/admin/audit/verify' }),
  'GET /api/v1/admin/audit/rules': () => ({ path: '/api/v1/admin/audit/rules' }),
  'POST /api/v1/admin/audit/rules': () => ({
    path: '/api/v1/admin/audit/rules',
    body: { kind: 'honeypot', path: '/data/canary.csv' },
  }),
  'DELETE /api/v1/admin/audit/rules/{id}': async (f) => ({
    path: `/api/v1/admin/audit/rules/${await f.auditRule()}`,
  }),
  'GET /api/v1/admin/security-events': () => ({ path: '/api/v1/admin/security-events' }),
  'POST /api/v1/agent/gpu': () => ({ path: '/api/v1/agent/gpu', body: { gpus: [] } }),
  'POST /api/v1/agent/kernels': () => ({
    path: '/api/v1/agent/kernels',
    body: { total: 1, busy: 0 },
  }),
  'POST /api/v1/agent/boot': () => ({ path: '/api/v1/agent/boot', body: { stage: 'ready' } }),
  'GET /api/v1/instances/{server}/gpu': () => ({
    path: '/api/v1/instances/default/gpu?user=alice',
  }),
  'POST /api/v1/agent/spot': () => ({
    path: '/api/v1/agent/spot',
    body: { cloud: 'aws', action: 'terminate', at: null },
  }),
  'POST /api/v1/agent/spot/variables': () => ({
    path: '/api/v1/agent/spot/variables',
    body: { notebooks: 0, kept: [], notKept: [] },
  }),
  'GET /api/v1/usage': () => ({ path: '/api/v1/usage?user=alice' }),
  'GET /api/v1/billing/statements': () => ({ path: '/api/v1/billing/statements?user=alice' }),
  'GET /api/v1/billing/statements/{month}': (f) => ({
    path: `/api/v1/billing/statements/${f.month}?user=alice`,
  }),
  'GET /api/v1/budget': () => ({ path: '/api/v1/budget?user=alice' }),
  'POST /api/v1/instances/{server}/keep-running': () => ({
    path: '/api/v1/instances/default/keep-running?user=alice',
  }),
  'POST /api/v1/estimate': () => ({
    path: '/api/v1/estimate',
    body: { instanceHours: [{ size: 'cpu-small', hoursPerMonth: 10 }] },
  }),
  'GET /api/v1/admin/quotas': () => ({ path: '/api/v1/admin/quotas' }),
  'POST /api/v1/admin/quotas': (f) => ({
    path: '/api/v1/admin/quotas',
    body: { subjectKind: 'user', subjectName: f.name(), maxConcurrent: 50 },
  }),
  'GET /api/v1/admin/quotas/{id}': async (f) => ({
    path: `/api/v1/admin/quotas/${await f.quota()}`,
  }),
  'PUT /api/v1/admin/quotas/{id}': async (f) => ({
    path: `/api/v1/admin/quotas/${await f.quota()}`,
    body: { subjectKind: 'user', subjectName: f.name(), maxConcurrent: 40 },
  }),
  'DELETE /api/v1/admin/quotas/{id}': async (f) => ({
    path: `/api/v1/admin/quotas/${await f.quota()}`,
  }),
  'GET /api/v1/admin/plans': () => ({ path: '/api/v1/admin/plans' }),
  'POST /api/v1/admin/plans': (f) => ({
    path: '/api/v1/admin/plans',
    body: { id: f.name(), label: 'Lab', multiplierPpm: 500_000 },
  }),
  'PUT /api/v1/admin/plans/{id}': async (f) => ({
    path: `/api/v1/admin/plans/${await f.plan()}`,
    body: { label: 'Lab', multiplierPpm: 400_000 },
  }),
  'DELETE /api/v1/admin/plans/{id}': async (f) => ({
    path: `/api/v1/admin/plans/${await f.plan()}`,
  }),
  'GET /api/v1/admin/plan-assignments': () => ({ path: '/api/v1/admin/plan-assignments' }),
  'PUT /api/v1/admin/plan-assignments': async (f) => ({
    path: '/api/v1/admin/plan-assignments',
    body: { subjectKind: 'user', subjectName: f.name(), planId: await f.plan() },
  }),
  'DELETE /api/v1/admin/plan-assignments/{id}': async (f) => ({
    path: `/api/v1/admin/plan-assignments/${await f.planAssignment()}`,
  }),
  'GET /api/v1/admin/prices': () => ({ path: '/api/v1/admin/prices' }),
  'PUT /api/v1/admin/prices': () => ({
    path: '/api/v1/admin/prices',
    body: { size: 'cpu-small', cloud: 'local', onDemandMicrosPerHour: 1000 },
  }),
  'DELETE /api/v1/admin/prices/{size}/{cloud}': async (f) => ({
    path: `/api/v1/admin/prices/${await f.priceOverride()}/local`,
  }),
  'GET /api/v1/admin/users': () => ({ path: '/api/v1/admin/users' }),
  'GET /api/v1/admin/gpu-waste': () => ({ path: '/api/v1/admin/gpu-waste' }),
  'GET /api/v1/admin/instances': () => ({ path: '/api/v1/admin/instances' }),
  'POST /api/v1/admin/instances/{user}/{server}/stop': async (f) => ({
    path: `/api/v1/admin/instances/alice/${await f.runningServer()}/stop`,
  }),
  'GET /api/v1/admin/meter': () => ({ path: '/api/v1/admin/meter' }),
  'GET /api/v1/admin/base-estimate': () => ({ path: '/api/v1/admin/base-estimate?cloud=aws' }),
  'GET /api/v1/placement': () => ({ path: '/api/v1/placement?size=cpu-small' }),
  'GET /api/v1/admin/credits': () => ({ path: '/api/v1/admin/credits' }),
  'POST /api/v1/admin/credits': () => ({
    path: '/api/v1/admin/credits',
    body: {
      cloud: 'aws',
      amountMicros: 1_000_000,
      startsOn: '2026-01-01',
      expiresOn: '2026-12-31',
    },
  }),
  'DELETE /api/v1/admin/credits/{id}': async (f) => ({
    path: `/api/v1/admin/credits/${await f.creditGrant()}`,
  }),
  'GET /api/v1/admin/credits/statement/{month}': (f) => ({
    path: `/api/v1/admin/credits/statement/${f.month}`,
  }),
  'GET /api/v1/admin/credits/settings': () => ({ path: '/api/v1/admin/credits/settings' }),
  'PUT /api/v1/admin/credits/settings': () => ({
    path: '/api/v1/admin/credits/settings',
    body: { lowerCharges: false },
  }),
  'POST /api/v1/session/logout': () => ({ path: '/api/v1/session/logout' }),
};

/** What the fixtures hand out: A's things, and fresh ones for requests that use theirs up. */
interface Fixtures {
  instanceA: string;
  month: string;
  /** a name nothing has used yet (servers, quota subjects, plans) */
  name(): string;
  /** a new server of A's, running */
  runningServer(): Promise<string>;
  quota(): Promise<number>;
  plan(): Promise<string>;
  planAssignment(): Promise<number>;
  priceOverride(): Promise<string>;
  auditRule(): Promise<number>;
  creditGrant(): Promise<number>;
}

let h: Harness;
let app: ReturnType<typeof createApp>;
let fixtures: Fixtures;
const headersOf = {} as Record<Caller, Record<string, string>>;
const prov = new ScriptedProvisioner();

before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]) });
  const adminToken = h.token({ name: 'root', admin: true, scopes: [ACCESS, ADMIN_SCOPE] });
  // the admin signs in through the hub's OAuth, as the admin panel's button does
  const hubTokenEndpoint: typeof fetch = async () =>
    Response.json({ access_token: adminToken, token_type: 'Bearer' });
  app = createApp({
    ...h.services,
    auth: new Authenticator({
      hub: h.services.hub,
      accessScopes: accessScopes(h.config),
      adminScope: ADMIN_SCOPE,
      cacheSeconds: 60,
      bridgeSecret: BRIDGE_SECRET,
    }),
    bridgeSecret: BRIDGE_SECRET,
    prefix: h.config.JUPYTERHUB_SERVICE_PREFIX,
    version: 'test',
    sessions: new AdminSessions({ config: h.config, fetch: hubTokenEndpoint }),
    // a matrix is about who may, not how often: rate limits have their own tests (limits/)
    limits: {
      ...defaultLimits,
      NGSCI_WRITES_PER_MINUTE: 100_000,
      NGSCI_LAUNCHES_PER_MINUTE: 100_000,
      NGSCI_AUTH_FAILURES_PER_MINUTE: 100_000,
    },
  });

  const userA = h.token({ name: 'alice', scopes: [ACCESS] });
  const adminAs = (path: string, method = 'GET', body?: unknown) =>
    call({ authorization: `token ${adminToken}` }, method, path, body);

  // A's default server, running, and the agent credential its start issued
  const launched = await call({ authorization: `token ${userA}` }, 'POST', '/api/v1/instances', {
    size: 'cpu-small',
  });
  assert.equal(launched.status, 202, `A's launch: ${await launched.clone().text()}`);
  const running = await waitRunning(userA, 'default');
  const agentToken = prov.started.at(-1)?.agentToken;
  assert.ok(agentToken, 'the start issued an agent credential');

  const cookie = await signIn();
  const session = await call({ cookie }, 'GET', '/api/v1/session');
  const csrf = ((await session.json()) as { csrf: string }).csrf;
  assert.ok(csrf, 'GET /session gives the CSRF value');

  Object.assign(headersOf, {
    anonymous: {},
    userA: { authorization: `token ${userA}` },
    userB: { authorization: `token ${h.token({ name: 'bob', scopes: [ACCESS] })}` },
    // a server's token: the access scope and its own server, never the admin scope
    serverA: {
      authorization: `token ${h.token({ name: 'alice', scopes: [ACCESS, 'access:servers!server=alice/', 'users:activity!user=alice'] })}`,
    },
    agentA: { authorization: `Bearer ${agentToken}` },
    bridge: { authorization: `Bearer ${BRIDGE_SECRET}` },
    admin: { cookie, [CSRF_HEADER]: csrf },
    adminServer: {
      authorization: `token ${h.token({ name: 'root', admin: true, scopes: [ACCESS, 'access:servers!server=root/', 'users:activity!user=root'] })}`,
    },
  } satisfies Record<Caller, Record<string, string>>);

  let n = 0;
  const created = async (res: Response, field: string) => {
    assert.ok(res.ok, `fixture: ${res.status} ${await res.clone().text()}`);
    return ((await res.json()) as Record<string, unknown>)[field];
  };
  fixtures = {
    instanceA: String(running.id),
    month: new Date().toISOString().slice(0, 7),
    name: () => `m${++n}`,
    async runningServer() {
      const server = fixtures.name();
      const res = await call({ authorization: `token ${userA}` }, 'POST', '/api/v1/instances', {
        size: 'cpu-small',
        server,
      });
      assert.equal(res.status, 202, `fixture launch: ${await res.text()}`);
      await waitRunning(userA, server);
      return server;
    },
    async quota() {
      const body = { subjectKind: 'user', subjectName: fixtures.name(), maxConcurrent: 50 };
      return Number(await created(await adminAs('/api/v1/admin/quotas', 'POST', body), 'id'));
    },
    async plan() {
      const id = fixtures.name();
      await created(
        await adminAs('/api/v1/admin/plans', 'POST', { id, label: 'Lab', multiplierPpm: 1 }),
        'id',
      );
      return id;
    },
    async planAssignment() {
      const body = {
        subjectKind: 'user',
        subjectName: fixtures.name(),
        planId: await fixtures.plan(),
      };
      return Number(
        await created(await adminAs('/api/v1/admin/plan-assignments', 'PUT', body), 'id'),
      );
    },
    async priceOverride() {
      const body = { size: 'gpu-t4', cloud: 'local', onDemandMicrosPerHour: 2000 };
      await created(await adminAs('/api/v1/admin/prices', 'PUT', body), 'size');
      return 'gpu-t4';
    },
    async auditRule() {
      const body = { kind: 'honeypot', path: `/data/${fixtures.name()}.csv` };
      return Number(await created(await adminAs('/api/v1/admin/audit/rules', 'POST', body), 'id'));
    },
    async creditGrant() {
      const body = {
        cloud: 'gcp',
        amountMicros: 5,
        startsOn: '2026-01-01',
        expiresOn: '2026-01-31',
      };
      return Number(await created(await adminAs('/api/v1/admin/credits', 'POST', body), 'id'));
    },
  };
});
after(async () => h?.close());

async function call(
  headers: Record<string, string>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return app.request(`${P}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function waitRunning(token: string, server: string) {
  return eventually(
    async () => {
      const res = await call(
        { authorization: `token ${token}` },
        'GET',
        `/api/v1/instances/${server}`,
      );
      const r = (await res.json()) as { state?: string; id?: string };
      return r.state === 'running' ? r : null;
    },
    `${server} running`,
    30_000,
  );
}

/** oauth_login → the hub → oauth_callback: the session cookie, as "name=value". */
async function signIn(): Promise<string> {
  const login = await app.request(`${P}/oauth_login`);
  const state = login.headers.getSetCookie().find((c) => c.startsWith('ngsci-oauth-state='))!;
  const to = new URL(login.headers.get('location')!, 'http://hub.test');
  const callback = await app.request(
    `${P}/oauth_callback?code=good&state=${encodeURIComponent(to.searchParams.get('state')!)}`,
    { headers: { cookie: state.split(';')[0]! } },
  );
  const session = callback.headers.getSetCookie().find((c) => c.startsWith('ngsci-session='));
  assert.ok(session, `signed in: ${callback.status}`);
  return session.split(';')[0]!;
}

/** "GET /api/v1/instances/{server}": the document's paths, and hono's, in one spelling. */
const routeKey = (method: string, path: string) =>
  `${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`;

test('every route in the OpenAPI document, and every other route the app serves, has a row', async () => {
  const doc = (await (await call({}, 'GET', '/api/v1/openapi.json')).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => routeKey(m, path)),
  );
  const known = new Set([...documented, ...OUTSIDE_THE_DOCUMENT]);
  const rows = new Set(MATRIX.map(([route]) => route));
  assert.equal(rows.size, MATRIX.length, 'a route has two rows');
  assert.deepEqual(Object.keys(REQUESTS).sort(), [...rows].sort(), 'a request for every row');
  assert.deepEqual(
    [...known].filter((r) => !rows.has(r)),
    [],
    'routes without a row',
  );
  assert.deepEqual(
    [...rows].filter((r) => !known.has(r)),
    [],
    'rows for routes that are gone',
  );
  // a route registered without its OpenAPI shape would escape the document: the app's own list
  const served = h.app.routes
    // under the prefix: what the hub's proxy routes here (GET /metrics outside it: metrics.test.ts)
    .filter((r) => r.method !== 'ALL' && r.path.startsWith(P))
    .map((r) => routeKey(r.method, r.path.slice(P.length)));
  assert.deepEqual(
    [...new Set(served)].filter((r) => !known.has(r)),
    [],
    'routes the app serves that are neither documented nor in OUTSIDE_THE_DOCUMENT',
  );
});

test('each caller gets the status in the matrix, on every route', async () => {
  const wrong: string[] = [];
  for (const [route, expected] of MATRIX) {
    const fixture = REQUESTS[route]!;
    const method = route.split(' ')[0]!;
    for (const [i, caller] of CALLERS.entries()) {
      const req = await Promise.resolve()
        .then(() => fixture(fixtures))
        .catch((e: Error) => e);
      if (req instanceof Error) {
        wrong.push(`${route} as ${caller}: the fixture failed: ${req.message}`);
        continue;
      }
      const res = await call(headersOf[caller], method, req.path, req.body);
      // event streams never end: the status is all this needs
      await res.body?.cancel();
      if (res.status !== expected[i])
        wrong.push(`${route} as ${caller}: ${res.status}, expected ${expected[i]}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the bridge secret and agent credentials sent to a user route are not passed on to the hub', () => {
  const agent = headersOf.agentA.authorization!.replace(/^Bearer /, '');
  const leaked = h.hubTokenLookups.filter((t) => t === BRIDGE_SECRET || t === agent);
  assert.equal(
    leaked.length,
    0,
    `${leaked.length} lookups of the bridge secret or an agent credential`,
  );
});

test('docs/security.md shows this matrix', () => {
  const docs = readFileSync(new URL('../../../docs/security.md', import.meta.url), 'utf8');
  const table = [
    `| route | ${CALLERS.map((c) => CALLER_TITLES[c]).join(' | ')} |`,
    `|---|${CALLERS.map(() => '---').join('|')}|`,
    ...MATRIX.map(([route, statuses]) => `| \`${route}\` | ${statuses.join(' | ')} |`),
  ].join('\n');
  const shown = /<!-- authz-matrix -->\n([\s\S]*?)\n<!-- \/authz-matrix -->/.exec(docs)?.[1];
  assert.equal(shown, table, 'docs/security.md between <!-- authz-matrix --> markers');
});
