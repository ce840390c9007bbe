/**
 * A small OpenID Connect identity provider for the login tests: `oidc-provider` (the certified
 * Node implementation) on 127.0.0.1 with one confidential client, its development login and
 * consent pages, and accounts whose `groups` claim the hub maps to hub groups. The development
 * pages take any password: checking passwords is the provider's business, not the hub's.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';

export interface IdpAccount {
  groups: string[];
}

export interface Idp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** the hub's settings that point oauthenticator's GenericOAuthenticator at this provider */
  hubEnv(): Record<string, string>;
  stop(): Promise<void>;
}

/** The provider's endpoints, as oidc-provider names them by default. */
const ROUTES = { authorize: '/auth', token: '/token', userinfo: '/me' } as const;

/**
 * The issuer's address, known before the provider runs: the hub is configured with it first, and
 * the provider (which needs the hub's callback address) is started once the hub is up.
 */
export function idpSettings(port: number) {
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'ngsci-hub';
  const clientSecret = randomBytes(24).toString('hex');
  const hubEnv = (): Record<string, string> => ({
    NGSCI_AUTHENTICATOR: 'generic-oauth',
    OAUTH_CLIENT_ID: clientId,
    OAUTH_CLIENT_SECRET: clientSecret,
    OAUTH2_AUTHORIZE_URL: `${issuer}${ROUTES.authorize}`,
    OAUTH2_TOKEN_URL: `${issuer}${ROUTES.token}`,
    OAUTH2_USERDATA_URL: `${issuer}${ROUTES.userinfo}`,
    NGSCI_OAUTH_SCOPE: 'openid profile groups',
    NGSCI_OAUTH_USERNAME_CLAIM: 'preferred_username',
    NGSCI_OAUTH_GROUPS_KEY: 'oauth_user.groups',
  });
  return { port, issuer, clientId, clientSecret, hubEnv };
}

export async function startIdp(
  settings: ReturnType<typeof idpSettings>,
  opts: { redirectUri: string; accounts: Record<string, IdpAccount> },
): Promise<Idp> {
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    format: 'jwk',
  });
  const provider = new Provider(settings.issuer, {
    clients: [
      {
        client_id: settings.clientId,
        client_secret: settings.clientSecret,
        redirect_uris: [opts.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        // oauthenticator sends the client's secret in the token request's body
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    scopes: ['openid', 'profile', 'groups'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
    async findAccount(_ctx, id) {
      const account = opts.accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, preferred_username: id, name: id, groups: account.groups }),
      };
    },
    jwks: { keys: [{ ...signingKey, kid: 'test', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    // seconds; said explicitly, so the provider does not warn about its defaults
    ttl: { AccessToken: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
  });
  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, '127.0.0.1', () => resolve());
  });
  return {
    issuer: settings.issuer,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    hubEnv: settings.hubEnv,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Logs `user` in from the hub's login page through the provider's sign-in page, and its consent
 * page when it asks (once per session), until the browser is back on the hub.
 */
export async function idpLogin(
  page: Page,
  hubUrl: string,
  issuer: string,
  user: string,
  button = 'Sign in with Test IdP',
): Promise<void> {
  const hub = new URL(hubUrl).origin;
  await page.goto(`${hubUrl}/hub/login`);
  // the hub's login page: one button that leads to the provider
  await page.getByRole('button', { name: button }).click();
  await page.waitForURL(`${issuer}/interaction/**`);
  await page.locator('input[name="login"]').fill(user);
  await page.locator('input[name="password"]').fill('any password: the provider decides');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  const back = (url: URL) => url.origin === hub;
  const first = await Promise.race([
    consent.waitFor({ timeout: 30_000 }).then(
      () => 'consent' as const,
      () => 'neither' as const,
    ),
    page.waitForURL(back, { timeout: 30_000 }).then(
      () => 'hub' as const,
      () => 'neither' as const,
    ),
  ]);
  if (first === 'neither')
    throw new Error(`the provider did not send ${user} back to the hub: ${page.url()}`);
  if (first === 'consent') {
    await consent.click();
    await page.waitForURL(back, { timeout: 30_000 });
  }
}
