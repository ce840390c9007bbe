/**
 * Rate limits, on hono-rate-limiter's middleware and its in-memory store (one window of a minute,
 * kept per replica). Two kinds:
 * - changes per caller: the authenticated user or instance agent (never an address, so users
 *   behind one NAT do not share a budget), for every write and, tighter, for launches and resizes;
 * - failed token lookups per client address, so a burst of made-up tokens costs the hub a bounded
 *   number of lookups instead of one each.
 * A refusal is 429 `rate_limited` in the service's error shape, with `Retry-After` in seconds.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { MemoryStore, rateLimiter, type RateLimitInfo } from 'hono-rate-limiter';
import { ApiError } from '../errors.js';
import type { AppEnv } from '../http.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** set by hono-rate-limiter: the caller's use of the limit that counted this request */
    rateLimit: RateLimitInfo;
  }
}

const WINDOW_MS = 60_000;

/** The seconds until the caller's window ends, at least one. */
function retryAfter(c: Context): number {
  const reset = c.get('rateLimit')?.resetTime?.getTime();
  return reset ? Math.max(1, Math.ceil((reset - Date.now()) / 1000)) : WINDOW_MS / 1000;
}

function refuse(message: (c: Context, seconds: number) => string) {
  return (c: Context) => {
    const seconds = retryAfter(c);
    c.header('retry-after', String(seconds));
    throw new ApiError(429, 'rate_limited', message(c, seconds));
  };
}

/** The authenticated caller a budget belongs to; null where nobody is (bridge, bootstrap). */
export function callerOf(c: Context<AppEnv>): string | null {
  const agent = c.get('agent');
  if (agent) return `agent:${agent.instanceId}`;
  const user = c.get('user');
  return user ? `user:${user.name}` : null;
}

const callerName = (caller: string) =>
  caller.startsWith('agent:') ? `the agent of instance ${caller.slice(6)}` : caller.slice(5);

/**
 * At most `perMinute` requests a minute per authenticated caller among those `counts` selects
 * (0: no limit). Mounted after authentication, so the caller is known.
 */
export function callerRateLimit(opts: {
  perMinute: number;
  /** what is counted, in the refusal: "changes", "launches and resizes" */
  what: string;
  counts: (c: Context<AppEnv>) => boolean;
}): MiddlewareHandler<AppEnv> {
  if (!opts.perMinute) return (_c, next) => next();
  return rateLimiter<AppEnv>({
    windowMs: WINDOW_MS,
    limit: opts.perMinute,
    standardHeaders: 'draft-6',
    skip: (c) => !opts.counts(c) || callerOf(c) === null,
    keyGenerator: (c) => callerOf(c)!,
    handler: refuse(
      (c, s) =>
        `too many ${opts.what} by ${callerName(callerOf(c as Context<AppEnv>)!)}: at most ${opts.perMinute} a minute; try again in ${s} s`,
    ),
  });
}

/**
 * Wraps the middleware that authenticates hub tokens: a client address may make at most
 * `perMinute` requests a minute that the hub refused (0: no limit); past that, requests that
 * would need a hub lookup are answered 429 without one. Lookups of one address run at most
 * `perMinute` minus its failures at a time, and the others wait for a slot instead of being
 * refused: a burst of made-up tokens costs the hub at most `perMinute` calls, while a classroom of
 * valid users behind one NAT signing in at once only waits its turn. Requests that need no lookup
 * (a token in the cache or being looked up already, a sign-in cookie) are never counted, held or
 * refused, so a user behind the same address as a guesser keeps working.
 */
export function limitFailedAuth(
  authenticate: MiddlewareHandler,
  opts: {
    perMinute: number;
    clientAddress: (c: Context) => string;
    /** whether answering this request may take a hub lookup */
    needsLookup: (c: Context) => boolean;
  },
): MiddlewareHandler {
  if (!opts.perMinute) return authenticate;
  // hono-rate-limiter's store keeps the failures per address and their one-minute window
  const failures = new MemoryStore();
  failures.init({ windowMs: WINDOW_MS } as Parameters<MemoryStore['init']>[0]);
  const inFlight = new Map<string, number>();
  const waiting = new Map<string, Array<() => void>>();
  const failed = (address: string): { hits: number; seconds: number } => {
    const info = failures.get(address);
    const left = info?.resetTime ? info.resetTime.getTime() - Date.now() : 0;
    return left > 0
      ? { hits: info!.totalHits, seconds: Math.max(1, Math.ceil(left / 1000)) }
      : { hits: 0, seconds: WINDOW_MS / 1000 };
  };
  const release = (address: string) => {
    const n = (inFlight.get(address) ?? 1) - 1;
    if (n > 0) inFlight.set(address, n);
    else inFlight.delete(address);
    const woken = waiting.get(address) ?? [];
    waiting.delete(address);
    for (const wake of woken) wake();
  };
  return async (c, next) => {
    if (!opts.needsLookup(c)) return authenticate(c, next);
    const address = opts.clientAddress(c);
    for (;;) {
      const { hits, seconds } = failed(address);
      if (hits >= opts.perMinute) {
        c.header('retry-after', String(seconds));
        throw new ApiError(
          429,
          'rate_limited',
          `too many requests with tokens the hub does not accept from this address: try again in ${seconds} s`,
        );
      }
      if ((inFlight.get(address) ?? 0) < opts.perMinute - hits) break;
      await new Promise<void>((wake) => {
        const queue = waiting.get(address) ?? [];
        queue.push(wake);
        waiting.set(address, queue);
      });
    }
    inFlight.set(address, (inFlight.get(address) ?? 0) + 1);
    let through = false;
    try {
      // a refusal is thrown; an answer returned instead of calling next is kept
      const res: unknown = await authenticate(c, async () => {
        through = true;
      });
      if (res instanceof Response) c.res = res;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403))
        failures.increment(address);
      throw err;
    } finally {
      // the slot is held while the lookup runs, not while the route answers
      release(address);
    }
    if (through) await next();
  };
}
