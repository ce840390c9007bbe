/**
 * Starts the whole product the way `npm start` does (scripts/start.mjs), on free ports and in a
 * fresh data dir, for one test file. With `database: 'postgres'` the service uses a new database
 * on the Postgres server at NGSCI_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { reservePorts } from './ports.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PG_ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface StackInfo {
  url: string;
  ports: { hub: number; hubApi: number; proxyApi: number; service: number };
  dataDir: string;
  database: 'postgres' | 'pglite';
  users: { researcher: string; admin: string };
  /** the researcher's password (each user has their own: `passwords`) */
  password: string;
  /** every printed user's own password, by user name */
  passwords: Record<string, string>;
  /** how local instances are isolated (NGSCI_LOCAL_ISOLATION, NGSCI_LOCAL_SHARED_DEMO) */
  localIsolation: { mode: 'users' | 'shared'; sharedDemo: boolean };
  bridgeSecret: string;
}

export interface Stack extends StackInfo {
  adminToken: string;
  logFile: string;
  databaseUrl: string | null;
  /** the hub's REST API with the test service's admin token */
  hub(path: string, init?: RequestInit): Promise<Response>;
  /** the ngsci API through the proxy, as the hub's users reach it */
  api(path: string, token: string | null, init?: RequestInit): Promise<Response>;
  /** a new token of a user, with the given scopes (default: everything the user may do) */
  userToken(user: string, scopes?: string[]): Promise<string>;
  pidOf(instanceId: string): number | null;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** pid of the start script (the `npm start` process) */
  pid: number;
  logTail(lines?: number): string;
}

export async function createPostgresDatabase(): Promise<{
  url: string;
  drop: () => Promise<void>;
}> {
  const name = `ngsci_it_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** A stack on a Postgres database of its own, with a SQL client on that database. */
export interface PostgresStack {
  stack: Stack;
  sql: postgres.Sql;
  /** ends the client, stops the stack and drops the database */
  stop(): Promise<void>;
}

/**
 * Starts a stack on a fresh Postgres database with a fast meter (every second, no home disks)
 * plus `env`, and creates the hub `users` (an existing user is fine).
 */
export async function startPostgresStack(
  env: Record<string, string>,
  users: readonly string[] = [],
): Promise<PostgresStack> {
  const pg = await createPostgresDatabase();
  const stack = await startStack({
    database: 'postgres',
    databaseUrl: pg.url,
    env: { NGSCI_METER_INTERVAL: '1', NGSCI_METER_ACCRUE_EVERY: '1', NGSCI_HOME_GB: '0', ...env },
  });
  const sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  for (const u of users) {
    const res = await stack.hub(`/users/${u}`, { method: 'POST', body: '{}' });
    if (res.status !== 201 && res.status !== 409)
      throw new Error(`creating the hub user ${u}: ${res.status} ${await res.text()}`);
  }
  return {
    stack,
    sql,
    stop: async () => {
      await sql.end();
      await stack.stop();
      await pg.drop();
    },
  };
}

/**
 * Signs, in the stack's output, that a component could not bind its port: node's (the proxy, the
 * service) and Python's (the hub). When a stranger holds the proxy's API port, the hub then gets
 * 404s from it, but the proxy has logged its EADDRINUSE first.
 */
const BIND_FAILURE = /EADDRINUSE|address already in use|Errno 98/i;

export async function startStack(opts: {
  database: 'postgres' | 'pglite';
  env?: Record<string, string>;
  dataDir?: string;
  databaseUrl?: string;
}): Promise<Stack> {
  let pg: { url: string; drop: () => Promise<void> } | null = null;
  let databaseUrl = opts.databaseUrl ?? null;
  if (opts.database === 'postgres' && !databaseUrl) {
    pg = await createPostgresDatabase();
    databaseUrl = pg.url;
  }
  try {
    return await startOnce(opts, databaseUrl, pg);
  } catch (e) {
    if (!(e instanceof StackBindError)) {
      await pg?.drop().catch(() => {});
      throw e;
    }
    // ports are reserved, so this is someone binding outside the reservation: one more try
    console.error(`stack: ${e.message.split('\n')[0]}; retrying once with fresh ports`);
    try {
      return await startOnce(opts, databaseUrl, pg);
    } catch (again) {
      await pg?.drop().catch(() => {});
      throw again;
    }
  }
}

/** The stack could not bind a port: the one failure that a second try with new ports may cure. */
class StackBindError extends Error {}

async function startOnce(
  opts: { env?: Record<string, string>; dataDir?: string },
  databaseUrl: string | null,
  pg: { drop: () => Promise<void> } | null,
): Promise<Stack> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'ngsci-it-'));
  const logFile = join(dataDir, 'stack.log');
  const reservation = await reservePorts(4);
  const [hubPort, hubApiPort, proxyApiPort, servicePort] = reservation.ports as [
    number,
    number,
    number,
    number,
  ];
  const adminToken = randomBytes(24).toString('hex');
  const args = [
    join(ROOT, 'scripts', 'start.mjs'),
    '--free-ports',
    '--port',
    String(hubPort),
    '--json',
    '--skip-setup',
    '--data-dir',
    dataDir,
    '--log',
    logFile,
    '--test-token',
    adminToken,
  ];
  if (databaseUrl) args.push('--database-url', databaseUrl);
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NGSCI_LOG_LEVEL: 'debug',
    // the start script takes these over its own picks (the hub's port is `--port`)
    NGSCI_HUB_API_PORT: String(hubApiPort),
    NGSCI_PROXY_API_PORT: String(proxyApiPort),
    NGSCI_SERVICE_PORT: String(servicePort),
    ...opts.env,
  };
  delete env.DATABASE_URL;
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let info: StackInfo;
  try {
    info = await new Promise<StackInfo>((resolvePromise, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
        if (line) resolvePromise(JSON.parse(line) as StackInfo);
      });
      child.once('exit', (code) => {
        const log = tail(logFile, 60);
        const message = `the stack exited (${code}) before it was ready:\n${err}\n${log}`;
        const bind = BIND_FAILURE.exec(`${err}\n${readOr(logFile)}`);
        reject(
          bind
            ? new StackBindError(`a port was taken (${bind[0]}): ${message}`)
            : new Error(message),
        );
      });
    });
  } catch (e) {
    reservation.release();
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }

  const hub = (path: string, init: RequestInit = {}) =>
    fetch(`${info.url}/hub/api${path}`, {
      ...init,
      headers: {
        authorization: `token ${adminToken}`,
        'content-type': 'application/json',
        ...(init.headers as object),
      },
    });

  const stack: Stack = {
    ...info,
    adminToken,
    logFile,
    databaseUrl,
    hub,
    api(path, token, init = {}) {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(init.headers as Record<string, string>),
      };
      if (token) headers.authorization = `token ${token}`;
      return fetch(`${info.url}/services/ngsci/api/v1${path}`, { ...init, headers });
    },
    async userToken(user, scopes) {
      const res = await hub(`/users/${encodeURIComponent(user)}/tokens`, {
        method: 'POST',
        body: JSON.stringify({
          note: 'ngsci test',
          expires_in: 3600,
          ...(scopes ? { scopes } : {}),
        }),
      });
      if (!res.ok) throw new Error(`token for ${user}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    pidOf(instanceId) {
      const f = join(dataDir, 'run', `${instanceId}.pid`);
      return existsSync(f) ? Number(readFileSync(f, 'utf8')) : null;
    },
    pid: child.pid!,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) {
        child.kill(signal);
        await new Promise((r) => child.once('exit', r));
      }
      reservation.release();
      await pg?.drop().catch(() => {});
      if (!process.env.NGSCI_TEST_KEEP) rmSync(dataDir, { recursive: true, force: true });
    },
    logTail: (lines = 80) => tail(logFile, lines),
  };
  return stack;
}

