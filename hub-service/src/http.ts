/**
 * The HTTP plumbing every route file shares: the router factory, the request context's variables
 * and the dependencies routes are built from. It sits below the routes and app.ts, so route files
 * import it and app.ts imports the routes, and nothing imports upward.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Logger } from './logger.js';
import type { Authenticator, AuthUser } from './auth.js';
import type { Services } from './services.js';
import type { AgentIdentity } from './agent/credentials.js';
import type { AdminSessions } from './session/sessions.js';
import type { LimitSettings } from './limits/settings.js';

export type AppEnv = {
  Variables: { user: AuthUser; agent: AgentIdentity; requestId: string; log: Logger };
};

export interface AppDeps extends Services {
  auth: Authenticator;
  bridgeSecret: string;
  /** the service's path prefix, e.g. /services/ngsci/ */
  prefix: string;
  version: string;
  /** the admin sign-in's cookies and OAuth client (tests pass one with a fake hub and clock) */
  sessions?: AdminSessions;
  /** body sizes and rate limits (limits/settings.ts); the defaults when not given */
  limits?: LimitSettings;
}

/** A router whose zod validation failures throw, so app.ts's one onError answers them (400). */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error;
    },
  });
}
