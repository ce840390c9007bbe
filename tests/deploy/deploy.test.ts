/**
 * The deployment test (`npm run test:deploy`): the images an operator builds, started with
 * docker/compose.yaml (plus docker/compose.test.yaml: host networking, local images, free ports),
 * used as a researcher would in Chromium: log in through an OpenID Connect provider (the production
 * login, oauthenticator's GenericOAuthenticator; tests/src/oidc-idp.ts), launch, resize and stop a
 * machine; then the hub
 * container restarts and the whole deployment goes `down` and `up` again, and the instances, the
 * ledger and the logins are all still there.
 *
 * Needs a running Docker engine (dockerd --bridge=none is enough), a BuildKit builder (Debian's
 * docker.io client or the buildx plugin, see images.ts), docker-compose, debootstrap (for the base
 * image, once), Chromium, and this machine's build (`node scripts/setup.mjs`), which the images
 * reuse. scripts/ci-deploy.sh sets up Docker and runs it, as CI does. The steps run in order and share one deployment.
 * NGSCI_DEPLOY_KEEP=1 leaves it running (and its volumes) after the test, for a look.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import type { Browser, Page } from 'playwright-core';
import { reservePorts, type PortReservation } from '../src/ports.js';
import { until } from '../src/stack.js';
import { launchBrowser, waitForLab } from '../src/ui/browser.js';
import { idpLogin, idpSettings, startIdp, type Idp } from '../src/oidc-idp.js';
import { dismissNews, openSidebar, section, showOnly } from '../src/ui/helpers.js';
import { buildImages, IMAGES, run } from './images.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PROJECT = `ngsci-deploy-${process.pid}`;
const verbose = process.env.NGSCI_DEPLOY_VERBOSE === '1';
const log = (s: string) => {
  if (verbose) process.stderr.write(s);
};
const figure = (name: string, seconds: number) =>
  console.log(`deploy figure: ${name} ${seconds.toFixed(1)} s`);

let ports: PortReservation;
let env: NodeJS.ProcessEnv;
let hubUrl: string;
let adminToken: string;
let pgUrl: string;
let browser: Browser;
let page: Page;
let idp: Idp;
const t0 = Date.now();

let composeFile: string;
const compose = (...args: string[]) =>
  run('docker-compose', ['-p', PROJECT, '-f', composeFile, ...args], { cwd: ROOT, env, log });

/**
 * docker/compose.yaml with docker/compose.test.yaml over it, as one file: an override cannot
 * remove the hub's published port, which host networking refuses ("host" network_mode is
 * incompatible with port_bindings), so the merged file drops `ports` wherever the network is the
 * host's. It holds the test's secrets: written 0600 into a 0700 folder, deleted after.
 */
async function writeComposeFile(): Promise<string> {
  const merged = await run(
    'docker-compose',
    ['-p', PROJECT, '-f', 'docker/compose.yaml', '-f', 'docker/compose.test.yaml', 'config'],
    { cwd: ROOT, env },
  );
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-deploy-'));
  const file = join(dir, 'compose.yaml');
  // docker-compose is Python with PyYAML: the same parser reads the file back
  await run(
    'python3',
    [
      '-c',
      `import sys, yaml
doc = yaml.safe_load(sys.stdin)
for s in doc["services"].values():
    if s.get("network_mode") == "host":
        s.pop("ports", None)
fd = __import__("os").open(sys.argv[1], __import__("os").O_WRONLY | __import__("os").O_CREAT | __import__("os").O_EXCL, 0o600)
with open(fd, "w") as f:
    yaml.safe_dump(doc, f)`,
      file,
    ],
    { input: merged },
  );
  return file;
}

interface Inst {
  id: string;
  size: string;
  state: string;
  billedMicros?: number;
}

const hub = (path: string, init: RequestInit = {}) =>
  fetch(`${hubUrl}/hub/api${path}`, {
    ...init,
    headers: { authorization: `token ${adminToken}`, ...(init.headers ?? {}) },
  });

