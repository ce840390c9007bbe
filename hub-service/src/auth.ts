/**
 * Authentication: a request carries a JupyterHub token (`Authorization: token <t>` or
 * `Bearer <t>`), or, with no Authorization header at all, the admin sign-in's session cookie
 * (session/sessions.ts), which holds a hub token sealed by the service. Either way the hub
 * resolves the token; the answer is kept in a bounded LRU cache under a hash of the token (for at
 * most a minute; a refusal for a few seconds, so a burst of the same bad token asks the hub once),
 * and the token must hold one of the service's access scopes. Writes authenticated by the cookie
 * must also carry the session's CSRF value in `X-Ngsci-Csrf`. The spawner-bridge authenticates
 * with the shared bridge secret instead, on its own routes only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { LRUCache } from 'lru-cache';
import { ApiError } from './errors.js';
import { defaultLimits } from './limits/settings.js';
import type { HubClient } from './hub.js';
import { secretsEqual, sha256 } from './secrets.js';
import { current, timed } from './timing.js';
import type { AdminSessions } from './session/sessions.js';

export interface AuthUser {
  name: string;
  /** this credential holds the admin scope: it may use /api/v1/admin/* */
  admin: boolean;
  /** the user is a hub admin (may sign in to the admin panel), whatever this credential holds */
  hubAdmin: boolean;
  groups: string[];
  scopes: string[];
}

export interface AuthOptions {
  hub: HubClient;
  accessScopes: string[];
  adminScope: string;
  /** how long a token the hub accepted is trusted without asking again (0: every request asks) */
  cacheSeconds: number;
  /** how long a token the hub refused stays refused without asking again (0: not remembered) */
  negativeCacheSeconds?: number;
  /** at most this many tokens are cached; the least recently used make room */
  cacheEntries?: number;
  /**
   * the spawner-bridge's shared secret: never a hub token, so it is refused on user routes
   * without being shown to the hub
   */
  bridgeSecret?: string;
  now?: () => number;
  /** uniform in [0, 1): where in its life an accepted token is re-checked (tests fix it) */
  random?: () => number;
}

/** Credentials of the service's own making: refused on user routes before any hub lookup. */
const OWN_CREDENTIAL = /^(ngsa_|ngb_)/;

/**
 * What the hub said about a token (its user, or null when it refused it), and from when (ms on
 * the authenticator's clock) a request that uses it has it re-checked in the background.
 */
type Lookup = { user: AuthUser | null; recheckAt: number };

/**
 * An accepted token is re-checked between half and nine tenths of its cached life, at a point
 * drawn for each entry. Tokens first seen together (a class opening JupyterLab at 9:00, a hub
 * restart) would otherwise all fall due in the same instant, again every half-life, and the
 * service would ask the hub about all of them at once while their requests wait behind it.
 */
const RECHECK_FROM = 0.5;
const RECHECK_SPREAD = 0.4;

