/**
 * Opens the database: a Postgres server through postgres.js when DATABASE_URL is set, else an
 * embedded PGlite under the data dir. Both speak the same drizzle API and run the same migrations.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle as drizzlePg } from 'drizzle-orm/postgres-js';
import { migrate as migratePg } from 'drizzle-orm/postgres-js/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type Postgres from 'postgres';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  migrate(): Promise<void>;
  close(): Promise<void>;
  /**
   * LISTENs on `channel` and calls `onNotify` with each notification's payload; `onListen` runs
   * each time the LISTEN is in place, again after a lost connection came back (notifications sent
   * in between are lost, so a caller catches up then). Postgres: one connection of its own, kept
   * up by postgres.js. PGlite: its in-process notifications. Resolves to the way to stop.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onListen?: () => void,
  ): Promise<() => Promise<void>>;
  /**
   * LISTENs on `channel` on a connection of its own that says when it is lost: `onDrop` runs as
   * soon as the connection closes (notifications may be missed from then on), `onListen` each
   * time the LISTEN is in place again (it is retried until `stop`). For caches that must never
   * answer from memory while a change could go unheard (routes/read-cache.ts). PGlite: in-process
   * notifications, never lost.
   */
  watch(
    channel: string,
    handlers: { onNotify: (payload: string) => void; onListen: () => void; onDrop: () => void },
  ): Promise<() => Promise<void>>;
}

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle');

export async function openDatabase(opts: { url?: string; dataDir: string }): Promise<Database> {
  if (opts.url) {
    const { default: postgres } = await import('postgres');
    const client = postgres(opts.url, { max: 10, onnotice: () => {} });
    const db = drizzlePg(preparing(client), { schema });
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      migrate: () =>
        migrateOnce(opts.url!, () => migratePg(db, { migrationsFolder: MIGRATIONS_DIR })),
      close: () => client.end({ timeout: 5 }),
      listen: async (channel, onNotify, onListen) => {
        const { unlisten } = await client.listen(channel, onNotify, onListen);
        return unlisten;
      },
      watch: (channel, handlers) => watchPostgres(postgres, opts.url!, channel, handlers),
    };
  }
  const path = join(opts.dataDir, 'pglite');
  mkdirSync(path, { recursive: true });
  return openPglite(path);
}

/**
 * Database.watch on Postgres: one connection of its own (postgres.js's shared LISTEN connection
 * reconnects silently, so a cache could not tell that notifications were missed). Its `onclose`
 * is the drop; the LISTEN is then sent again, every 0.25–5 s until it is in place.
 */
async function watchPostgres(
  postgres: typeof Postgres,
  url: string,
  channel: string,
  h: { onNotify: (payload: string) => void; onListen: () => void; onDrop: () => void },
): Promise<() => Promise<void>> {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let delay = 250;
  const conn = postgres(url, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    fetch_types: false,
    onnotice: () => {},
    onnotify: (c: string, payload: string) => {
      if (c === channel) h.onNotify(payload);
    },
    onclose: () => {
      h.onDrop();
      if (!stopped) again();
    },
  } as Parameters<typeof postgres>[1]);
  const listen = async () => {
    await conn.unsafe(`listen "${channel.replace(/"/g, '""')}"`);
    delay = 250;
    h.onListen();
  };
  const again = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      listen().catch(() => {
        delay = Math.min(delay * 2, 5000);
        again();
      });
    }, delay);
    timer.unref();
  };
  try {
    await listen();
  } catch (err) {
    stopped = true;
    await conn.end({ timeout: 1 }).catch(() => undefined);
    throw err;
  }
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await conn.end({ timeout: 5 });
  };
}

/** The part of a postgres.js client (a pool, or one transaction's connection) drizzle calls. */
interface SqlLike {
  unsafe(query: string, params?: unknown[], opts?: { prepare?: boolean }): unknown;
  begin(...args: unknown[]): unknown;
  savepoint(...args: unknown[]): unknown;
  options: { prepare?: boolean };
}

/**
 * Server-side prepared statements for every query drizzle sends. drizzle asks postgres.js not to
 * prepare any statement it did not name (`prepare: false`), so each query was parsed and planned
 * by Postgres every time; prepared, a connection parses a statement once and the service sends
 * only its parameters after that. The pool's own setting decides: postgres.js prepares unless
 * `PGPREPARE=false` is in the environment or DATABASE_URL ends in `?prepare=false`, which a pooler
 * in transaction mode needs (PgBouncer before 1.21 or without `max_prepared_statements`;
 * docs/operations.md). Statements whose text varies (a list's length) are prepared once per
 * variant and connection, and a connection is replaced after postgres.js's max_lifetime (30–60
 * min), so that set stays bounded. A statement a migration invalidated is sent again unprepared by
 * postgres.js itself.
 */
function preparing<T>(client: T): T {
  const sqlLike = client as unknown as SqlLike;
  // false from `?prepare=false`; the text 'false' from the PGPREPARE environment variable
  const setting = sqlLike.options.prepare as boolean | string | undefined;
  if (setting === false || setting === 'false') return client;
  const wrap = (c: SqlLike): SqlLike =>
    new Proxy(c, {
      get(target, key, receiver) {
        if (key === 'unsafe')
          return (query: string, params?: unknown[], opts?: { prepare?: boolean }) =>
            target.unsafe(query, params, { ...opts, prepare: true });
        // a transaction (and a savepoint within one) runs on a connection of its own
        if (key === 'begin' || key === 'savepoint')
          return (...args: unknown[]) => {
            const i = args.findIndex((a) => typeof a === 'function');
            const fn = args[i] as (c: SqlLike) => unknown;
            const copy = [...args];
            copy[i] = (inner: SqlLike) => fn(wrap(inner));
            return (target[key] as (...a: unknown[]) => unknown)(...copy);
          };
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
  return wrap(sqlLike) as unknown as T;
}

/**
 * Runs the migrations while holding a Postgres advisory lock on a connection of its own: replicas
 * that start together would otherwise apply the same migration at once, and all but one fail.
 * The others wait, then find nothing left to apply.
 */
async function migrateOnce(url: string, migrate: () => Promise<void>): Promise<void> {
  const { default: postgres } = await import('postgres');
  const lock = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate();
  } finally {
    // ending the connection releases the lock
    await lock.end({ timeout: 5 });
  }
}

/** The advisory lock key of migrations ("ngsm"); the meter's lock uses another. */
const MIGRATION_LOCK = 0x6e67736d;

async function openPglite(path?: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const client = await PGlite.create(path);
  const db = drizzlePglite(client, { schema });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_DIR }),
    close: () => client.close(),
    listen: async (channel, onNotify, onListen) => {
      const unlisten = await client.listen(channel, onNotify);
      // one process, one database: the LISTEN cannot be lost and come back
      onListen?.();
      return () => unlisten();
    },
    watch: async (channel, h) => {
      const unlisten = await client.listen(channel, h.onNotify);
      h.onListen();
      return () => unlisten();
    },
  };
}

/** In-memory PGlite for unit tests: one per test file. */
export async function openMemoryDatabase(): Promise<Database> {
  return openPglite();
}

/** Built-in plans, inserted if missing (admins may add more, and change the labels). */
export async function seed(db: Db): Promise<void> {
  await db
    .insert(schema.plans)
    .values([
      { id: 'nonprofit', label: 'Non-profit research (free)', multiplierPpm: 0, builtIn: true },
      { id: 'private', label: 'Private (list price)', multiplierPpm: 1_000_000, builtIn: true },
    ])
    .onConflictDoNothing();
}
