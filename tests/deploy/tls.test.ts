/**
 * The deployment test's TLS variant (part of `npm run test:deploy`): docker/compose.yaml with
 * docker/compose.tls.yaml over it, as docs/install.md ("TLS") tells an operator, plus the test's
 * own overrides (docker/compose.test.yaml: host networking, local images, free ports;
 * docker/compose.tls-test.yaml: Caddy from Debian's packages, its local CA instead of ACME, free
 * ports instead of 80 and 443). Caddy runs deploy/Caddyfile in front of the hub for the name
 * hub.ngsci.test (resolved to 127.0.0.1 by the test alone), and everything goes through it:
 * - the certificate is Caddy's (NGSCI_TLS_ISSUER=internal) and the test trusts that CA and only
 *   that CA: Node's requests take its root as their only `ca`, Chromium gets it in its own NSS
 *   database (no ignore-certificate-errors anywhere), and a request without it is refused;
 * - http redirects to https, Strict-Transport-Security is on every answer (once), the hub's
 *   cookies are Secure after a real login (the OpenID Connect provider, tests/src/oidc-idp.ts,
 *   sends the researcher back to https://hub.ngsci.test:<port>/hub/oauth_callback);
 * - the ngsci service's API answers through https, and its event stream (the one the sidebar
 *   follows) is passed on unbuffered: the instance event of a launch arrives while the stream is
 *   still open.
 * Needs what deploy.test.ts needs, plus certutil (libnss3-tools); the images are the same (built
 * once, cached) and one more, ngsci-caddy:2 (docker/caddy.Dockerfile).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { reservePorts, type PortReservation } from '../src/ports.js';
import { until } from '../src/stack.js';
import { CHROMIUM } from '../src/ui/browser.js';
import { idpLogin, idpSettings, startIdp, type Idp } from '../src/oidc-idp.js';
import { buildImages, dockerBuild, IMAGES, run } from './images.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PROJECT = `ngsci-tls-${process.pid}`;
const CADDY_IMAGE = 'ngsci-caddy:2';
/** A name of the reserved .test domain: only this test resolves it (to 127.0.0.1). */
const DOMAIN = 'hub.ngsci.test';
const ROOT_CA = '/data/caddy/pki/authorities/local/root.crt';
const verbose = process.env.NGSCI_DEPLOY_VERBOSE === '1';
const log = (s: string) => {
  if (verbose) process.stderr.write(s);
};
const figure = (name: string, seconds: number) =>
  console.log(`deploy figure: tls ${name} ${seconds.toFixed(1)} s`);

let ports: PortReservation;
let env: NodeJS.ProcessEnv;
let httpPort: number;
let hubPort: number;
let httpsPort: number;
/** the hub's address as a browser uses it: through Caddy */
let publicUrl: string;
let adminToken: string;
let rootCa: string;
let work: string;
let composeFile: string;
let browser: Browser;
let idp: Idp;
const t0 = Date.now();

const compose = (...args: string[]) =>
  run('docker-compose', ['-p', PROJECT, '-f', composeFile, ...args], { cwd: ROOT, env, log });

/**
 * The four compose files as one, as deploy.test.ts does it: host networking refuses published
 * ports, so they are dropped wherever the network is the host's. Holds the test's secrets: 0600
 * in a 0700 folder, deleted after.
 */
async function writeComposeFile(): Promise<string> {
  const files = ['compose.yaml', 'compose.test.yaml', 'compose.tls.yaml', 'compose.tls-test.yaml'];
  const merged = await run(
    'docker-compose',
    ['-p', PROJECT, ...files.flatMap((f) => ['-f', `docker/${f}`]), 'config'],
    { cwd: ROOT, env },
  );
  const file = join(work, 'compose.yaml');
  await run(
    'python3',
    [
      '-c',
      `import os, sys, yaml
doc = yaml.safe_load(sys.stdin)
for s in doc["services"].values():
    if s.get("network_mode") == "host":
        s.pop("ports", None)
with open(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
    yaml.safe_dump(doc, f)`,
      file,
    ],
    { input: merged },
  );
  return file;
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  issuer?: string;
}

/**
 * A request to Caddy for hub.ngsci.test, connected to 127.0.0.1: over https (SNI and Host name
 * the domain, the certificate checked against `ca` alone), or over plain http.
 */
