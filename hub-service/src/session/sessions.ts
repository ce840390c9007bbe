/**
 * The admin sign-in's browser session: two cookies scoped to the service's prefix, both sealed
 * with a SecretBox key of their own (AES-GCM, so the browser can neither read nor forge them).
 * - the OAuth state cookie carries the state, the PKCE verifier and `next` for ten minutes;
 * - the session cookie carries the hub token the sign-in returned, a CSRF value and an expiry.
 * HttpOnly and SameSite=Strict (Secure over https): no script reads the token, and no other
 * site's page makes the browser send it. Writes also need the CSRF value in `X-Ngsci-Csrf`.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Config } from '../config.js';
import { SecretBox, secretsEqual } from '../secrets.js';
import { oauthSettings, pkcePair, type OAuthClientSettings } from './oauth.js';

export const SESSION_COOKIE = 'ngsci-session';
export const STATE_COOKIE = 'ngsci-oauth-state';
export const CSRF_HEADER = 'x-ngsci-csrf';
const STATE_SECONDS = 600;

export interface AdminSession {
  /** the hub token of the signed-in user (an OAuth token of the service's client) */
  token: string;
  user: string;
  csrf: string;
  /** epoch milliseconds */
  expires: number;
}

export interface OAuthState {
  state: string;
  verifier: string;
  next: string | null;
  expires: number;
}

export interface AdminSessionOptions {
  config: Config;
  /** the hub's token endpoint is called through this (tests hand in a fake hub) */
  fetch?: typeof fetch;
  now?: () => number;
}

/** What a request's session cookie says: none, one that no longer counts, or a live session. */
export type SessionLookup =
  { kind: 'none' } | { kind: 'invalid' } | { kind: 'ok'; session: AdminSession };

export class AdminSessions {
  readonly oauth: OAuthClientSettings;
  readonly path: string;
  readonly lifetimeSeconds: number;
  readonly fetch: typeof fetch;
  private readonly box: SecretBox;
  private readonly now: () => number;

  constructor(o: AdminSessionOptions) {
    this.oauth = oauthSettings(o.config);
    this.path = o.config.JUPYTERHUB_SERVICE_PREFIX;
    this.lifetimeSeconds = o.config.NGSCI_ADMIN_SESSION_SECONDS;
    this.fetch = o.fetch ?? ((input, init) => fetch(input, init));
    this.now = o.now ?? Date.now;
    // a key of its own: nothing else the service seals can pass for a session, or the reverse
    this.box = new SecretBox(`admin-session:${o.config.NGSCI_SECRET_KEY}`);
  }

  // ---- OAuth state

  /** A fresh state for one sign-in, and the PKCE challenge that goes to the hub with it. */
  newState(next: string | null): { state: OAuthState; challenge: string } {
    const { verifier, challenge } = pkcePair();
    return {
      state: {
        state: randomBytes(24).toString('base64url'),
        verifier,
        next,
        expires: this.now() + STATE_SECONDS * 1000,
      },
      challenge,
    };
  }

  setState(c: Context, s: OAuthState): void {
    setCookie(c, STATE_COOKIE, this.box.seal(JSON.stringify(s)), {
      ...this.attributes(c),
      // the hub's redirect back is a top-level navigation; Lax suffices for a value with no power
      sameSite: 'Lax',
      maxAge: STATE_SECONDS,
    });
  }

  /** The state this browser started, when it matches `given` and has not expired. */
  takeState(c: Context, given: string): OAuthState | 'missing' | 'mismatch' {
    const raw = getCookie(c, STATE_COOKIE);
    deleteCookie(c, STATE_COOKIE, { path: this.path });
    const s = raw ? this.open<OAuthState>(raw, ['state', 'verifier', 'expires']) : null;
    if (!s || s.expires <= this.now()) return 'missing';
    return secretsEqual(s.state, given) ? s : 'mismatch';
  }

  // ---- the session

  start(c: Context, token: string, user: string): AdminSession {
    const session: AdminSession = {
      token,
      user,
      csrf: randomBytes(24).toString('base64url'),
      expires: this.now() + this.lifetimeSeconds * 1000,
    };
    setCookie(c, SESSION_COOKIE, this.box.seal(JSON.stringify(session)), {
      ...this.attributes(c),
      sameSite: 'Strict',
      maxAge: this.lifetimeSeconds,
    });
    return session;
  }

  read(c: Context): SessionLookup {
    const raw = getCookie(c, SESSION_COOKIE);
    if (!raw) return { kind: 'none' };
    const s = this.open<AdminSession>(raw, ['token', 'user', 'csrf', 'expires']);
    if (!s || s.expires <= this.now()) return { kind: 'invalid' };
    return { kind: 'ok', session: s };
  }

  end(c: Context): void {
    deleteCookie(c, SESSION_COOKIE, { path: this.path, httpOnly: true, sameSite: 'Strict' });
  }

  /** The request carries the session's CSRF value in X-Ngsci-Csrf (constant-time compare). */
  csrfOk(c: Context, s: AdminSession): boolean {
    const given = c.req.header(CSRF_HEADER);
    return !!given && secretsEqual(given, s.csrf);
  }

  private attributes(c: Context) {
    return { path: this.path, httpOnly: true, secure: cameOverHttps(c) } as const;
  }

  private open<T extends object>(raw: string, keys: string[]): T | null {
    try {
      const v: unknown = JSON.parse(this.box.open(raw));
      if (typeof v === 'object' && v !== null && keys.every((k) => k in v)) return v as T;
    } catch {
      // tampered, sealed with another key, or not ours at all
    }
    return null;
  }
}

/** Whether the browser reached us over https: the proxy says so in X-Forwarded-Proto. */
export function cameOverHttps(c: Context): boolean {
  const forwarded = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  if (forwarded) return forwarded === 'https';
  return new URL(c.req.url).protocol === 'https:';
}
