/**
 * The admin sign-in over a fake hub: the OAuth round trip, the session cookie's attributes,
 * CSRF on cookie writes, and that token-authenticated requests are unchanged. The real hub's
 * side of it runs in tests/src/admin-auth.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Authenticator } from '../auth.js';
import { createApp } from '../app.js';
import { accessScopes } from '../config.js';
import { ACCESS, BRIDGE_SECRET, harness, type FakeUser, type Harness } from '../testing/harness.js';
import { safeNext } from './oauth.js';
import { AdminSessions } from './sessions.js';

const ADMIN = 'custom:ngsci:admin';
const P = '/services/ngsci';

let h: Harness;
let app: ReturnType<typeof createApp>;
/** what the fake hub's token endpoint received, and whom the next code signs in */
const tokenRequests: URLSearchParams[] = [];
let signsIn: FakeUser = { name: 'root', admin: true, scopes: [ACCESS, ADMIN] };
let clock = Date.now();

before(async () => {
  h = await harness();
  const hubToken: typeof fetch = async (input, init) => {
    assert.equal(String(input), 'http://127.0.0.1:8081/hub/api/oauth2/token');
    const form = new URLSearchParams(String(init?.body));
    tokenRequests.push(form);
    if (form.get('code') !== 'good-code')
      return Response.json({ error: 'invalid_grant' }, { status: 400 });
    return Response.json({ access_token: h.token(signsIn), token_type: 'Bearer' });
  };
  app = createApp({
    ...h.services,
    auth: new Authenticator({
      hub: h.services.hub,
      accessScopes: accessScopes(h.config),
      adminScope: ADMIN,
      cacheSeconds: 0,
      now: () => clock,
    }),
    bridgeSecret: BRIDGE_SECRET,
    prefix: h.config.JUPYTERHUB_SERVICE_PREFIX,
    version: 'test',
    sessions: new AdminSessions({
      config: { ...h.config, NGSCI_ADMIN_SESSION_SECONDS: 600 },
      fetch: hubToken,
      now: () => clock,
    }),
  });
});
after(async () => h.close());

const cookieOf = (res: Response, name: string): string | null => {
  for (const c of res.headers.getSetCookie()) if (c.startsWith(`${name}=`)) return c;
  return null;
};
const valueOf = (setCookie: string) => setCookie.split(';')[0]!;

/** oauth_login → (the hub) → oauth_callback; the session cookie ("name=value") and the callback answer. */
async function signIn(opts: { next?: string; https?: boolean } = {}) {
  const headers: Record<string, string> = opts.https ? { 'x-forwarded-proto': 'https' } : {};
  const q = opts.next ? `?next=${encodeURIComponent(opts.next)}` : '';
  const login = await app.request(`${P}/oauth_login${q}`, { headers });
  assert.equal(login.status, 302);
  const to = new URL(login.headers.get('location')!, 'http://hub.test');
  const state = cookieOf(login, 'ngsci-oauth-state')!;
  const callback = await app.request(
    `${P}/oauth_callback?code=good-code&state=${encodeURIComponent(to.searchParams.get('state')!)}`,
    { headers: { ...headers, cookie: valueOf(state) } },
  );
  const session = cookieOf(callback, 'ngsci-session');
  return { login, to, callback, session, cookie: session ? valueOf(session) : '' };
}

