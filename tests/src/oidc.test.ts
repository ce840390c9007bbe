/**
 * The production login, on a real hub (issue 17, section 2): JupyterHub with oauthenticator's
 * GenericOAuthenticator against a local OpenID Connect provider (tests/src/oidc-idp.ts), served
 * over https with the hub's own self-signed certificate. Chromium logs in on the provider's page
 * and lands in the hub; the provider's `groups` claim becomes hub groups; a member of the admin
 * group holds ngsci's admin scope (the service's admin API answers 200) and a plain member does
 * not (403); someone outside the allowed groups is refused. Every hub cookie is Secure and hub
 * pages carry HSTS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { idpLogin, idpSettings, startIdp, type Idp } from './oidc-idp.js';
import { reservePorts, type PortReservation } from './ports.js';
import { startStack, type Stack } from './stack.js';
import { launchBrowser } from './ui/browser.js';

const ADMIN_GROUP = 'ngsci-admins';
/** µ$: the monthly budget the admin gives the group `physics` */
const PHYSICS_BUDGET = 25_000_000;
const ACCOUNTS = {
  alice: { groups: [ADMIN_GROUP, 'physics'] },
  bob: { groups: ['physics'] },
  carol: { groups: ['chemistry'] },
};

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One https request that trusts only the test's own certificate. */
function httpsGet(url: string, ca: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('OIDC login through a real identity provider, over TLS', () => {
  let stack: Stack;
  let idp: Idp;
  let browser: Browser;
  let idpPort: PortReservation;
  let certDir: string;
  let ca: string;

  /** The hub's REST API on its own loopback port (the test process does not trust the cert). */
  const hubApi = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${stack.ports.hubApi}/hub/api${path}`, {
      headers: { authorization: `token ${stack.adminToken}` },
    });
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return res.json();
  };

  before(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'ngsci-tls-'));
    const cert = join(certDir, 'hub.crt');
    const key = join(certDir, 'hub.key');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'pipe' },
    );
    ca = readFileSync(cert, 'utf8');
    idpPort = await reservePorts(1);
    const settings = idpSettings(idpPort.ports[0]!);
    stack = await startStack({
      database: 'postgres',
      env: {
        ...settings.hubEnv(),
        NGSCI_OAUTH_LOGIN_SERVICE: 'Test IdP',
        NGSCI_OAUTH_ALLOWED_GROUPS: 'physics',
        NGSCI_ADMIN_GROUPS: ADMIN_GROUP,
        NGSCI_HUB_SSL_CERT: cert,
        NGSCI_HUB_SSL_KEY: key,
        // the start script checks the hub is up over https
        NODE_EXTRA_CA_CERTS: cert,
      },
    });
    assert.match(stack.url, /^https:\/\//);
    idp = await startIdp(settings, {
      redirectUri: `${stack.url}/hub/oauth_callback`,
      accounts: ACCOUNTS,
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await idp?.stop();
    await stack?.stop();
    idpPort?.release();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  /** Logs `user` in from the hub's login page through the provider's sign-in and consent pages. */
  async function providerLogin(user: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await idpLogin(page, stack.url, idp.issuer, user);
    return { context, page };
  }

  /**
   * Signs `page`'s user in to the service (the hub's OAuth, no second login) and reads its admin
   * API: the status, whether the session is an admin's, and its CSRF token.
   */
  async function adminApi(page: Page): Promise<{ status: number; admin: boolean; csrf: string }> {
    await page.goto(
      `${stack.url}/services/ngsci/oauth_login?next=${encodeURIComponent('/services/ngsci/signed_in')}`,
    );
    await page.waitForURL(`${stack.url}/services/ngsci/signed_in`);
    const session = await page.request.get(`${stack.url}/services/ngsci/api/v1/session`);
    assert.equal(session.status(), 200, await session.text());
    const { admin, csrf } = (await session.json()) as { admin: boolean; csrf: string };
    const quotas = await page.request.get(`${stack.url}/services/ngsci/api/v1/admin/quotas`);
    return { status: quotas.status(), admin, csrf };
  }

  test('the hub answers over https only, with Secure cookies and HSTS', async () => {
    const login = await httpsGet(`${stack.url}/hub/login`, ca);
    assert.equal(login.status, 200);
    assert.equal(login.headers['strict-transport-security'], 'max-age=31536000');
    const cookies = login.headers['set-cookie'] ?? [];
    assert.ok(
      cookies.some((c) => c.startsWith('_xsrf=')),
      `the login page sets its _xsrf cookie: ${cookies.join(' | ')}`,
    );
    for (const cookie of cookies) assert.match(cookie, /;\s*Secure/i, cookie);
    assert.match(login.body, /Sign in with Test IdP/);
    // plain http on the same port gets no page
    await assert.rejects(
      fetch(`${stack.url.replace('https:', 'http:')}/hub/login`, {
        signal: AbortSignal.timeout(10_000),
      }),
    );
  });

  test("a member of the provider's admin group lands in the hub, with groups and the admin scope", async () => {
    const { context, page } = await providerLogin('alice');
    try {
      assert.match(new URL(page.url()).pathname, /^\/hub\/(home|spawn)/);
      const hubCookies = (await context.cookies(stack.url)).filter((c) =>
        /^(jupyterhub-|_xsrf)/.test(c.name),
      );
      assert.ok(
        hubCookies.some((c) => c.name === 'jupyterhub-session-id'),
        hubCookies.map((c) => c.name).join(' '),
      );
      for (const c of hubCookies) assert.equal(c.secure, true, `${c.name} is Secure`);

      const alice = (await hubApi('/users/alice')) as { groups: string[]; admin: boolean };
      assert.deepEqual([...alice.groups].sort(), [ADMIN_GROUP, 'physics']);
      assert.equal(alice.admin, true, 'the admin group makes a hub admin');
      // and holds ngsci's admin role (custom:ngsci:admin), which the hub's admin role lacks
      const admins = (await hubApi(`/groups/${ADMIN_GROUP}`)) as { roles: string[] };
      assert.ok(admins.roles.includes('ngsci-admin'), admins.roles.join(' '));
      const api = await adminApi(page);
      assert.deepEqual([api.status, api.admin], [200, true]);
      // the service's own session cookie, set over https through the hub's proxy, is Secure too
      const session = (await context.cookies(`${stack.url}/services/ngsci/`)).find(
        (c) => c.name === 'ngsci-session',
      );
      assert.equal(session?.secure, true, JSON.stringify(session));
      // an admin from the provider's group gives the provider's group `physics` a budget
      const made = await page.request.post(`${stack.url}/services/ngsci/api/v1/admin/quotas`, {
        headers: { 'x-ngsci-csrf': api.csrf },
        data: {
          subjectKind: 'group',
          subjectName: 'physics',
          monthlyBudgetMicros: PHYSICS_BUDGET,
          hardStop: true,
        },
      });
      assert.ok(made.ok(), `${made.status()} ${await made.text()}`);
    } finally {
      await context.close();
    }
  });

  test('a plain member is a hub user in its groups, under its group budget, refused on the admin API', async () => {
    const { context, page } = await providerLogin('bob');
    try {
      assert.match(new URL(page.url()).pathname, /^\/hub\/(home|spawn)/);
      const bob = (await hubApi('/users/bob')) as { groups: string[]; admin: boolean };
      assert.deepEqual(bob.groups, ['physics']);
      assert.equal(bob.admin, false);
      const physics = (await hubApi('/groups/physics')) as { users: string[] };
      assert.deepEqual([...physics.users].sort(), ['alice', 'bob']);
      const api = await adminApi(page);
      assert.deepEqual([api.status, api.admin], [403, false]);
      // the budget alice gave the provider's group `physics` (previous test) is bob's
      const budget = await page.request.get(`${stack.url}/services/ngsci/api/v1/budget`);
      assert.equal(budget.status(), 200);
      const { budgets } = (await budget.json()) as {
        budgets: { kind: string; name: string; budgetMicros: number }[];
      };
      assert.deepEqual(
        budgets.filter((b) => b.kind === 'group').map((b) => [b.name, b.budgetMicros]),
        [['physics', PHYSICS_BUDGET]],
      );
    } finally {
      await context.close();
    }
  });

  test('someone outside the allowed groups is turned away by the hub', async () => {
    const { context, page } = await providerLogin('carol');
    try {
      assert.match(new URL(page.url()).pathname, /^\/hub\/oauth_callback/);
      assert.match(await page.content(), /403|not allowed|Forbidden/i);
      const res = await fetch(`http://127.0.0.1:${stack.ports.hubApi}/hub/api/users/carol`, {
        headers: { authorization: `token ${stack.adminToken}` },
      });
      assert.equal(res.status, 404, 'no hub user was made');
    } finally {
      await context.close();
    }
  });
});
