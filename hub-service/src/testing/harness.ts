/**
 * Test harness: the real app over an in-memory PGlite, with a fake JupyterHub that answers the
 * token lookups and, like the real hub, calls the bridge when asked to start or stop a server.
 * Provisioners are whatever the test passes in.
 */
import { Authenticator } from '../auth.js';
import { createApp } from '../app.js';
import { loadConfig, accessScopes, type Config } from '../config.js';
import { openMemoryDatabase, seed, type Database } from '../db/client.js';
import { instances } from '../db/schema.js';
import type { InstanceRow } from '../instances/store.js';
import { HubClient } from '../hub.js';
import { createLogger } from '../logger.js';
import type { Provisioner } from '../provisioners/types.js';
import type { ReadCache } from '../routes/read-cache.js';
import { createServices, type Services } from '../services.js';

export const BRIDGE_SECRET = 'bridge-secret-for-tests-0123456789';
export const ACCESS = 'access:services!service=ngsci';

export interface FakeUser {
  name: string;
  admin?: boolean;
  groups?: string[];
  scopes?: string[];
}

export interface Harness {
  app: ReturnType<typeof createApp>;
  services: Services;
  database: Database;
  config: Config;
  hubCalls: string[];
  /** every token the fake hub was asked to resolve (GET /user), in order */
  hubTokenLookups: string[];
  /** registers a token for a user and returns it */
  token(user: FakeUser): string;
  request(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  bridge(path: string, init?: RequestInit): Promise<Response>;
  /** a local instance of `user` that became ready at `readyAt` (default now) at `rate` µ$/h */
  runningInstance(
    user: string,
    opts?: { size?: string; rate?: number; readyAt?: Date; server?: string },
  ): Promise<InstanceRow>;
  /** a running local instance of `user` with an issued agent credential, as the worker leaves it */
  runningAgent(user: string, server?: string): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

let sharedDb: Promise<Database> | null = null;

export async function harness(
  opts: {
    provisioners?: Map<string, Provisioner>;
    env?: Record<string, string>;
    logTo?: NodeJS.WritableStream;
    /** a database of the test's own (e.g. a private Postgres); default the file's shared PGlite */
    database?: Database;
    /** the read routes' cache (routes/read-cache.ts); default none */
    readCache?: ReadCache;
  } = {},
): Promise<Harness> {
  const config = loadConfig({
    JUPYTERHUB_API_TOKEN: 'service-token-0123456789',
    NGSCI_BRIDGE_SECRET: BRIDGE_SECRET,
    NGSCI_SECRET_KEY: 'secret-key-for-tests-0123456789abcdef',
    NGSCI_LOG_LEVEL: 'silent',
    NGSCI_JOB_HEARTBEAT: '0.2',
    // many users launch local instances here; the one-user limit has its own tests (local-policy)
    NGSCI_LOCAL_SHARED_DEMO: 'true',
    // unit tests launch GPU sizes on the fake local provisioner
    NGSCI_LOCAL_SIMULATE_GPUS: 'true',
    ...opts.env,
  });
  if (!opts.database)
    sharedDb ??= (async () => {
      const db = await openMemoryDatabase();
      await db.migrate();
      await seed(db.db);
      return db;
    })();
  const database = opts.database ?? (await sharedDb!);
  const tokens = new Map<string, FakeUser>();
  const hubCalls: string[] = [];
  const hubTokenLookups: string[] = [];
  const prefix = config.JUPYTERHUB_SERVICE_PREFIX.replace(/\/$/, '');
  // eslint-disable-next-line prefer-const -- the fake hub closes over it before it exists
  let app!: ReturnType<typeof createApp>;

  const bridge = async (path: string, init: RequestInit = {}) =>
    app.request(`${prefix}/api/v1/bridge${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${BRIDGE_SECRET}`,
        'content-type': 'application/json',
        ...(init.headers as object),
      },
    });