function call(
  scheme: 'https' | 'http',
  path: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    ca?: string | null;
    onResponse?: (res: IncomingMessage) => void;
  } = {},
): Promise<Answer> {
  const port = scheme === 'https' ? httpsPort : httpPort;
  return new Promise((done, fail) => {
    const common = {
      host: '127.0.0.1',
      port,
      path,
      method: opts.method ?? 'GET',
      agent: false as const,
      headers: { host: `${DOMAIN}:${port}`, ...opts.headers },
    };
    const onResponse = (res: IncomingMessage) => {
      if (opts.onResponse) return opts.onResponse(res);
      // the certificate's issuer, while the connection is still there
      const issuer =
        scheme === 'https'
          ? String((res.socket as TLSSocket).getPeerCertificate().issuer?.CN ?? '')
          : undefined;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        done({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          issuer,
        }),
      );
      res.on('error', fail);
    };
    const req =
      scheme === 'https'
        ? httpsRequest(
            {
              ...common,
              servername: DOMAIN,
              // only Caddy's root, or (null) only the CAs Node ships with
              ...(opts.ca === null ? {} : { ca: opts.ca ?? rootCa }),
            },
            onResponse,
          )
        : httpRequest(common, onResponse);
    req.on('error', fail);
    req.end(opts.body);
  });
}

const hub = (path: string, init: { method?: string; body?: string } = {}) =>
  call('https', `/hub/api${path}`, {
    ...init,
    headers: { authorization: `token ${adminToken}`, 'content-type': 'application/json' },
  });

const service = (path: string, token: string, init: { method?: string; body?: string } = {}) =>
  call('https', `/services/ngsci/api/v1${path}`, {
    ...init,
    headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
  });

/** Chromium that trusts Caddy's root (its own NSS database) and resolves the domain to 127.0.0.1. */
async function trustingBrowser(): Promise<Browser> {
  const home = join(work, 'chromium-home');
  const nssdb = join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  const ca = join(work, 'caddy-root.crt');
  writeFileSync(ca, rootCa);
  await run('certutil', ['-N', '-d', `sql:${nssdb}`, '--empty-password']);
  await run('certutil', [
    '-A',
    '-d',
    `sql:${nssdb}`,
    '-n',
    'ngsci test Caddy',
    '-t',
    'C,,',
    '-i',
    ca,
  ]);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-dev-shm-usage',
      `--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`,
    ],
  });
}

before(async () => {
  const built = Date.now();
  const took = await buildImages(ROOT, log);
  for (const [k, v] of Object.entries(took)) figure(`build ${k}`, v);
  const caddyBuilt = Date.now();
  await dockerBuild(
    ROOT,
    'docker/caddy.Dockerfile',
    CADDY_IMAGE,
    { BASE: IMAGES.base },
    join(ROOT, 'docker'),
    log,
  );
  figure('build caddy', (Date.now() - caddyBuilt) / 1000);
  figure('build all', (Date.now() - built) / 1000);

  work = mkdtempSync(join(tmpdir(), 'ngsci-tls-'));
  ports = await reservePorts(8);
  const [hub_, hubApi, proxyApi, servicePort, pg, idpPort, http, https] = ports.ports as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  httpPort = http;
  hubPort = hub_;
  httpsPort = https;
  publicUrl = `https://${DOMAIN}:${httpsPort}`;
  const oidc = idpSettings(idpPort);
  idp = await startIdp(oidc, {
    redirectUri: `${publicUrl}/hub/oauth_callback`,
    accounts: { researcher: { groups: ['researchers'] } },
  });
  adminToken = randomBytes(24).toString('hex');
  env = {
    ...process.env,
    NGSCI_HUB_IMAGE: IMAGES.hub,
    NGSCI_POSTGRES_IMAGE: IMAGES.postgres,
    NGSCI_CADDY_IMAGE: CADDY_IMAGE,
    NGSCI_DOMAIN: DOMAIN,
    NGSCI_HTTP_PORT: String(httpPort),
    NGSCI_HTTPS_PORT: String(httpsPort),
    NGSCI_BRIDGE_SECRET: randomBytes(32).toString('hex'),
    NGSCI_SECRET_KEY: randomBytes(32).toString('base64'),
    POSTGRES_PASSWORD: randomBytes(12).toString('hex'),
    NGSCI_HUB_PORT: String(hubPort),
    NGSCI_HUB_API_PORT: String(hubApi),
    NGSCI_PROXY_API_PORT: String(proxyApi),
    NGSCI_SERVICE_PORT: String(servicePort),
    NGSCI_TEST_PG_PORT: String(pg),
    NGSCI_TEST_ADMIN_TOKEN: adminToken,
    ...oidc.hubEnv(),
    // none: compose.tls.yaml's NGSCI_HUB_PUBLIC_URL makes the callback, as for an operator
    OAUTH_CALLBACK_URL: '',
    NGSCI_OAUTH_LOGIN_SERVICE: 'Test IdP',
    NGSCI_OAUTH_ALLOWED_GROUPS: 'researchers',
  };
  composeFile = await writeComposeFile();
  const up = Date.now();
  await compose('up', '-d', '--no-build');
  rootCa = await until(
    () => compose('exec', '-T', 'caddy', 'cat', ROOT_CA).catch(() => ''),
    "Caddy's local CA",
    60,
  );
  assert.match(rootCa, /^-----BEGIN CERTIFICATE-----/);
  await until(
    async () => {
      const h = await call('https', '/hub/api/').catch(() => null);
      if (h?.status !== 200) return false;
      const s = await call('https', '/services/ngsci/api/v1/health').catch(() => null);
      return s !== null && s.status < 500;
    },
    'the hub and the service to answer through Caddy',
    240,
  ).catch(async (e: unknown) => {
    const logs = await compose('logs', '--no-color', '--tail', '80').catch(() => '');
    throw new Error(`${String(e)}\n--- compose logs ---\n${logs}`);
  });
  figure('compose up', (Date.now() - up) / 1000);
  browser = await trustingBrowser();
});