describe('the admin sign-in', () => {
  test('oauth_login sends the browser to the hub with the service client, state and PKCE', async () => {
    const { login, to, callback, session } = await signIn();
    assert.equal(to.pathname, '/hub/api/oauth2/authorize');
    assert.equal(to.searchParams.get('client_id'), 'service-ngsci');
    assert.equal(to.searchParams.get('redirect_uri'), '/services/ngsci/oauth_callback');
    assert.equal(to.searchParams.get('response_type'), 'code');
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    const state = cookieOf(login, 'ngsci-oauth-state')!;
    assert.match(state, /Path=\/services\/ngsci\//);
    assert.match(state, /HttpOnly/);

    // the code was traded with the service's client secret and the verifier of that challenge
    const sent = tokenRequests.at(-1)!;
    assert.equal(sent.get('client_secret'), h.config.JUPYTERHUB_API_TOKEN);
    assert.equal(sent.get('redirect_uri'), '/services/ngsci/oauth_callback');
    const challenge = createHash('sha256').update(sent.get('code_verifier')!).digest('base64url');
    assert.equal(challenge, to.searchParams.get('code_challenge'));

    // no next: a page that says so
    assert.equal(callback.status, 200);
    assert.match(await callback.text(), /Signed in to ngsci as root/);
    assert.ok(session);
    assert.match(session, /Path=\/services\/ngsci\//);
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Strict/);
    assert.doesNotMatch(session, /Secure/, 'plain http: a Secure cookie would never come back');
    assert.doesNotMatch(session, /tok-root/, 'the hub token is sealed, not readable');
  });

  test('over https the cookie is Secure; next must be a path on this site', async () => {
    const { session, callback } = await signIn({ https: true, next: '/services/ngsci/signed_in' });
    assert.match(session!, /Secure/);
    assert.equal(callback.status, 302);
    assert.equal(callback.headers.get('location'), '/services/ngsci/signed_in');
    for (const bad of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'x'])
      assert.equal(
        (await app.request(`${P}/oauth_login?next=${encodeURIComponent(bad)}`)).status,
        400,
        bad,
      );
    const page = await app.request(`${P}/signed_in`);
    assert.match(await page.text(), /window\.close\(\)/);
  });

  test('a callback with a foreign state, no state cookie or a bad code signs nobody in', async () => {
    const login = await app.request(`${P}/oauth_login`);
    const stateCookie = valueOf(cookieOf(login, 'ngsci-oauth-state')!);
    const forged = await app.request(`${P}/oauth_callback?code=good-code&state=forged`, {
      headers: { cookie: stateCookie },
    });
    assert.equal(forged.status, 403);
    assert.equal(((await forged.json()) as { code: string }).code, 'csrf_failed');
    const noCookie = await app.request(`${P}/oauth_callback?code=good-code&state=x`);
    assert.equal(noCookie.status, 401);
    assert.equal(((await noCookie.json()) as { code: string }).code, 'login_required');

    const again = await app.request(`${P}/oauth_login`);
    const state = new URL(again.headers.get('location')!, 'http://h').searchParams.get('state')!;
    const badCode = await app.request(`${P}/oauth_callback?code=stale&state=${state}`, {
      headers: { cookie: valueOf(cookieOf(again, 'ngsci-oauth-state')!) },
    });
    assert.equal(badCode.status, 401);
    assert.equal(cookieOf(badCode, 'ngsci-session'), null);
  });

  test('GET /session gives user, admin and csrf; admin writes need the CSRF header', async () => {
    const { cookie } = await signIn();
    const none = await app.request(`${P}/api/v1/session`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { code: string }).code, 'login_required');

    const res = await app.request(`${P}/api/v1/session`, { headers: { cookie } });
    assert.equal(res.status, 200);
    const s = (await res.json()) as { user: string; admin: boolean; csrf: string };
    assert.equal(s.user, 'root');
    assert.equal(s.admin, true);
    assert.ok(s.csrf.length >= 20);

    assert.equal(
      (await app.request(`${P}/api/v1/admin/quotas`, { headers: { cookie } })).status,
      200,
      'reads with the cookie alone',
    );
    const body = JSON.stringify({ id: 'academic', label: 'Academic', multiplierPpm: 500_000 });
    const noCsrf = await app.request(`${P}/api/v1/admin/plans`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body,
    });
    assert.equal(noCsrf.status, 403);
    assert.equal(((await noCsrf.json()) as { code: string }).code, 'csrf_failed');
    const wrong = await app.request(`${P}/api/v1/admin/plans`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-ngsci-csrf': 'guess' },
      body,
    });
    assert.equal(wrong.status, 403);
    const ok = await app.request(`${P}/api/v1/admin/plans`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-ngsci-csrf': s.csrf },
      body,
    });
    assert.ok(ok.ok, `with the header: ${ok.status}`);
  });

  test('a researcher signs in fine but is no admin; a token request ignores the cookie', async () => {
    signsIn = { name: 'rita', scopes: [ACCESS] };
    try {
      const { cookie } = await signIn();
      const s = (await (
        await app.request(`${P}/api/v1/session`, { headers: { cookie } })
      ).json()) as {
        admin: boolean;
      };
      assert.equal(s.admin, false);
      assert.equal(
        (await app.request(`${P}/api/v1/admin/quotas`, { headers: { cookie } })).status,
        403,
      );
    } finally {
      signsIn = { name: 'root', admin: true, scopes: [ACCESS, ADMIN] };
    }
    // an admin's cookie does not lend its power to a request that carries a token
    const { cookie } = await signIn();
    const serverToken = h.token({ name: 'root', admin: true, scopes: [ACCESS] });
    const res = await app.request(`${P}/api/v1/admin/quotas`, {
      headers: { cookie, authorization: `token ${serverToken}` },
    });
    assert.equal(res.status, 403);
    // ...but /me still offers a hub admin the panel (whose calls then sign in)
    const me = await app.request(`${P}/api/v1/me`, {
      headers: { authorization: `token ${serverToken}` },
    });
    assert.equal(((await me.json()) as { admin: boolean }).admin, true);
  });

  test('a tampered or expired cookie, and logout, end the session', async () => {
    const { cookie } = await signIn();
    const [name, value] = cookie.split('=') as [string, string];
    // one character of the sealed value's IV changed: the seal no longer opens
    const flipped = `${name}=${value.slice(0, 4)}${value[4] === 'A' ? 'B' : 'A'}${value.slice(5)}`;
    const tampered = await app.request(`${P}/api/v1/admin/quotas`, {
      headers: { cookie: flipped },
    });
    assert.equal(tampered.status, 401);
    assert.equal(((await tampered.json()) as { code: string }).code, 'login_required');

    clock += 601_000;
    try {
      const expired = await app.request(`${P}/api/v1/admin/quotas`, { headers: { cookie } });
      assert.equal(expired.status, 401);
      assert.equal(((await expired.json()) as { code: string }).code, 'login_required');
    } finally {
      clock -= 601_000;
    }
    const out = await app.request(`${P}/api/v1/session/logout`, {
      method: 'POST',
      headers: { cookie },
    });
    assert.equal(out.status, 204);
    assert.match(cookieOf(out, 'ngsci-session')!, /Max-Age=0/);
  });
});

test('safeNext keeps same-origin paths only', () => {
  const cases: [string, string | null][] = [
    ['/hub/home', '/hub/home'],
    ['/services/ngsci/signed_in?x=1#y', '/services/ngsci/signed_in?x=1#y'],
    ['//evil.example', null],
    ['/\\evil.example', null],
    ['https://evil.example/', null],
    ['javascript:alert(1)', null],
    ['/a\nb', null],
    ['', null],
  ];
  for (const [raw, want] of cases) assert.equal(safeNext(raw), want, raw);
});
