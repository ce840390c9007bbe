/**
 * A private Postgres cluster for fault tests: its own data directory, port and processes, so a
 * test may stop, restart or starve it of disk without touching the shared server others use.
 * Postgres refuses to run as root, so as root every step runs as the `postgres` user (runuser).
 * Whatever is still up when the process exits (a failed test, a timeout's SIGTERM) is stopped
 * and removed, tmpfs mounts included.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivatePostgres {
  port: number;
  /** the cluster's data directory */
  dataDir: string;
  /** the server's log file (Postgres's own words when a test fails) */
  logFile: string;
  /** postgres:// URL of a database of this cluster (default: `postgres`) */
  url(database?: string): string;
  /** creates a database and answers its URL */
  createDatabase(name: string): Promise<string>;
  start(): Promise<void>;
  /** fast: sessions are ended, a clean shutdown; immediate: as if the server crashed */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  running(): boolean;
  /** stops the server and removes its directory (and unmounts what this module mounted) */
  close(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** where the data directory goes (e.g. a tmpfs from mountTmpfs); default a new temp dir */
  parentDir?: string;
  /** WAL segment size in MB (initdb --wal-segsize): small segments for a small disk */
  walSegmentMb?: number;
  /** extra postgresql.conf settings */
  settings?: Record<string, string | number>;
}

const cleanups = new Set<() => void>();
let hooked = false;

function onExit(fn: () => void): () => void {
  cleanups.add(fn);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const f of [...cleanups].reverse()) {
        try {
          f();
        } catch {
          // best effort: the process is going away
        }
      }
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));
    }
  }
  return () => cleanups.delete(fn);
}

/** The newest Postgres server binaries on this machine (NGSCI_PG_BIN overrides). */
export function postgresBinDir(): string {
  const fromEnv = process.env.NGSCI_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length)
    throw new Error(
      'no Postgres server binaries under /usr/lib/postgresql (apt-get install postgresql), ' +
        'or set NGSCI_PG_BIN to the directory holding initdb and pg_ctl',
    );
  return join(root, versions[0]!, 'bin');
}

const isRoot = () => process.getuid?.() === 0;

function postgresIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Runs a Postgres tool, as the postgres user when we are root. */
function pgTool(tool: string, args: string[], timeoutMs = 60_000): string {
  const bin = join(postgresBinDir(), tool);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const res = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs, cwd: '/' });
  if (res.status !== 0)
    throw new Error(
      `${tool} ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr || res.stdout}`,
    );
  return res.stdout;
}

/** pgTool without blocking the event loop: the service under test goes on meanwhile. */
function pgToolAsync(tool: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const bin = join(postgresBinDir(), tool);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      argv,
      { encoding: 'utf8', timeout: timeoutMs, cwd: '/' },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(
              `${tool} ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr || stdout}`,
            ),
          );
        else resolve(stdout);
      },
    );
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Mounts a tmpfs of `sizeMb` on a new directory: a small disk a test can fill. Needs root (or
 * CAP_SYS_ADMIN); a refusal throws with the reason, it never falls back to an unbounded disk.
 */
export function mountTmpfs(sizeMb: number): { dir: string; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-tmpfs-'));
  const res = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'tmpfs', dir], {
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `cannot mount a ${sizeMb} MB tmpfs for the full-disk test (mount -t tmpfs needs root or ` +
        `CAP_SYS_ADMIN): ${(res.stderr || res.error?.message || `exit ${res.status}`).trim()}`,
    );
  }
  if (isRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  let mounted = true;
  const unmount = () => {
    if (!mounted) return;
    mounted = false;
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
    forget();
  };
  const forget = onExit(unmount);
  return { dir, unmount };
}

export async function startPrivatePostgres(
  opts: PrivatePostgresOptions = {},
): Promise<PrivatePostgres> {
  const parent = opts.parentDir ?? mkdtempSync(join(tmpdir(), 'ngsci-pg-'));
  const ownParent = !opts.parentDir;
  const dataDir = join(parent, 'data');
  if (isRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(parent, uid, gid);
  }
  pgTool('initdb', [
    '-D',
    dataDir,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
    '--no-locale',
    ...(opts.walSegmentMb ? ['--wal-segsize', String(opts.walSegmentMb)] : []),
  ]);
  const port = await freePort();
  // beside, not inside, the data directory: a full disk must not silence the server's log
  const logFile = join(tmpdir(), `ngsci-pg-${port}-${process.pid}.log`);
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: "''",
    fsync: 'off',
    full_page_writes: 'off',
    max_connections: 50,
    shared_buffers: "'16MB'",
    log_min_messages: 'warning',
    ...opts.settings,
  };
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    `\n# private cluster for ngsci fault tests\n${Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`,
  );

  let up = false;
  const stopSync = () => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) {
      try {
        pgTool('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '20'], 30_000);
      } catch {
        // already gone
      }
    }
    up = false;
  };
  const removeSync = () => {
    stopSync();
    rmSync(ownParent ? parent : dataDir, { recursive: true, force: true });
    rmSync(logFile, { force: true });
  };
  const forget = onExit(removeSync);

  const pg: PrivatePostgres = {
    port,
    dataDir,
    logFile,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const { default: postgres } = await import('postgres');
      const admin = postgres(pg.url(), { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`create database ${name}`);
      } finally {
        await admin.end({ timeout: 2 });
      }
      return pg.url(name);
    },
    async start() {
      await pgToolAsync(
        'pg_ctl',
        ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30'],
        40_000,
      );
      up = true;
    },
    async stop(mode = 'fast') {
      await pgToolAsync('pg_ctl', ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '30'], 40_000);
      up = false;
    },
    async restart(mode = 'fast') {
      await pg.stop(mode);
      await pg.start();
    },
    running: () => up,
    async close() {
      removeSync();
      forget();
    },
  };
  await pg.start();
  return pg;
}
