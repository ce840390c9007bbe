/**
 * docs/install.md, "Your own hub", run as an operator would paste it: the `sh` blocks marked
 * `<!-- install-guide:step -->` run in order in a temporary directory, the python block marked
 * `<!-- install-guide:file PATH -->` is saved as PATH, and the block marked
 * `<!-- install-guide:start -->` starts the hub in the background. Then a user logs in, launches a
 * local instance through the API, and JupyterLab answers with the ngsci extension in it.
 *
 * What the test changes in the guide, and nothing else (each is checked to be in the guide, so a
 * changed guide fails here rather than running something else):
 * - `/opt/ngsci` and `/srv/ngsci` become directories under the temporary directory;
 * - `git clone <this repository> ngsci-src`: the working tree (tracked and untracked files that git
 *   does not ignore, uncommitted changes included) is copied to `ngsci-src` instead;
 * - the example `DATABASE_URL` becomes a new database on the test Postgres server
 *   (NGSCI_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres);
 * - the ports: `service_port=10101` and, added to the config before the start, the hub's
 *   `bind_url`, `hub_port` and the proxy's `api_url`, all free ports (tests/src/ports.ts).
 *
 * The blocks run with this machine's Node, Python, npm and pip (their caches and pip's
 * configured indexes), without the repository's node_modules/.bin or .venv on PATH and without the
 * npm_* variables `npm run` sets. Part of `npm run test:deploy`; prints its figures as
 * "install-guide figure: <step> <seconds> s". NGSCI_INSTALL_GUIDE_KEEP=1 keeps the directory.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { reservePorts, type PortReservation } from '../src/ports.js';
import { createPostgresDatabase } from '../src/stack.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const GUIDE = join(ROOT, 'docs', 'install.md');
const USER = 'bob';
const figure = (name: string, seconds: number) =>
  console.log(`install-guide figure: ${name} ${seconds.toFixed(1)} s`);

interface Block {
  kind: 'step' | 'start' | 'file';
  path?: string;
  lang: string;
  body: string;
}

/** The marked blocks of the "Your own hub" section, in order. */
export function guideBlocks(markdown: string): Block[] {
  const start = markdown.indexOf('\n## Your own hub\n');
  assert.ok(start >= 0, 'docs/install.md has a "## Your own hub" section');
  const rest = markdown.slice(start + 1);
  const next = rest.indexOf('\n## ', 3);
  const section = next >= 0 ? rest.slice(0, next) : rest;
  const re = /<!-- install-guide:(step|start|file) ?([^ ]*) -->\n```(\w+)\n([\s\S]*?)```/g;
  return [...section.matchAll(re)].map((m) => ({
    kind: m[1] as Block['kind'],
    ...(m[2] ? { path: m[2] } : {}),
    lang: m[3]!,
    body: m[4]!,
  }));
}

/** Replaces `from` (which must be there) with `to`, everywhere. */
function substitute(text: string, from: string, to: string, what: string): string {
  assert.ok(text.includes(from), `the guide's ${what} contains ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

/** The environment of a host where nothing of this repository is installed. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NGSCI_|JUPYTERHUB_|VIRTUAL_ENV$|PYTHONPATH$|NODE_OPTIONS$|TSX_)/i.test(k)) continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .filter((p) => p && !p.includes('node_modules') && !p.includes(`${ROOT}/.venv`))
    .join(':');
  return env;
}

function bash(script: string, cwd: string, logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  return child;
}

const tail = (file: string, lines = 40) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '';

async function runStep(script: string, cwd: string, logFile: string, env: NodeJS.ProcessEnv) {
  writeFileSync(logFile, `$ ${script}\n`, { flag: 'a' });
  const child = bash(script, cwd, logFile, env);
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(
    code,
    0,
    `the guide's step failed:\n${script}\n--- its output ends with:\n${tail(logFile)}`,
  );
}

