/**
 * The read routes' cache of what changes only when something is written: per user, the settled
 * part of each figure (ledger sums, the open streams' instance rows and newest ends, the instance
 * list, the limits), never the live part, which every request still computes from the clock
 * (metering/live.ts), so an answer from the cache is byte for byte the one the database would give.
 *
 * Kept exact three ways:
 * - the database announces every write those reads depend on, whoever makes it (the meter leader,
 *   another replica, an admin's SQL), on READS_CHANNEL (migration 0019_read_cache_notify: triggers
 *   on usage_intervals, gpu_idle_intervals, instances, quotas, idle_choices); each notification
 *   drops the users it names, or everything;
 * - a write request answered by this replica drops its caller's and its subject's entries before
 *   the answer leaves, so a client reads its own write at once (app.ts);
 * - the cache answers only while its LISTEN connection is up: when it drops, everything is
 *   forgotten and nothing is kept until the LISTEN is in place again (then everything is forgotten
 *   once more, for what was written in between) and a notification the cache sent itself through
 *   the service's pool has come back through it. A read that began before a drop or a change of
 *   its user is not kept.
 *
 * What the cache never hears of (price overrides, plans: not per user) is not kept unchecked: GET
 * /budget keeps the user's limits and their JSON here, and takes the per-size runway (rates, quota
 * refusals, the JSON around the figures the spend sets) from templates looked up per request by
 * the catalog object, the plan's multiplier, the GPU-hours state and those limits
 * (metering/budgets.ts budgetJson); GET /me keeps each user's JSON while the cache is active,
 * checked on every request against the caller, the plan in memory and the isolation setting
 * (routes/me.ts).
 *
 * Off with NGSCI_READ_CACHE=off (then every read asks the database, as before).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Context } from 'hono';
import type { Database } from '../db/client.js';
import type { AppEnv } from '../http.js';
import type { Logger } from '../logger.js';

/** The Postgres channel on which the database announces writes the read routes depend on. */
export const READS_CHANNEL = 'ngsci_reads';

/** Users kept at most (the least recently filled go first). */
const MAX_USERS = 20_000;
/** Values kept at most per user (different ranges of the usage chart, say). */
const MAX_KEYS = 32;

interface Fill {
  void: boolean;
}

interface Entry {
  values: Map<string, unknown>;
  /** fills under way for this user, voided when the user's reads change */
  fills: Set<Fill>;
}

export class ReadCache {
  private listening = false;
  /** the notification the cache sent itself and waits to hear before it answers */
  private probe: string | null = null;
  private readonly users = new Map<string, Entry>();
  /** fills under way, voided when everything is forgotten */
  private readonly fills = new Set<Fill>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** counts, for tests and the bench */
  readonly stats = { hits: 0, misses: 0, drops: 0, cleared: 0 };

  constructor(private readonly opts: { enabled: boolean } = { enabled: true }) {}

  /** Whether answers may come from memory now (on, and the LISTEN is in place). */
  get active(): boolean {
    return this.opts.enabled && this.listening;
  }

  /** Whether something is kept for `user`. */
  holds(user: string): boolean {
    return (this.users.get(user)?.values.size ?? 0) > 0;
  }

  /** How many users have something kept. */
  get size(): number {
    return this.users.size;
  }