function tail(file: string, lines: number): string {
  return readOr(file, '(no log)').split('\n').slice(-lines).join('\n');
}

function readOr(file: string, otherwise = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return otherwise;
  }
}

export async function until<T>(
  fn: () => Promise<T | null | undefined | false>,
  what: string,
  seconds = 60,
  stack?: Stack,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${seconds}s waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${stack ? `\n--- log ---\n${stack.logTail()}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A user's server as the hub's REST API shows it, once the hub calls it ready. The service says
 * `running` once the server answers; the hub marks it ready a moment later, after its own check
 * of the server and its proxy route (longer on a loaded machine). `server` is '' for the default.
 */
export function hubServerReady(
  stack: Stack,
  user: string,
  server = '',
  seconds = 60,
): Promise<{ ready: boolean; user_options: Record<string, unknown> }> {
  return until(
    async () => {
      const u = (await (await stack.hub(`/users/${user}`)).json()) as {
        servers: Record<string, { ready: boolean; user_options: Record<string, unknown> }>;
      };
      const s = u.servers[server];
      return s?.ready ? s : null;
    },
    `the hub to call ${user}'s server ${server || '(default)'} ready`,
    seconds,
    stack,
  );
}

/** Alive and not a zombie (a reparented child that nobody reaped still answers kill(pid, 0)). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

/** A process's environment, as /proc shows it (root, or the same uid). */
export function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/**
 * The agent process the service started beside a local instance. Its credential is in its own
 * environment only (the server does not inherit it); tests that run a second agent with recorded
 * tools borrow it from there, as any process of the same uid could (docs/security.md).
 */
export function agentPidOf(instanceId: string): number | null {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!cmd.includes('agent')) continue;
      const env = environOf(Number(d));
      if (env.NGSCI_INSTANCE_ID === instanceId && env.NGSCI_AGENT_TOKEN) return Number(d);
    } catch {
      // a process that ended meanwhile
    }
  }
  return null;
}