async function poll<T>(
  what: string,
  seconds: number,
  fn: () => Promise<T | null>,
  alive?: () => void,
): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let last: unknown = null;
  while (Date.now() < end) {
    alive?.();
    try {
      const v = await fn();
      if (v !== null) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(
    `${what}: not within ${seconds} s${last ? ` (last error: ${String(last)})` : ''}`,
  );
}

/** Cookies of one origin, by name (paths ignored: everything here is under /hub/ or /user/). */
class Jar {
  readonly cookies = new Map<string, string>();
  keep(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }
  get header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

describe('docs/install.md, "Your own hub", runs as written', { timeout: 60 * 60_000 }, () => {
  const blocks = guideBlocks(readFileSync(GUIDE, 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-install-guide-'));
  const opt = join(dir, 'opt');
  const srv = join(dir, 'srv');
  const work = join(dir, 'work');
  const logFile = join(dir, 'guide.log');
  const env = cleanEnv();
  let ports: PortReservation | undefined;
  let db: { url: string; drop: () => Promise<void> } | undefined;
  let hub: ChildProcess | undefined;
  let hubExit: number | string | null | undefined;
  let url = '';
  let token = '';

  const hubAlive = () => {
    if (hubExit !== undefined)
      throw new Error(`the hub exited (${hubExit}); its output ends with:\n${tail(logFile, 60)}`);
  };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${url}/services/ngsci/api/v1${path}`, {
      ...init,
      headers: {
        authorization: `token ${token}`,
        'content-type': 'application/json',
        ...init.headers,
      },
    });

  before(async () => {
    mkdirSync(work, { recursive: true });
    ports = await reservePorts(4);
    db = await createPostgresDatabase();
  });

  after(async () => {
    if (hub?.pid && hubExit === undefined) {
      if (token) {
        // the hub leaves servers running when it stops (cleanup_servers = False): stop bob's first
        await api('/instances/default/stop', { method: 'POST' }).catch(() => undefined);
        await poll('the instance to stop', 60, async () => {
          const i = (await (await api('/instances/default')).json()) as { state?: string };
          return i.state === 'running' || i.state === 'stopping' ? null : true;
        }).catch(() => undefined);
      }
      process.kill(-hub.pid, 'SIGTERM');
      await poll('the hub to exit', 60, async () => (hubExit !== undefined ? true : null)).catch(
        () => {
          if (hub?.pid) process.kill(-hub.pid, 'SIGKILL');
        },
      );
    }
    ports?.release();
    await db?.drop().catch(() => undefined);
    if (process.env.NGSCI_INSTALL_GUIDE_KEEP === '1') console.log(`install-guide: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  test('the section has its marked blocks: steps, the config file, the start', () => {
    assert.ok(blocks.filter((b) => b.kind === 'step').length >= 4, 'at least four steps');
    assert.equal(blocks.filter((b) => b.kind === 'start').length, 1, 'one start block');
    const file = blocks.find((b) => b.kind === 'file');
    assert.equal(file?.lang, 'python');
    assert.match(file!.body, /configure_hub\(/);
    assert.equal(blocks.at(-1)?.kind, 'start', 'the start comes last');
  });

  test('the steps run in order, then the hub starts, a user logs in and gets JupyterLab', async () => {
    const [hubPort, hubApiPort, proxyApiPort, servicePort] = ports!.ports;
    const sub = (text: string, what: string) => {
      let t = text;
      if (t.includes('git clone <this repository> ngsci-src'))
        t = substitute(t, 'git clone <this repository> ngsci-src', 'true', what);
      if (t.includes('postgres://ngsci@127.0.0.1:5432/ngsci'))
        t = substitute(t, 'postgres://ngsci@127.0.0.1:5432/ngsci', db!.url, what);
      if (t.includes('service_port=10101'))
        t = substitute(t, 'service_port=10101', `service_port=${servicePort}`, what);
      return t.split('/opt/ngsci').join(opt).split('/srv/ngsci').join(srv);
    };

    // the "clone": what git would give, with this working tree's changes
    const t0 = Date.now();
    const list = await new Promise<string>((res, rej) => {
      const git = spawn('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
        cwd: ROOT,
      });
      let out = '';
      git.stdout.on('data', (d: Buffer) => (out += d.toString()));
      git.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(`git ls-files exited ${c}`))));
    });
    const files = list.split('\0').filter((f) => f && existsSync(join(ROOT, f)));
    writeFileSync(join(dir, 'files'), files.join('\0'));
    await runStep(
      `rsync -a --from0 --files-from=${join(dir, 'files')} ${ROOT}/ ${join(work, 'ngsci-src')}/`,
      work,
      logFile,
      env,
    );
    figure('copy of the working tree', (Date.now() - t0) / 1000);

    let n = 0;
    for (const block of blocks) {
      n++;
      const t = Date.now();
      if (block.kind === 'file') {
        const path = sub(block.path!, `block ${n}'s path`);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, sub(block.body, `block ${n}`));
        continue;
      }
      if (block.kind === 'step') {
        assert.equal(block.lang, 'sh', `block ${n} is a sh block`);
        await runStep(sub(block.body, `block ${n}`), work, logFile, env);
        figure(`step ${n}`, (Date.now() - t) / 1000);
        continue;
      }
      // the start: on free ports, in the background
      const config = join(opt, 'jupyterhub_config.py');
      writeFileSync(
        config,
        `${readFileSync(config, 'utf8')}\n# added by tests/deploy/install-guide.test.ts: free ports\n` +
          `c.JupyterHub.bind_url = "http://127.0.0.1:${hubPort}/"\n` +
          `c.JupyterHub.hub_port = ${hubApiPort}\n` +
          `c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:${proxyApiPort}"\n`,
      );
      url = `http://127.0.0.1:${hubPort}`;
      hub = bash(sub(block.body, 'start block'), work, logFile, env);
      hub.on('exit', (code, signal) => (hubExit = code ?? signal));
    }
    assert.ok(hub, 'the guide started the hub');

    // step 2's check, as the operator reads it
    const labList = readFileSync(logFile, 'utf8');
    assert.match(
      labList,
      /ngsci-labextension v[\d.]+ \S*enabled\S* \S*OK/,
      'jupyter labextension list shows it enabled',
    );

    const t1 = Date.now();
    await poll(
      'the hub to answer',
      300,
      async () => ((await fetch(`${url}/hub/api`)).ok ? true : null),
      hubAlive,
    );
    // the service answers through the hub's proxy (its health needs no token), on Postgres
    const health = await poll(
      'the service to answer through the hub',
      300,
      async () => {
        const r = await fetch(`${url}/services/ngsci/health`);
        return r.ok ? ((await r.json()) as { status: string; database: string }) : null;
      },
      hubAlive,
    );
    assert.deepEqual([health.status, health.database], ['ok', 'postgres']);
    figure('hub and service up', (Date.now() - t1) / 1000);

    // log in as the guide says: bob, with the password step 6 put in hub.env
    const password = /^NGSCI_TRY_PASSWORD=(\S+)$/m.exec(
      readFileSync(join(opt, 'hub.env'), 'utf8'),
    )?.[1];
    assert.ok(password, 'hub.env has the try-out password');
    const jar = new Jar();
    const page = await fetch(`${url}/hub/login`);
    jar.keep(page);
    const xsrf = /name="_xsrf"\s+value="([^"]+)"/.exec(await page.text())?.[1];
    assert.ok(xsrf, 'the login page has its form');
    const wrong = await fetch(`${url}/hub/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header },
      body: new URLSearchParams({ username: USER, password: 'not-the-password', _xsrf: xsrf }),
    });
    assert.notEqual(wrong.status, 302, 'a wrong password is refused');
    const login = await fetch(`${url}/hub/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header },
      body: new URLSearchParams({ username: USER, password, _xsrf: xsrf }),
    });
    assert.equal(login.status, 302, `${USER} logs in with the password`);
    jar.keep(login);
    const made = await fetch(`${url}/hub/api/users/${USER}/tokens`, {
      method: 'POST',
      headers: {
        cookie: jar.header,
        'x-xsrftoken': jar.cookies.get('_xsrf') ?? xsrf,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ note: 'install-guide test' }),
    });
    assert.equal(
      made.status,
      201,
      `a logged-in ${USER} makes a token: ${await made.clone().text()}`,
    );
    token = ((await made.json()) as { token: string }).token;

    const me = await api('/me');
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { name: string }).name, USER);

    const t2 = Date.now();
    const launched = await api('/instances', {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    assert.equal(launched.status, 202, await launched.clone().text());
    const running = await poll(
      'the instance to run',
      300,
      async () => {
        const i = (await (await api('/instances/default')).json()) as {
          state: string;
          url?: string;
        };
        return i.state === 'running' || i.state === 'failed' ? i : null;
      },
      hubAlive,
    );
    assert.equal(running.state, 'running', JSON.stringify(running));
    const lab = await poll('JupyterLab through the hub', 120, async () => {
      const r = await fetch(`${url}/user/${USER}/lab`, {
        headers: { authorization: `token ${token}` },
        redirect: 'manual',
      });
      return r.status === 200 ? r.text() : null;
    });
    figure('launch to JupyterLab', (Date.now() - t2) / 1000);
    const config =
      /<script id="jupyter-config-data" type="application\/json">([\s\S]*?)<\/script>/.exec(
        lab,
      )?.[1];
    assert.ok(config, 'the lab page carries its page config');
    const extensions =
      (JSON.parse(config) as { federated_extensions?: { name: string }[] }).federated_extensions ??
      [];
    assert.ok(
      extensions.some((e) => e.name === 'ngsci-labextension'),
      `JupyterLab lists the ngsci extension: ${extensions.map((e) => e.name).join(', ')}`,
    );
    figure('whole guide', (Date.now() - t0) / 1000);
  });
});