  /**
   * The value of `key` for `user`: from memory when kept, else `load()`'s, kept if nothing the
   * user's reads depend on changed (nor the LISTEN dropped) while it was read. Concurrent misses
   * of the same value share one load.
   */
  async get<T>(user: string, key: string, load: () => Promise<T>): Promise<T> {
    if (!this.active) return load();
    const entry = this.users.get(user);
    if (entry?.values.has(key)) {
      this.stats.hits++;
      return entry.values.get(key) as T;
    }
    this.stats.misses++;
    const id = `${user}\u0000${key}`;
    const shared = this.inflight.get(id);
    if (shared) return shared as Promise<T>;
    const fill: Fill = { void: false };
    const e = entry ?? this.entry(user);
    e.fills.add(fill);
    this.fills.add(fill);
    const settle = () => {
      e.fills.delete(fill);
      this.fills.delete(fill);
      if (this.inflight.get(id) === loading) this.inflight.delete(id);
    };
    const loading: Promise<T> = load().then(
      (value) => {
        settle();
        if (!fill.void && this.active && this.users.get(user) === e) {
          if (e.values.size >= MAX_KEYS) e.values.delete(e.values.keys().next().value!);
          e.values.set(key, value);
        }
        return value;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
    this.inflight.set(id, loading);
    return loading;
  }

  /** Forgets what is kept for these users (a write touched their reads). */
  forget(users: Iterable<string>): void {
    for (const u of users) {
      const e = this.users.get(u);
      if (!e) continue;
      for (const f of e.fills) f.void = true;
      this.users.delete(u);
      for (const id of this.inflight.keys())
        if (id.startsWith(`${u}\u0000`)) this.inflight.delete(id);
    }
  }

  /** Forgets everything, and voids every read under way. */
  clear(): void {
    this.stats.cleared++;
    for (const f of this.fills) f.void = true;
    this.users.clear();
    this.inflight.clear();
  }

  /** A notification on READS_CHANNEL: a JSON array of user names, or '*' (anything else: all). */
  heard(payload: string): void {
    if (this.probe !== null && payload === this.probe) {
      // our own notification came back through the LISTEN: it hears what the database sends
      this.probe = null;
      this.clear();
      this.listening = true;
      return;
    }
    let users: unknown;
    try {
      users = payload === '*' ? null : JSON.parse(payload);
    } catch {
      users = null;
    }
    if (Array.isArray(users) && users.every((u) => typeof u === 'string'))
      this.forget(users as string[]);
    else this.clear();
  }

  /**
   * The LISTEN is in place: what was written before it may have gone unheard. With `send`, the
   * cache answers only once a notification it sends itself through the database has come back
   * (a pooler in transaction mode, which would hand it to another session, never lets it).
   */
  listened(send?: (payload: string) => Promise<void>): void {
    this.clear();
    if (!send) {
      this.listening = true;
      return;
    }
    this.listening = false;
    const probe = `probe:${randomUUID()}`;
    this.probe = probe;
    send(probe).catch(() => {
      if (this.probe === probe) this.probe = null;
    });
  }

  /** The LISTEN connection is gone: nothing is answered from memory until it is back. */
  dropped(): void {
    this.stats.drops++;
    this.listening = false;
    this.probe = null;
    this.clear();
  }

  /**
   * Starts following READS_CHANNEL on a connection of the cache's own (Database.watch). Without
   * it (off, or the LISTEN failed) the cache stays inactive: every read asks the database.
   */
  async follow(opts: {
    database: Pick<Database, 'watch' | 'db'>;
    logger: Pick<Logger, 'warn'>;
  }): Promise<() => Promise<void>> {
    if (!this.opts.enabled) return async () => {};
    const send = async (payload: string) => {
      await opts.database.db.execute(sql`select pg_notify(${READS_CHANNEL}, ${payload})`);
    };
    try {
      const stop = await opts.database.watch(READS_CHANNEL, {
        onNotify: (p) => this.heard(p),
        onListen: () => this.listened(send),
        onDrop: () => this.dropped(),
      });
      return async () => {
        this.dropped();
        await stop();
      };
    } catch (err) {
      opts.logger.warn(
        { err: (err as Error).message, channel: READS_CHANNEL },
        'read cache: LISTEN failed; the read routes ask the database every time',
      );
      return async () => {};
    }
  }

  private entry(user: string): Entry {
    if (this.users.size >= MAX_USERS) this.forget([this.users.keys().next().value!]);
    const e: Entry = { values: new Map(), fills: new Set() };
    this.users.set(user, e);
    return e;
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Middleware: once a write request was handled by this replica, and before its answer leaves,
 * what its caller and its subject (`?user=`) read is forgotten, so the next read here shows the
 * write whatever the notification's delay; an admin's or the hub bridge's write forgets
 * everything (quotas, plans, other users' servers). Instance agents' reports are left to the
 * database's notifications: they come often, and change no figure by themselves.
 */
export function forgetOnWrite(cache: Pick<ReadCache, 'forget' | 'clear'>) {
  return async (c: Context<AppEnv>, next: () => Promise<void>) => {
    if (!WRITES.has(c.req.method)) return next();
    try {
      await next();
    } finally {
      const path = c.req.path;
      if (path.includes('/api/v1/agent/')) {
        // the agents' own routes
      } else if (path.includes('/api/v1/admin/') || path.includes('/api/v1/bridge/')) cache.clear();
      else {
        const users = [c.get('user')?.name, c.req.query('user')].filter(
          (u): u is string => typeof u === 'string',
        );
        if (users.length) cache.forget(users);
        else cache.clear();
      }
    }
  };
}
