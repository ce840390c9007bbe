#!/usr/bin/env node
/**
 * `npm start`: sets up what is missing, then runs JupyterHub (with configurable-http-proxy and
 * hub-service as a managed service) on one machine, and prints how to log in. Ctrl-C stops it all.
 *
 * Options (all optional): --port N (8000), --ip ADDR (127.0.0.1), --data-dir DIR (.ngsci),
 * --database-url URL (else DATABASE_URL, else embedded PGlite), --free-ports (pick free ports for
 * everything: test mode), --skip-setup, --json (print one JSON line when ready, for tests),
 * --log FILE (send the hub's and service's output to a file instead of the terminal).
 * The internal ports come from NGSCI_HUB_API_PORT (8081), NGSCI_PROXY_API_PORT (8001) and
 * NGSCI_SERVICE_PORT (10101) when set; the test stacks reserve theirs (tests/src/ports.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, VENV, setup } from './setup.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    ip: { type: 'string' },
    'data-dir': { type: 'string' },
    'database-url': { type: 'string' },
    'free-ports': { type: 'boolean', default: false },
    'skip-setup': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    log: { type: 'string' },
    'test-token': { type: 'string' },
  },
  strict: true,
});

function fail(message) {
  console.error(`ngsci: ${message}`);
  process.exit(2);
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function portArg(value, name) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    fail(`${name} must be a port number (1-65535), not '${value}'`);
  return n;
}

const dataDir = resolve(args['data-dir'] ?? process.env.NGSCI_DATA_DIR ?? join(ROOT, '.ngsci'));
const databaseUrl = args['database-url'] ?? process.env.DATABASE_URL;
if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl))
  fail('--database-url / DATABASE_URL must be a postgres:// URL');

const say = args.json ? () => {} : (m) => console.log(m);

if (!args['skip-setup']) {
  try {
    setup({ log: say });
  } catch (err) {
    fail(`setup failed: ${err.message}`);
  }
}

// the data dir holds the secrets below, the database and the logs: the service's account only
mkdirSync(dataDir, { recursive: true, mode: 0o700 });

/**
 * The login file: each printed user's own password and the bridge secret. Written 0600 from the
 * start (a secret must never exist with wider rights, even for a moment), replaced atomically.
 */
const loginFile = join(dataDir, 'local-login.json');
function writeSecretFile(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2), { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

/**
 * NGSCI_SECRET_KEY, the key of the secrets the service keeps at rest: the operator's if set, else
 * one generated for this data dir on the first start and kept in `secret-key` (0600 from its
 * creation; linked into place only if absent, so two starts at once agree on one key).
 */
function secretKey() {
  if (process.env.NGSCI_SECRET_KEY) return process.env.NGSCI_SECRET_KEY;
  const file = join(dataDir, 'secret-key');
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return readFileSync(file, 'utf8').trim();
}
const newSecret = (bytes) => randomBytes(bytes).toString('base64url');
const stored = existsSync(loginFile) ? JSON.parse(readFileSync(loginFile, 'utf8')) : {};
const login = {
  researcher: stored.researcher ?? 'researcher',
  admin: stored.admin ?? 'admin',
  passwords: stored.passwords ?? {},
  bridgeSecret: stored.bridgeSecret ?? newSecret(32),
};
// a file from before per-user passwords held one shared `password`: every user gets a new one
let changed = !existsSync(loginFile) || 'password' in stored;
for (const user of [login.researcher, login.admin]) {
  if (!login.passwords[user]) {
    login.passwords[user] = newSecret(12);
    changed = true;
  }
}
if (changed) writeSecretFile(loginFile, login);

// local instances share this machine's uid unless NGSCI_LOCAL_ISOLATION=users (which needs root):
// `npm start` is a demo, so by default every user may share it, with a warning printed below
const isolation = process.env.NGSCI_LOCAL_ISOLATION || 'shared';
const sharedDemo =
  isolation === 'shared' && (process.env.NGSCI_LOCAL_SHARED_DEMO || 'true') !== 'false';

const free = args['free-ports'];
/** A port from the environment (test stacks reserve their own), else null. */
const envPort = (name) => (process.env[name] ? portArg(process.env[name], name) : null);
const ports = {
  hub: args.port ? portArg(args.port, '--port') : free ? await freePort() : 8000,
  hubApi: envPort('NGSCI_HUB_API_PORT') ?? (free ? await freePort() : 8081),
  proxyApi: envPort('NGSCI_PROXY_API_PORT') ?? (free ? await freePort() : 8001),
  service: envPort('NGSCI_SERVICE_PORT') ?? (free ? await freePort() : 10101),
};
const ip = args.ip ?? '127.0.0.1';

const env = {
  ...process.env,
  NGSCI_ROOT: ROOT,
  NGSCI_VENV: VENV,
  NGSCI_DATA_DIR: dataDir,
  NGSCI_HUB_IP: ip,
  NGSCI_HUB_PORT: String(ports.hub),
  NGSCI_HUB_API_PORT: String(ports.hubApi),
  NGSCI_PROXY_API_PORT: String(ports.proxyApi),
  NGSCI_SERVICE_PORT: String(ports.service),
  NGSCI_LOGIN_FILE: loginFile,
  // the local password login is for this one-machine demo only (deploy/jupyterhub_config.py)
  NGSCI_DEMO: '1',
  NGSCI_LOCAL_ISOLATION: isolation,
  NGSCI_LOCAL_SHARED_DEMO: String(sharedDemo),
  NGSCI_USERS: login.researcher,
  NGSCI_ADMINS: login.admin,
  NGSCI_BRIDGE_SECRET: login.bridgeSecret,
  NGSCI_SECRET_KEY: secretKey(),
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  ...(args['test-token'] ? { NGSCI_TEST_ADMIN_TOKEN: args['test-token'] } : {}),
  PATH: `${join(VENV, 'bin')}:${process.env.PATH ?? ''}`,
};
if (!databaseUrl) delete env.DATABASE_URL;

const hubDir = join(dataDir, 'hub');
mkdirSync(hubDir, { recursive: true, mode: 0o700 });
// the log holds the service's debug output: private like everything in the data dir
const output = args.log ? openSync(args.log, 'a', 0o600) : 'inherit';
const startHub = () =>
  spawn(join(VENV, 'bin', 'jupyterhub'), ['-f', join(ROOT, 'deploy', 'jupyterhub_config.py')], {
    cwd: hubDir,
    env,
    stdio: ['ignore', output, output],
  });
let hub = startHub();
// while this file exists, the service leaves local instances running when it stops
const keepInstancesMarker = join(dataDir, 'run', 'keep-instances');

let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say('\nngsci: stopping JupyterHub, the service and every local instance');
  if (hub.exitCode === null) {
    hub.kill('SIGTERM');
    const done = await Promise.race([
      new Promise((r) => hub.once('exit', () => r(true))),
      new Promise((r) => setTimeout(() => r(false), 30_000)),
    ]);
    if (!done) hub.kill('SIGKILL');
  }
  killLeftovers();
  killProxyLeftover();
  process.exit(code);
}

