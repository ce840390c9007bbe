/**
 * Admin power never lands where a user's code runs (issue 9, section 2), on a real hub: the
 * tokens a researcher's and an admin's servers receive (environment and JupyterLab's page config)
 * lack custom:ngsci:admin, an admin's server token is refused on /admin/*, a token the admin
 * makes with the scope still works, and the service's own OAuth sign-in (cookie + CSRF) is the
 * browser's way in.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startStack, until, type Stack } from './stack.js';

const ADMIN_SCOPE = 'custom:ngsci:admin';
const ACCESS = 'access:services!service=ngsci';

/**
 * A browser's cookies and redirects, without the browser: cookies kept by name and path, sent to
 * the paths they belong to, redirects followed by hand so each hop can be checked.
 */
class CookieClient {
  private jar = new Map<string, { name: string; value: string; path: string }>();
  readonly hops: string[] = [];

  constructor(private readonly origin: string) {}

  cookieNames(): string[] {
    return [...this.jar.values()].map((c) => `${c.name}@${c.path}`);
  }

  async fetch(
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Response> {
    const url = new URL(path, this.origin);
    const cookie = [...this.jar.values()]
      .filter((c) => url.pathname.startsWith(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
    // node:http, not fetch: fetch always says `Sec-Fetch-Mode: cors`, and a single-user server
    // rightly refuses its cookie to what looks like script; a browser's navigation does not say so
    const { status, headers, body } = await new Promise<{
      status: number;
      headers: http.IncomingHttpHeaders;
      body: Buffer;
    }>((resolve, reject) => {
      const req = http.request(
        url,
        {
          method: init.method ?? 'GET',
          headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
    for (const line of headers['set-cookie'] ?? []) this.keep(line, url.pathname);
    const plain = new Headers();
    for (const [k, v] of Object.entries(headers))
      if (k !== 'set-cookie' && v !== undefined) plain.set(k, Array.isArray(v) ? v.join(', ') : v);
    return new Response(status === 204 || status === 304 ? null : body, {
      status,
      headers: plain,
    });
  }

  /** GETs `path` and follows redirects on this origin; the final answer. */
  async follow(path: string, limit = 12): Promise<Response> {
    let next = path;
    for (let i = 0; i < limit; i++) {
      this.hops.push(new URL(next, this.origin).pathname);
      const res = await this.fetch(next);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return res;
      const to = new URL(location, new URL(next, this.origin));
      assert.equal(to.origin, this.origin, `a redirect left the hub: ${to}`);
      next = to.pathname + to.search;
    }
    throw new Error(`more than ${limit} redirects: ${this.hops.join(' → ')}`);
  }

  /** Fills the hub's login form at `page` (a /hub/login answer) and follows where it leads. */
  async logIn(page: Response, pageUrl: string, user: string, password: string) {
    const html = await page.text();
    const xsrf = /name="_xsrf"\s+value="([^"]+)"/.exec(html)?.[1];
    const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(xsrf && action !== undefined, 'the hub shows its login form');
    const target = new URL(action || pageUrl, new URL(pageUrl, this.origin));
    const res = await this.fetch(target.pathname + target.search, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user, password, _xsrf: xsrf }).toString(),
    });
    assert.equal(res.status, 302, `the hub accepts ${user}'s password`);
    return this.follow(res.headers.get('location')!);
  }

  private keep(line: string, requestPath: string) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq);
    const value = pair!.slice(eq + 1);
    const attr = (k: string) =>
      attrs.find((a) => a.toLowerCase().startsWith(`${k}=`))?.slice(k.length + 1);
    const path = attr('path') ?? requestPath.replace(/[^/]*$/, '');
    const gone =
      attr('max-age') === '0' ||
      (attr('expires') !== undefined && Date.parse(attr('expires')!) < Date.now());
    const key = `${name}@${path}`;
    if (gone || value === '' || value === '""') this.jar.delete(key);
    else this.jar.set(key, { name, value, path });
  }
}