export type AuthEnv = { Variables: { user: AuthUser } };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function tokenFrom(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

export class Authenticator {
  private readonly cache: LRUCache<string, Lookup>;
  /** lookups under way, so concurrent requests with one token ask the hub once */
  private readonly pending = new Map<string, Promise<Lookup>>();
  /** the bridge secret's sha256, made on first use */
  private bridgeDigest: Buffer | null | undefined;

  constructor(private readonly o: AuthOptions) {
    const now = o.now ?? Date.now;
    this.cache = new LRUCache<string, Lookup>({
      max: o.cacheEntries ?? defaultLimits.NGSCI_AUTH_CACHE_ENTRIES,
      perf: { now },
      // read the clock on every check (the default keeps one reading for a millisecond)
      ttlResolution: 0,
    });
  }

  async resolve(token: string): Promise<AuthUser> {
    // one digest a request: the cache's key, and compared in constant time with the bridge secret's
    const digest = createHash('sha256').update(token).digest();
    // an agent credential, a bootstrap token or the bridge secret is never passed on to the hub
    if (OWN_CREDENTIAL.test(token) || this.isBridgeSecret(digest))
      throw new ApiError(
        401,
        'unauthenticated',
        'this credential is not a JupyterHub token: send a JupyterHub token',
      );
    const { user } = await this.lookupCached(token, digest.toString('hex'));
    if (!user) throw new ApiError(401, 'unauthenticated', 'the token is not valid for this hub');
    if (!user.scopes.some((s) => this.o.accessScopes.includes(s) || s === 'access:services')) {
      throw new ApiError(
        403,
        'forbidden',
        `the token lacks the scope ${this.o.accessScopes[0] ?? 'access:services'}`,
      );
    }
    return user;
  }

  private isBridgeSecret(digest: Buffer): boolean {
    this.bridgeDigest ??= this.o.bridgeSecret
      ? createHash('sha256').update(this.o.bridgeSecret).digest()
      : null;
    return this.bridgeDigest ? timingSafeEqual(digest, this.bridgeDigest) : false;
  }

  /**
   * Whether using this token now costs no hub call of its own: the hub's acceptance is cached, or
   * a lookup of it is already under way (the request waits for that one).
   */
  knows(token: string): boolean {
    const key = sha256(token);
    return Boolean(this.cache.peek(key)?.user) || this.pending.has(key);
  }

  /** `key`: the token's sha256 in hex (the cache holds no token itself) */
  private lookupCached(token: string, key: string): Promise<Lookup> {
    const hit = this.cache.get(key);
    current()?.note('auth', hit ? 'cache' : this.pending.has(key) ? 'shared' : 'hub');
    if (hit) {
      // in the second part of its life (RECHECK_FROM) an accepted token is asked about again
      // in the background, so a user who keeps working never waits for the hub (nor counts as
      // a lookup) when it expires; a revocation is still seen within the cache's lifetime
      if (hit.user && this.now() > hit.recheckAt) this.refresh(key, token).catch(() => undefined);
      return Promise.resolve(hit);
    }
    return this.refresh(key, token);
  }

  /** One lookup per token at a time; its answer replaces the cached one. */
  private refresh(key: string, token: string): Promise<Lookup> {
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.lookup(token)
        .then((user) => {
          const seconds = user
            ? this.o.cacheSeconds
            : (this.o.negativeCacheSeconds ?? defaultLimits.NGSCI_AUTH_NEGATIVE_CACHE_SECONDS);
          const lifeMs = seconds * 1000;
          const share = RECHECK_FROM + RECHECK_SPREAD * (this.o.random ?? Math.random)();
          const found = { user, recheckAt: this.now() + Math.ceil(lifeMs * share) };
          // a ttl of 0 would mean "forever" to the cache: 0 here means not cached at all
          if (seconds > 0) this.cache.set(key, found, { ttl: seconds * 1000 });
          else this.cache.delete(key);
          return found;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private async lookup(token: string): Promise<AuthUser | null> {
    const model = await this.o.hub.whoami(token);
    if (!model || model.kind === 'service') return null;
    const scopes = model.scopes ?? [];
    // the token may not be allowed to read its owner's groups; the service may
    const groups = model.groups ?? (await this.o.hub.getUser(model.name))?.groups ?? [];
    return {
      name: model.name,
      admin: scopes.includes(this.o.adminScope),
      hubAdmin: model.admin === true,
      groups,
      scopes,
    };
  }

  /**
   * The token of `Authorization`; without that header, the session cookie of `sessions` (the
   * admin sign-in). A malformed header is refused rather than passed over for the cookie.
   */
  middleware(sessions?: AdminSessions) {
    return createMiddleware<AuthEnv>(async (c, next) => {
      const header = c.req.header('authorization');
      const token = tokenFrom(header);
      if (token) {
        c.set('user', await timed('auth', () => this.resolve(token)));
        return next();
      }
      const found = !header && sessions ? sessions.read(c) : { kind: 'none' as const };
      if (found.kind === 'invalid')
        throw new ApiError(401, 'login_required', 'the sign-in has expired: sign in again');
      if (found.kind === 'ok') {
        // SameSite=Strict keeps other sites out; the header keeps out forms and plain links too
        if (!SAFE_METHODS.has(c.req.method) && !sessions!.csrfOk(c, found.session))
          throw new ApiError(
            403,
            'csrf_failed',
            'a change made with the sign-in cookie needs the X-Ngsci-Csrf header from GET /api/v1/session',
          );
        c.set('user', await timed('auth', () => this.resolveSession(found.session.token)));
        return next();
      }
      throw new ApiError(
        401,
        'unauthenticated',
        'send a JupyterHub token: Authorization: token <token>',
      );
    });
  }

  /** A session's sealed token: the hub may have revoked it since (then: sign in again). */
  async resolveSession(token: string): Promise<AuthUser> {
    try {
      return await this.resolve(token);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'unauthenticated')
        throw new ApiError(
          401,
          'login_required',
          'the hub no longer accepts this sign-in: sign in again',
        );
      throw err;
    }
  }

  adminOnly() {
    return createMiddleware<AuthEnv>(async (c, next) => {
      if (!c.get('user').admin)
        throw new ApiError(403, 'forbidden', `this needs the scope ${this.o.adminScope}`);
      await next();
    });
  }
}

/** The bridge's routes: the shared secret, compared in constant time. */
export function bridgeAuth(secret: string) {
  return createMiddleware(async (c, next) => {
    const token = tokenFrom(c.req.header('authorization'));
    if (!token || !secretsEqual(token, secret)) {
      throw new ApiError(401, 'unauthenticated', 'bridge routes need the bridge secret');
    }
    await next();
  });
}