after(async () => {
  await browser?.close();
  await idp?.stop();
  if (process.env.NGSCI_DEPLOY_KEEP !== '1' && composeFile)
    await compose('down', '-v').catch(() => '');
  if (work) rmSync(work, { recursive: true, force: true });
  ports?.release();
  figure('total', (Date.now() - t0) / 1000);
});

interface Followed {
  res: IncomingMessage;
  /** every line received so far, with the time it came */
  lines: { text: string; at: number }[];
  ended: boolean;
  events(): { id: number; instanceId?: string; state?: string }[];
  /** when the `id:` line of an event came */
  arrival(id: number): number;
}

/** Follows an event stream (gzip or not) line by line as its bytes come. */
async function follow(
  open: (onResponse: (res: IncomingMessage) => void) => Promise<unknown>,
): Promise<Followed> {
  return new Promise((ok, fail) => {
    open((res) => {
      const f: Followed = {
        res,
        lines: [],
        ended: false,
        events: () =>
          f.lines
            .filter((l) => l.text.startsWith('data: '))
            .map((l) => JSON.parse(l.text.slice(6)) as ReturnType<Followed['events']>[number])
            .filter((e) => typeof e.id === 'number'),
        arrival: (id) => f.lines.find((l) => l.text === `id: ${id}`)?.at ?? NaN,
      };
      const body = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
      let partial = '';
      body.on('data', (c: Buffer) => {
        const parts = (partial + c.toString()).split('\n');
        partial = parts.pop() ?? '';
        const at = Date.now();
        f.lines.push(...parts.map((text) => ({ text, at })));
      });
      body.on('end', () => (f.ended = true));
      body.on('error', () => (f.ended = true));
      ok(f);
    }).catch(fail);
  });
}

