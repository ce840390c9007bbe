/**
 * hub-service as a JupyterHub OAuth client, the way JupyterHub's own HubOAuth does it
 * (jupyterhub/services/auth.py): send the browser to `<hub>/hub/api/oauth2/authorize` with the
 * client id the hub gave the service and PKCE, then trade the code at `<api>/oauth2/token` with
 * the service's API token as the client secret. The admin panel signs in this way, so the admin
 * scope reaches the service without ever entering a single-user server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { Config } from '../config.js';

export interface OAuthClientSettings {
  clientId: string;
  /** the service's own hub token: JupyterHub registers it as the client secret */
  clientSecret: string;
  /** exactly the redirect URI the hub registered for the client (a path when hub and service share an origin) */
  redirectUri: string;
  /** where the browser goes to authorize: public, so JUPYTERHUB_HOST + base URL */
  authorizeUrl: string;
  /** where the service trades the code: the hub's API as the service reaches it */
  tokenUrl: string;
}

/** The settings from the environment JupyterHub gives a managed service. */
export function oauthSettings(config: Config): OAuthClientSettings {
  const base = config.JUPYTERHUB_BASE_URL.endsWith('/')
    ? config.JUPYTERHUB_BASE_URL
    : `${config.JUPYTERHUB_BASE_URL}/`;
  return {
    clientId: config.JUPYTERHUB_CLIENT_ID ?? `service-${config.JUPYTERHUB_SERVICE_NAME}`,
    clientSecret: config.JUPYTERHUB_API_TOKEN,
    redirectUri:
      config.JUPYTERHUB_OAUTH_CALLBACK_URL ?? `${config.JUPYTERHUB_SERVICE_PREFIX}oauth_callback`,
    authorizeUrl: `${config.JUPYTERHUB_HOST.replace(/\/$/, '')}${base}hub/api/oauth2/authorize`,
    tokenUrl: `${config.JUPYTERHUB_API_URL.replace(/\/$/, '')}/oauth2/token`,
  };
}

/** A PKCE pair (RFC 7636, S256): the verifier stays in the sealed state cookie. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export function authorizeUrl(s: OAuthClientSettings, state: string, challenge: string): string {
  const q = new URLSearchParams({
    client_id: s.clientId,
    redirect_uri: s.redirectUri,
    response_type: 'code',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return `${s.authorizeUrl}?${q}`;
}

/** Trades an authorization code for the signed-in user's hub token. */
export async function exchangeCode(
  s: OAuthClientSettings,
  code: string,
  verifier: string,
  doFetch: typeof fetch = fetch,
): Promise<string> {
  const body = new URLSearchParams({
    client_id: s.clientId,
    client_secret: s.clientSecret,
    grant_type: 'authorization_code',
    code,
    redirect_uri: s.redirectUri,
    code_verifier: verifier,
  });
  let res: Response;
  try {
    res = await doFetch(s.tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: body.toString(),
      signal: AbortSignal.timeout(20_000),
    });
  } catch (err) {
    throw new ApiError(
      502,
      'hub_unreachable',
      `JupyterHub did not answer the sign-in's token request: ${(err as Error).name}`,
    );
  }
  if (res.status >= 500)
    throw new ApiError(502, 'hub_unreachable', `JupyterHub answered ${res.status} to the sign-in`);
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    // judged below
  }
  const token =
    typeof data === 'object' && data !== null && 'access_token' in data
      ? (data as { access_token: unknown }).access_token
      : null;
  if (!res.ok || typeof token !== 'string' || !token) {
    // an expired or replayed code, or a client the hub does not know: sign in again
    throw new ApiError(
      401,
      'login_required',
      `JupyterHub did not accept the sign-in (${res.status}); start the sign-in again`,
    );
  }
  return token;
}

/**
 * `next` after signing in: a same-origin absolute path only. `//host`, `/\host`, schemes and
 * control characters are refused, so the sign-in can never bounce the browser elsewhere.
 */
export function safeNext(raw: string | undefined | null): string | null {
  if (!raw) return null;
  if (raw.length > 2000 || !raw.startsWith('/') || /^\/[/\\]/.test(raw)) return null;
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return null;
  const origin = 'http://ngsci.invalid';
  let url: URL;
  try {
    url = new URL(raw, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin) return null;
  return url.pathname + url.search + url.hash;
}