/** A proxy the hub could not stop (the hub crashed, e.g. when the service failed to start). */
function killProxyLeftover() {
  const pidFile = join(hubDir, 'jupyterhub-proxy.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(pidFile, { force: true });
}

/** Instances whose pid files remain (the service was killed before it could stop them). */
function killLeftovers() {
  const runDir = join(dataDir, 'run');
  if (!existsSync(runDir)) return;
  for (const f of readdirSync(runDir).filter((n) => n.endsWith('.pid'))) {
    const pid = Number(readFileSync(join(runDir, f), 'utf8'));
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(join(runDir, f), { force: true });
  }
}

/**
 * SIGUSR2 restarts JupyterHub (and with it the service) while instances keep running, as an
 * operator's hub restart or upgrade would: the new service adopts them.
 */
let restarting = false;
async function restartHub() {
  if (stopping || restarting) return;
  restarting = true;
  say('ngsci: restarting JupyterHub; instances keep running');
  mkdirSync(join(dataDir, 'run'), { recursive: true, mode: 0o700 });
  writeFileSync(keepInstancesMarker, String(process.pid));
  const exited = new Promise((r) => hub.once('exit', r));
  hub.kill('SIGTERM');
  await exited;
  rmSync(keepInstancesMarker, { force: true });
  if (stopping) return;
  hub = startHub();
  watchHub();
  restarting = false;
}

function watchHub() {
  hub.on('exit', (code, signal) => {
    if (!stopping && !restarting) {
      console.error(`ngsci: JupyterHub exited (${code ?? signal}); see the output above`);
      void shutdown(1);
    }
  });
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
// the terminal went away
process.on('SIGHUP', () => void shutdown(0));
process.on('SIGUSR2', () => void restartHub());
watchHub();
// whoever started us is gone (a closed terminal, a killed test runner): stop rather than linger
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown(0);
}, 2000).unref();

async function waitFor(url, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (stopping) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

// with the hub's own certificate the proxy serves https (docs/install.md, "TLS")
const scheme = process.env.NGSCI_HUB_SSL_CERT ? 'https' : 'http';
const base = `${scheme}://${ip === '0.0.0.0' ? '127.0.0.1' : ip}:${ports.hub}`;
const ready =
  (await waitFor(`${base}/hub/api/`, 120)) && (await waitFor(`${base}/services/ngsci/health`, 120));
if (!ready) {
  console.error('ngsci: JupyterHub or the ngsci service did not come up within 120 s');
  await shutdown(1);
}

if (args.json) {
  console.log(
    JSON.stringify({
      ready: true,
      url: base,
      ports,
      dataDir,
      database: databaseUrl ? 'postgres' : 'pglite',
      users: { researcher: login.researcher, admin: login.admin },
      password: login.passwords[login.researcher],
      passwords: login.passwords,
      localIsolation: { mode: isolation, sharedDemo },
      bridgeSecret: login.bridgeSecret,
      pid: process.pid,
    }),
  );
} else {
  const width = Math.max(login.researcher.length, login.admin.length);
  console.log(`
  ngsci is running at ${base}/hub/login

    researcher:  ${login.researcher.padEnd(width)}   password: ${login.passwords[login.researcher]}
    admin:       ${login.admin.padEnd(width)}   password: ${login.passwords[login.admin]}
    (kept in ${loginFile}, readable by this account only)
${
  sharedDemo
    ? `
  WARNING: local instances run as this machine's one account (${
    process.getuid?.() === 0 ? 'root' : 'yours'
  }), shared by every
  user: each can read the others' files and this service's secrets. This is a demo: do not
  use it for sensitive data. NGSCI_LOCAL_ISOLATION=users (as root) gives each user an account.
`
    : ''
}
  Database: ${databaseUrl ? 'Postgres (DATABASE_URL)' : `embedded PGlite in ${join(dataDir, 'pglite')}`}
  Ctrl-C stops JupyterHub, the service and every instance.
`);
}
