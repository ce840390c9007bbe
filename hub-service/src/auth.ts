/**
 * Authentication: every request carries a JupyterHub token (`Authorization: token <t>` or
 * `Bearer <t>`). The hub resolves it; the answer is cached for at most a minute under a hash of
 * the token, and the token must hold one of the service's access scopes. The spawner-bridge
 * authenticates with the shared bridge secret instead, on its own routes only.
 */
import { createMiddleware } from 'hono/factory';
import { ApiError } from './errors.js';
import type { HubClient } from './hub.js';
import { secretsEqual, sha256 } from './secrets.js';

export interface AuthUser {
  name: string;
  admin: boolean;
  groups: string[];
  scopes: string[];
}

export interface AuthOptions {
  hub: HubClient;
  accessScopes: string[];
  adminScope: string;
  cacheSeconds: number;
  now?: () => number;
}

export type AuthEnv = { Variables: { user: AuthUser } };

export function tokenFrom(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

export class Authenticator {
  private readonly cache = new Map<string, { user: AuthUser | null; expires: number }>();
  private readonly now: () => number;

  constructor(private readonly o: AuthOptions) {
    this.now = o.now ?? Date.now;
  }

  async resolve(token: string): Promise<AuthUser> {
    const key = sha256(token);
    const hit = this.cache.get(key);
    let user: AuthUser | null;
    if (hit && hit.expires > this.now()) {
      user = hit.user;
    } else {
      user = await this.lookup(token);
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { user, expires: this.now() + this.o.cacheSeconds * 1000 });
    }
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

  private async lookup(token: string): Promise<AuthUser | null> {
    const model = await this.o.hub.whoami(token);
    if (!model || model.kind === 'service') return null;
    const scopes = model.scopes ?? [];
    // the token may not be allowed to read its owner's groups; the service may
    const groups = model.groups ?? (await this.o.hub.getUser(model.name))?.groups ?? [];
    return { name: model.name, admin: scopes.includes(this.o.adminScope), groups, scopes };
  }

  middleware() {
    return createMiddleware<AuthEnv>(async (c, next) => {
      const token = tokenFrom(c.req.header('authorization'));
      if (!token)
        throw new ApiError(
          401,
          'unauthenticated',
          'send a JupyterHub token: Authorization: token <token>',
        );
      c.set('user', await this.resolve(token));
      await next();
    });
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