  const fakeHubFetch: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const path = url.pathname.replace(/^\/hub\/api/, '');
    const method = init?.method ?? 'GET';
    hubCalls.push(`${method} ${path}`);
    const auth = new Headers(init?.headers).get('authorization')?.replace(/^token /, '') ?? '';
    if (path === '/user') {
      hubTokenLookups.push(auth);
      const u = tokens.get(auth);
      if (!u) return Response.json({ status: 403, message: 'no' }, { status: 403 });
      return Response.json({
        kind: 'user',
        name: u.name,
        admin: !!u.admin,
        groups: u.groups ?? [],
        scopes: u.scopes ?? [ACCESS],
      });
    }
    const m = /^\/users\/([^/]+)\/(server|servers\/([^/]+))$/.exec(path);
    if (m) {
      const user = decodeURIComponent(m[1]!);
      const server = m[3] ? decodeURIComponent(m[3]) : '';
      if (server === 'bad')
        return Response.json(
          { status: 400, message: "Invalid server_name 'bad'" },
          { status: 400 },
        );
      if (method === 'POST') {
        const res = await bridge('/start', {
          method: 'POST',
          body: JSON.stringify({
            user,
            server,
            options: JSON.parse(String(init?.body ?? '{}')),
            env: { JUPYTERHUB_API_TOKEN: 'server-token-secret' },
            baseUrl: `/user/${user}/${server ? `${server}/` : ''}`,
          }),
        });
        return res.ok
          ? new Response(null, { status: 202 })
          : Response.json({ status: 500, message: await res.text() }, { status: 500 });
      }
      if (method === 'DELETE') {
        await bridge('/stop', { method: 'POST', body: JSON.stringify({ user, server }) });
        return new Response(null, { status: 202 });
      }
    }
    const um = /^\/users\/([^/]+)$/.exec(path);
    if (um) {
      // the hub knows a user's groups: those of the tokens the test registered for that user
      const name = decodeURIComponent(um[1]!);
      const groups = [...tokens.values()].find((u) => u.name === name)?.groups ?? [];
      return Response.json({ name, admin: false, groups, servers: {} });
    }
    return Response.json({ status: 404, message: 'not found' }, { status: 404 });
  };

  const hub = new HubClient({
    apiUrl: config.JUPYTERHUB_API_URL,
    token: config.JUPYTERHUB_API_TOKEN,
    fetch: fakeHubFetch,
  });
  const logger = opts.logTo ? createLogger('trace', opts.logTo) : createLogger('silent');
  const services = createServices({
    config,
    database,
    hub,
    logger,
    provisioners: opts.provisioners ?? new Map(),
  });
  const auth = new Authenticator({
    hub,
    accessScopes: accessScopes(config),
    adminScope: config.NGSCI_ADMIN_SCOPE,
    cacheSeconds: 30,
    negativeCacheSeconds: config.NGSCI_AUTH_NEGATIVE_CACHE_SECONDS,
    cacheEntries: config.NGSCI_AUTH_CACHE_ENTRIES,
    bridgeSecret: BRIDGE_SECRET,
  });
  app = createApp({
    ...services,
    auth,
    bridgeSecret: BRIDGE_SECRET,
    prefix: config.JUPYTERHUB_SERVICE_PREFIX,
    version: 'test',
    limits: config,
    ...(opts.readCache ? { readCache: opts.readCache } : {}),
  });
  await services.worker.start();

  return {
    app,
    services,
    database,
    config,
    hubCalls,
    hubTokenLookups,
    token(user) {
      const t = `tok-${user.name}-${Math.random().toString(36).slice(2)}`;
      tokens.set(t, user);
      return t;
    },
    request(path, init = {}) {
      const { token, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set('authorization', `token ${token}`);
      if (rest.body) headers.set('content-type', 'application/json');
      return Promise.resolve(app.request(`${prefix}${path}`, { ...rest, headers }));
    },
    bridge,
    async runningInstance(user, opts = {}) {
      const readyAt = opts.readyAt ?? new Date();
      const row = await services.store.create(
        {
          userName: user,
          serverName: opts.server ?? 'default',
          sizeId: opts.size ?? 'cpu-small',
          cloud: 'local',
          region: 'localhost',
          spot: false,
          state: 'requested',
          listRatePerHourMicros: opts.rate ?? 96_000,
          baseUrl: `/user/${user}/`,
          createdAt: readyAt,
        },
        'requested',
      );
      return (await services.store.transition(row!.id, 'running', 100, 'ready', {
        readyAt,
        targetUrl: `http://127.0.0.1:1/user/${user}/`,
      }))!;
    },
    async runningAgent(user, server = 'default') {
      const [row] = await database.db
        .insert(instances)
        .values({
          userName: user,
          serverName: server,
          sizeId: 'cpu-small',
          cloud: 'local',
          region: 'local',
          state: 'running',
          listRatePerHourMicros: 0,
          baseUrl: `/user/${user}/`,
        })
        .returning();
      return { id: row!.id, token: await services.agents.issue(row!.id) };
    },
    async close() {
      await services.worker.close();
    },
  };
}

export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false>,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