describe('admin power never reaches a server', () => {
  let stack: Stack;
  const instances: Record<string, string> = {};

  before(async () => {
    stack = await startStack({ database: 'pglite' });
    // one running server each for the researcher and the admin
    for (const user of [stack.users.researcher, stack.users.admin]) {
      const token = await stack.userToken(user);
      const res = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const inst = await until(
        async () => {
          const i = (await (await stack.api('/instances/default', token)).json()) as {
            id: string;
            state: string;
          };
          if (i.state === 'failed') throw new Error(JSON.stringify(i));
          return i.state === 'running' ? i : null;
        },
        `${user}'s server to run`,
        120,
        stack,
      );
      instances[user] = inst.id;
    }
  });
  after(async () => stack?.stop());

  /** The scopes the hub gives a token (its own answer to GET /hub/api/user). */
  const scopesOf = async (token: string) => {
    const res = await fetch(`${stack.url}/hub/api/user`, {
      headers: { authorization: `token ${token}` },
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { scopes: string[] }).scopes;
  };

  /** JUPYTERHUB_API_TOKEN of a running local server, from its process. */
  const serverToken = (user: string) => {
    const pid = stack.pidOf(instances[user]!);
    assert.ok(pid, `${user}'s server has a pid`);
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const token = env.find((l) => l.startsWith('JUPYTERHUB_API_TOKEN='))?.split('=')[1];
    assert.ok(token, `${user}'s server has a hub token`);
    return token;
  };

  test("the token in a researcher's and an admin's server environment lacks the admin scope", async () => {
    for (const user of [stack.users.researcher, stack.users.admin]) {
      const scopes = await scopesOf(serverToken(user));
      assert.ok(scopes.includes(ACCESS), `${user}'s server may call the service`);
      assert.ok(
        !scopes.includes(ADMIN_SCOPE),
        `${user}'s server token holds no admin scope: ${scopes.join(' ')}`,
      );
    }
    // the admin's own server token: the service refuses it on /admin/*, whatever /me says
    const adminServer = serverToken(stack.users.admin);
    const quotas = await stack.api('/admin/quotas', adminServer);
    assert.equal(quotas.status, 403);
    assert.equal(((await quotas.json()) as { code: string }).code, 'forbidden');
    const stop = await stack.api(
      `/admin/instances/${stack.users.researcher}/default/stop`,
      adminServer,
      {
        method: 'POST',
      },
    );
    assert.equal(stop.status, 403, "an admin's server cannot stop another user's server");
    const me = (await (await stack.api('/me', adminServer)).json()) as { admin: boolean };
    assert.equal(me.admin, true, 'the panel is still offered to a hub admin (it signs in)');
  });

  test("the page token JupyterLab embeds for an admin's own server lacks the admin scope", async () => {
    const browser = new CookieClient(stack.url);
    const loginPage = await browser.follow(`/user/${stack.users.admin}/lab`);
    assert.equal(loginPage.status, 200);
    assert.match(browser.hops.at(-1)!, /\/hub\/login$/);
    const lab = await browser.logIn(
      loginPage,
      browser.hops.at(-1)!,
      stack.users.admin,
      stack.passwords[stack.users.admin]!,
    );
    assert.equal(lab.status, 200, browser.hops.join(' → '));
    // through the server's own OAuth client: the hub's consent-free authorize, then its callback
    assert.ok(browser.hops.some((h) => h === `/user/${stack.users.admin}/oauth_callback`));
    const html = await lab.text();
    const config =
      /<script id="jupyter-config-data" type="application\/json">([\s\S]*?)<\/script>/.exec(
        html,
      )?.[1];
    assert.ok(config, 'JupyterLab embeds its page config');
    const pageToken = (JSON.parse(config) as { token?: string }).token;
    assert.ok(pageToken, 'the page config carries the token the extension uses');
    const scopes = await scopesOf(pageToken);
    assert.ok(scopes.includes(ACCESS), scopes.join(' '));
    assert.ok(!scopes.includes(ADMIN_SCOPE), `the page token: ${scopes.join(' ')}`);
    assert.equal((await stack.api('/admin/quotas', pageToken)).status, 403);
  });

  test('a token the admin creates with the scope (the CLI way) still works', async () => {
    // what the hub's token page does: POST /hub/api/users/<admin>/tokens with chosen scopes
    const cliToken = await stack.userToken(stack.users.admin, [ACCESS, ADMIN_SCOPE]);
    assert.ok((await scopesOf(cliToken)).includes(ADMIN_SCOPE));
    const quotas = await stack.api('/admin/quotas', cliToken);
    assert.equal(quotas.status, 200, await quotas.clone().text());
    // a researcher cannot get such a token: the hub refuses scopes the user does not hold
    const res = await stack.hub(`/users/${stack.users.researcher}/tokens`, {
      method: 'POST',
      body: JSON.stringify({ scopes: [ACCESS, ADMIN_SCOPE] }),
    });
    assert.equal(res.status, 400, await res.clone().text());
  });

  test('the sign-in: oauth_login → hub login → callback → a cookie session with CSRF on changes', async () => {
    const browser = new CookieClient(stack.url);
    const next = '/services/ngsci/signed_in';
    const loginPage = await browser.follow(
      `/services/ngsci/oauth_login?next=${encodeURIComponent(next)}`,
    );
    assert.match(browser.hops.join(' '), /\/hub\/api\/oauth2\/authorize.*\/hub\/login/);
    const done = await browser.logIn(
      loginPage,
      browser.hops.at(-1)!,
      stack.users.admin,
      stack.passwords[stack.users.admin]!,
    );
    assert.equal(done.status, 200, browser.hops.join(' → '));
    assert.ok(browser.hops.includes('/services/ngsci/oauth_callback'), browser.hops.join(' → '));
    assert.equal(browser.hops.at(-1), next);
    assert.match(await done.text(), /window\.close\(\)/);
    assert.ok(browser.cookieNames().includes('ngsci-session@/services/ngsci/'));

    const session = await browser.fetch('/services/ngsci/api/v1/session');
    assert.equal(session.status, 200);
    const s = (await session.json()) as { user: string; admin: boolean; csrf: string };
    assert.equal(s.user, stack.users.admin);
    assert.equal(s.admin, true);

    const listed = await browser.fetch('/services/ngsci/api/v1/admin/quotas');
    assert.equal(listed.status, 200, 'reads with the cookie alone');
    const quota = JSON.stringify({
      subjectKind: 'user',
      subjectName: stack.users.researcher,
      monthlyBudgetMicros: 5_000_000,
      hardStop: false,
    });
    const forged = await browser.fetch('/services/ngsci/api/v1/admin/quotas', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: quota,
    });
    assert.equal(forged.status, 403);
    assert.equal(((await forged.json()) as { code: string }).code, 'csrf_failed');
    const made = await browser.fetch('/services/ngsci/api/v1/admin/quotas', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ngsci-csrf': s.csrf },
      body: quota,
    });
    assert.ok(made.ok, `${made.status} ${await made.clone().text()}`);

    const out = await browser.fetch('/services/ngsci/api/v1/session/logout', { method: 'POST' });
    assert.equal(out.status, 204);
    const gone = await browser.fetch('/services/ngsci/api/v1/session');
    assert.equal(gone.status, 401);
    assert.equal(((await gone.json()) as { code: string }).code, 'login_required');
  });

  test('a researcher can sign in too, and is refused on /admin/*', async () => {
    const browser = new CookieClient(stack.url);
    const loginPage = await browser.follow('/services/ngsci/oauth_login');
    const done = await browser.logIn(
      loginPage,
      browser.hops.at(-1)!,
      stack.users.researcher,
      stack.passwords[stack.users.researcher]!,
    );
    assert.equal(done.status, 200);
    assert.match(await done.text(), /Signed in to ngsci as researcher/);
    const s = (await (await browser.fetch('/services/ngsci/api/v1/session')).json()) as {
      admin: boolean;
    };
    assert.equal(s.admin, false);
    const quotas = await browser.fetch('/services/ngsci/api/v1/admin/quotas');
    assert.equal(quotas.status, 403);
  });
});