describe('the compose TLS variant: Caddy in front of the hub', () => {
  let context: BrowserContext;
  let token: string;

  test("https answers with Caddy's certificate and HSTS; http redirects to https", async () => {
    const login = await call('https', '/hub/login');
    assert.equal(login.status, 200, login.body.slice(0, 500));
    assert.match(login.body, /Sign in with Test IdP/);
    assert.match(login.issuer ?? '', /Caddy Local Authority/);
    // once, a year: Caddy's header replaces the hub's own (not two headers)
    assert.equal(login.headers['strict-transport-security'], 'max-age=31536000');
    // the certificate is not one the world trusts: without Caddy's root the request is refused
    await assert.rejects(
      call('https', '/hub/login', { ca: null }),
      (e: Error & { code?: string }) =>
        /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(`${e.code} ${e.message}`),
    );
    const plain = await call('http', '/hub/login?next=%2Fhub%2Fhome');
    assert.equal(plain.status, 308);
    const to = new URL(String(plain.headers.location));
    // Caddy names no port in the redirect when it is its https port (443 in production)
    assert.equal(to.protocol, 'https:');
    assert.equal(to.hostname, DOMAIN);
    assert.equal(`${to.pathname}${to.search}`, '/hub/login?next=%2Fhub%2Fhome');
    assert.equal(plain.body, '', 'nothing of the hub over plain http');
  });

  test('log in through the identity provider over https: every hub cookie is Secure', async () => {
    context = await browser.newContext();
    const page = await context.newPage();
    await idpLogin(page, publicUrl, idp.issuer, 'researcher');
    const home = await page.goto(`${publicUrl}/hub/home`);
    assert.equal(home?.status(), 200);
    assert.equal(new URL(page.url()).origin, publicUrl);
    assert.equal(home?.headers()['strict-transport-security'], 'max-age=31536000');
    // every cookie of the hub's name, whatever its path (the hub's login cookie is on /hub/)
    const cookies = (await context.cookies()).filter((c) => c.domain === DOMAIN);
    const names = cookies.map((c) => c.name);
    assert.ok(names.includes('jupyterhub-session-id'), names.join(', '));
    assert.ok(names.includes('jupyterhub-hub-login'), names.join(', '));
    for (const c of cookies) assert.equal(c.secure, true, `cookie ${c.name} is Secure`);
  });

  test('the ngsci service API answers through https', async () => {
    const made = await hub('/users/researcher/tokens', {
      method: 'POST',
      body: JSON.stringify({ note: 'tls test', expires_in: 3600 }),
    });
    assert.equal(made.status, 201, made.body);
    token = (JSON.parse(made.body) as { token: string }).token;
    const catalog = await service('/catalog', token);
    assert.equal(catalog.status, 200, catalog.body);
    assert.equal(catalog.headers['strict-transport-security'], 'max-age=31536000');
    const sizes = (JSON.parse(catalog.body) as { sizes: { id: string }[] }).sizes;
    assert.ok(
      sizes.some((s) => s.id === 'cpu-small'),
      catalog.body.slice(0, 300),
    );
    const budget = await service('/budget', token);
    assert.equal(budget.status, 200, budget.body);
    // through Caddy the service still checks every token
    const refused = await service('/budget', 'not-a-token');
    assert.ok([401, 403].includes(refused.status), `${refused.status} ${refused.body}`);
  });

  test('the event stream passes through Caddy unbuffered: a launch event arrives while it is open', async () => {
    const path = '/services/ngsci/api/v1/instances/default/events';
    const headers = {
      authorization: `token ${token}`,
      accept: 'text/event-stream',
      // what a browser offers: a proxy that compressed the stream must still flush it
      'accept-encoding': 'gzip',
    };
    // through Caddy, and (for comparison only) straight to the hub's own port
    const viaCaddy = await follow((onResponse) =>
      call('https', path, { headers, onResponse }).then(() => undefined),
    );
    const direct = await follow((onResponse) => {
      const req = httpRequest(`http://127.0.0.1:${hubPort}${path}`, { headers }, onResponse);
      req.end();
      return new Promise((_, fail) => req.on('error', fail));
    });
    try {
      assert.equal(viaCaddy.res.statusCode, 200);
      assert.match(String(viaCaddy.res.headers['content-type']), /^text\/event-stream/);
      // the service's first bytes (a comment) come through before any event exists
      await until(
        async () => viaCaddy.lines.some((l) => l.text === ': open'),
        'the stream to open',
        30,
      );
      const launch = await service('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(launch.status, 202, launch.body);
      const id = (JSON.parse(launch.body) as { id: string }).id;
      const first = (f: Followed) => f.events().find((e) => e.instanceId === id);
      const event = await until(
        async () => first(viaCaddy),
        'an instance event of the launch on the stream through Caddy',
        60,
      );
      assert.equal(viaCaddy.ended, false, 'the event arrived while the stream was still open');
      assert.ok(viaCaddy.lines.some((l) => l.text === 'event: instance'));
      assert.ok(event.state, JSON.stringify(event));
      const same = await until(
        async () => first(direct),
        'the same event on the direct stream',
        60,
      );
      assert.equal(same.id, event.id);
      figure(
        'event through Caddy minus straight from the hub',
        (viaCaddy.arrival(event.id) - direct.arrival(event.id)) / 1000,
      );
      // stop it again; the stop is on the stream too
      const stop = await service('/instances/default/stop', token, { method: 'POST' });
      assert.ok([202, 409].includes(stop.status), stop.body);
      await until(
        async () =>
          viaCaddy.events().some((e) => e.instanceId === id && /stopp/.test(e.state ?? '')),
        'the stop on the stream',
        120,
      );
    } finally {
      viaCaddy.res.destroy();
      direct.res.destroy();
    }
  });
});
