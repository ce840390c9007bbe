/**
 * The HTTP plumbing every route file shares: the router factory, the request context's variables
 * and the dependencies routes are built from. It sits below the routes and app.ts, so route files
 * import it and app.ts imports the routes, and nothing imports upward.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';
import type { Authenticator, AuthUser } from './auth.js';
import type { Services } from './services.js';
import type { AgentIdentity } from './agent/credentials.js';
import type { AdminSessions } from './session/sessions.js';
import type { LimitSettings } from './limits/settings.js';
import type { ReadCache } from './routes/read-cache.js';
import type { PlanCache } from './metering/plan-cache.js';

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
  /** the plans in memory (metering/plan-cache.ts); createApp makes one when not given */
  plans?: PlanCache;
  /** the read routes' cache (routes/read-cache.ts); none when not given: every read asks */
  readCache?: ReadCache;
}

/**
 * A router whose zod validation failures throw, so app.ts's one onError answers them (400). Text
 * with a NUL character is refused the same way: Postgres cannot store it in a text column, so it
 * would otherwise fail the query (a 500; found by API fuzzing).
 */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error;
      const at = nulAt(result.data);
      if (at !== null)
        throw new ApiError(
          400,
          'validation_failed',
          `invalid request: ${at ? `${at}: ` : ''}text may not contain the NUL character (\\u0000)`,
        );
    },
  });
}

/** Where in a validated input a string holds U+0000 (a dotted path, '' for the top), or null. */
export function nulAt(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\0') ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = nulAt(value[i], path ? `${path}.${i}` : String(i));
      if (at !== null) return at;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const at = k.includes('\0')
        ? path
          ? `${path}.${k}`
          : k
        : nulAt(v, path ? `${path}.${k}` : k);
      if (at !== null) return at;
    }
  }
  return null;
}