async function userToken(): Promise<string> {
  const res = await hub('/users/researcher/tokens', {
    method: 'POST',
    body: JSON.stringify({ note: 'deploy test', expires_in: 3600 }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

async function api<T>(path: string, token: string): Promise<T> {
  const res = await fetch(`${hubUrl}/services/ngsci/api/v1${path}`, {
    headers: { authorization: `token ${token}` },
  });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The ledger as Postgres holds it: every compute interval, in order (storage accrues by the minute). */
async function ledger(): Promise<string[]> {
  const sql = postgres(pgUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<
      { id: string; instance_id: string | null; size_id: string; amount_micros: string }[]
    >`select id, instance_id, size_id, amount_micros, started_at, ended_at from usage_intervals where kind = 'compute' order by id`;
    return rows.map((r) => JSON.stringify(r));
  } finally {
    await sql.end();
  }
}

/** The hub answers through its proxy and the service is up behind it. */
async function waitForHub(what: string, seconds = 240): Promise<void> {
  await until(
    async () => {
      const h = await fetch(`${hubUrl}/hub/api/`).catch(() => null);
      if (h?.status !== 200) return false;
      const s = await fetch(`${hubUrl}/services/ngsci/api/v1/health`).catch(() => null);
      return s !== null && s.status < 500;
    },
    what,
    seconds,
  ).catch(async (e: unknown) => {
    const logs = await compose('logs', '--no-color', '--tail', '80').catch(() => '');
    throw new Error(`${String(e)}\n--- compose logs ---\n${logs}`);
  });
}

const instances = async (token: string) =>
  (await api<{ instances: Inst[] }>('/instances?all=true', token)).instances;

before(async () => {
  const built = Date.now();
  const took = await buildImages(ROOT, log);
  for (const [k, v] of Object.entries(took)) figure(`build ${k}`, v);
  figure('build all', (Date.now() - built) / 1000);

  ports = await reservePorts(6);
  const [hubPort, hubApi, proxyApi, service, pg, idpPort] = ports.ports as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // the production login: oauthenticator's GenericOAuthenticator against an OpenID Connect
  // provider on this machine (the hub's container shares the host's network)
  const oidc = idpSettings(idpPort);
  hubUrl = `http://127.0.0.1:${hubPort}`;
  idp = await startIdp(oidc, {
    redirectUri: `${hubUrl}/hub/oauth_callback`,
    accounts: { researcher: { groups: ['researchers'] } },
  });
  adminToken = randomBytes(24).toString('hex');
  env = {
    ...process.env,
    NGSCI_HUB_IMAGE: IMAGES.hub,
    NGSCI_POSTGRES_IMAGE: IMAGES.postgres,
    NGSCI_BRIDGE_SECRET: randomBytes(32).toString('hex'),
    NGSCI_SECRET_KEY: randomBytes(32).toString('base64'),
    POSTGRES_PASSWORD: randomBytes(12).toString('hex'),
    NGSCI_HUB_PORT: String(hubPort),
    NGSCI_HUB_API_PORT: String(hubApi),
    NGSCI_PROXY_API_PORT: String(proxyApi),
    NGSCI_SERVICE_PORT: String(service),
    NGSCI_TEST_PG_PORT: String(pg),
    NGSCI_TEST_ADMIN_TOKEN: adminToken,
    ...oidc.hubEnv(),
    OAUTH_CALLBACK_URL: `${hubUrl}/hub/oauth_callback`,
    NGSCI_OAUTH_LOGIN_SERVICE: 'Test IdP',
    NGSCI_OAUTH_ALLOWED_GROUPS: 'researchers',
  };
  pgUrl = `postgres://ngsci:${env.POSTGRES_PASSWORD}@127.0.0.1:${pg}/ngsci`;
  composeFile = await writeComposeFile();
  const up = Date.now();
  await compose('up', '-d', '--no-build');
  await waitForHub('the hub and the service to answer');
  figure('compose up (first)', (Date.now() - up) / 1000);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await idp?.stop();
  if (process.env.NGSCI_DEPLOY_KEEP !== '1' && composeFile) {
    await compose('down', '-v').catch(() => '');
    rmSync(dirname(composeFile), { recursive: true, force: true });
  }
  ports?.release();
  figure('test:deploy total', (Date.now() - t0) / 1000);
});

describe('the compose deployment, as an operator builds it and a researcher uses it', () => {
  let token: string;
  let small: Inst;
  let large: Inst;
  let ledgerBefore: string[];

  test('the hub runs as an unprivileged account and the single-user image carries ngsci', async () => {
    const uid = (await compose('exec', '-T', 'hub', 'id', '-u')).trim();
    assert.notEqual(uid, '0', 'the hub container does not run as root');
    // every process in the container (tini, the hub, the proxy, the service): none as root
    const uids = await compose(
      'exec',
      '-T',
      'hub',
      'sh',
      '-c',
      'cat /proc/[0-9]*/status | grep ^Uid:',
    );
    assert.ok(uids.trim().split('\n').length >= 4, uids);
    assert.doesNotMatch(uids, /^Uid:\s+0\s/m, 'no process in the hub container runs as root');
    // the single-user image: JupyterLab with the extension, %ngsci in every kernel, `ngsci agent`
    const out = await run('docker', [
      'run',
      '--rm',
      '--network',
      'host',
      IMAGES.singleuser,
      'sh',
      '-c',
      'id -u && ngsci agent --help >/dev/null && echo agent-ok && jupyter labextension list 2>&1 && ' +
        "ipython -c \"print('magic', 'ngsci' in get_ipython().magics_manager.magics['line'])\"",
    ]);
    assert.match(out, /^2000$/m, 'the notebook account is uid 2000');
    assert.match(out, /agent-ok/);
    assert.match(out, /ngsci-labextension.*enabled.*OK/i);
    assert.match(out, /magic True/);
  });

  test('log in and launch from the spawn form: JupyterLab with the ngsci sidebar', async () => {
    const started = Date.now();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await idpLogin(page, hubUrl, idp.issuer, 'researcher');
    await page.goto(`${hubUrl}/hub/spawn`);
    await page.locator('#ngsci-size-cpu-small').check();
    await Promise.all([
      page.waitForURL(/\/hub\/spawn-pending\/|\/user\/researcher\//, { timeout: 60_000 }),
      page.getByRole('button', { name: /start/i }).click(),
    ]);
    await page.waitForURL(/\/user\/researcher\/lab/, { timeout: 180_000 });
    await waitForLab(page, 120_000);
    figure('launch to JupyterLab', (Date.now() - started) / 1000);
    token = await userToken();
    const [current] = await instances(token);
    assert.equal(current?.state, 'running');
    assert.equal(current?.size, 'cpu-small');
    small = current!;
  });

  test('resize from the sidebar: back in JupyterLab on the new size', async () => {
    const started = Date.now();
    await openSidebar(page);
    await showOnly(page, 'Resize');
    await section(page, 'Resize').getByRole('button', { name: 'Resize to CPU large' }).click();
    await page
      .getByRole('dialog')
      .getByRole('button', { name: /resize/i })
      .last()
      .click();
    await page.waitForEvent('load', { timeout: 180_000 });
    await waitForLab(page, 120_000);
    large = await until(
      async () => {
        const [i] = await instances(token);
        return i?.size === 'cpu-large' && i.state === 'running' ? i : null;
      },
      'the cpu-large instance to run',
      120,
    );
    assert.notEqual(large.id, small.id, 'a resize is a new instance');
    figure('resize', (Date.now() - started) / 1000);
    // the stopped cpu-small interval is in the ledger
    const rows = await until(
      async () => {
        const l = await ledger();
        return l.some((r) => r.includes(small.id)) ? l : null;
      },
      'the cpu-small usage in the ledger',
      60,
    );
    assert.ok(rows.length > 0);
  });

  test('restart the hub container: instances and ledger survive', async () => {
    const started = Date.now();
    ledgerBefore = await ledger();
    const before = await instances(token);
    await compose('restart', 'hub');
    await waitForHub('the hub to come back after a restart');
    figure('hub restart', (Date.now() - started) / 1000);
    const after = await instances(token);
    // the local instance ran inside the hub container: it was stopped with it, and says so
    const ids = after.map((i) => i.id);
    for (const i of before) assert.ok(ids.includes(i.id), `instance ${i.id} is still on record`);
    const l = await ledger();
    for (const row of ledgerBefore) assert.ok(l.includes(row), `ledger row kept: ${row}`);
    assert.ok(l.length >= ledgerBefore.length);
    ledgerBefore = l;
  });

  // after `restart hub` the researcher's local server (it ran in the hub's container) is gone: the
  // hub's start-up check drops it and shows the spawn form again (it showed "starting up 0%" for
  // two minutes before the spawner waited for the service during that check)
  test('launch again after the restart and stop from the sidebar', async () => {
    const started = Date.now();
    // the login survives the restart (cookie secret and hub database are in the volume)
    const size = page.locator('#ngsci-size-cpu-small');
    for (let attempt = 0; ; attempt++) {
      await page.goto(`${hubUrl}/hub/spawn`);
      const shown = await size.waitFor({ timeout: 30_000 }).then(
        () => true,
        () => false,
      );
      if (shown) break;
      const body = (
        await page
          .locator('body')
          .innerText()
          .catch(() => '')
      ).slice(0, 600);
      if (attempt >= 2) assert.fail(`no spawn form after the restart: at ${page.url()}: ${body}`);
      console.log(`deploy: no spawn form yet at ${page.url()}: ${body.replace(/\s+/g, ' ')}`);
    }
    await size.check();
    await Promise.all([
      page.waitForURL(/\/hub\/spawn-pending\/|\/user\/researcher\//, { timeout: 60_000 }),
      page.getByRole('button', { name: /start/i }).click(),
    ]);
    await page.waitForURL(/\/user\/researcher\/lab/, { timeout: 180_000 });
    await waitForLab(page, 120_000);
    await openSidebar(page);
    await dismissNews(page);
    await showOnly(page, 'Instance');
    await section(page, 'Instance').getByRole('button', { name: 'Stop this machine…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: /stop/i }).last().click();
    await page.waitForURL(/\/hub\/home/, { timeout: 60_000 });
    const stopped = await until(
      async () => {
        const [i] = await instances(token);
        return i?.state === 'stopped' ? i : null;
      },
      'the instance to stop',
      60,
    );
    assert.equal(stopped.size, 'cpu-small');
    figure('launch and stop', (Date.now() - started) / 1000);
  });

  test('down and up again: instances, ledger and logins are kept in the volumes', async () => {
    const started = Date.now();
    // nothing running: the ledger is final
    await until(
      async () =>
        (await instances(token)).every(
          (i) => !['starting', 'running', 'stopping'].includes(i.state),
        ),
      'every instance to be stopped',
      60,
    );
    // and the meter has written each stopped instance's final row (at its next cycle)
    const billed = (await instances(token))
      .filter((i) => (i.billedMicros ?? 0) > 0)
      .map((i) => i.id);
    let previous = '';
    const l0 = await until(
      async () => {
        await new Promise((r) => setTimeout(r, 3000));
        const rows = await ledger();
        // unchanged since the last look (3 s ago), and a row for each
        const same = JSON.stringify(rows) === previous;
        previous = JSON.stringify(rows);
        if (!same) return null;
        const written = new Set(
          rows.map((r) => (JSON.parse(r) as { instance_id: string }).instance_id),
        );
        return billed.every((id) => written.has(id)) ? rows : null;
      },
      'the final ledger row of every billed instance',
      60,
    );
    assert.ok(l0.length >= ledgerBefore.length);
    const before = await instances(token);
    await compose('down');
    await compose('up', '-d', '--no-build');
    await waitForHub('the hub after down and up');
    figure('down and up', (Date.now() - started) / 1000);
    assert.deepEqual(await ledger(), l0, 'the ledger is the same');
    const after = await instances(token);
    assert.deepEqual(
      after.map((i) => [i.id, i.size, i.state, i.billedMicros]),
      before.map((i) => [i.id, i.size, i.state, i.billedMicros]),
      'the same instances, each billed the same',
    );
    // the same researcher logs in again through the provider, in a new browser
    const context = await browser.newContext();
    const again = await context.newPage();
    await idpLogin(again, hubUrl, idp.issuer, 'researcher');
    assert.match(again.url(), /\/hub\/(home|spawn|user)/);
    await context.close();
  });
});
