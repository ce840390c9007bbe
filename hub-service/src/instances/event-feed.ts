/**
 * What feeds the SSE event streams (`GET /instances/{server}/events`): one LISTEN per process on
 * the channel the instance store announces each event row on, fanned out in memory to the streams
 * that follow that server; a stream reads the database only when it has something new to read.
 * The safety read, in case a notification was lost, is one query per process however many streams
 * are open: the newest event of each server written since the last safety reads, and only the
 * streams of a server with something newer than they returned read it.
 * Also the cap on how many streams one user holds open, since each is a connection held for hours.
 */
import { eq, gt, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { InstanceEvent } from '@ngsci/contract';
import type { Database, Db } from '../db/client.js';
import { instanceEvents, instances } from '../db/schema.js';
import type { Logger } from '../logger.js';
import {
  EVENTS_CHANNEL,
  SERVER_EVENTS_PAGE,
  type EventNotice,
  type InstanceStore,
} from './store.js';

export const SseSettingsSchema = z.object({
  /**
   * how many event streams one user may hold open at once on one replica (every open browser tab
   * of the extension holds one per followed server; `ngsci` holds one while it shows progress)
   */
  NGSCI_SSE_PER_USER: z.coerce.number().int().min(1).max(1000).default(8),
});
export type SseSettings = z.infer<typeof SseSettingsSchema>;

/**
 * How often the process looks for events it may not have heard of, in case a notification was
 * lost: a LISTEN connection that came back is caught up at once, so this is only the last line.
 */
const SAFETY_READ_SECONDS = 15;

/** The two questions the safety read asks the database, once per process. */
export interface EventIndex {
  /** the newest event id of all (0: none yet) */
  newestId(): Promise<number>;
  /** for each server with events above `after`, its newest event id */
  newestSince(after: number): Promise<EventNotice[]>;
}

/** The EventIndex of a database: range scans of instance_events' primary key. */
export function eventIndex(db: Db): EventIndex {
  const newest = sql<number>`coalesce(max(${instanceEvents.id}), 0)`.mapWith(Number);
  return {
    async newestId() {
      const [row] = await db.select({ id: newest }).from(instanceEvents);
      return row?.id ?? 0;
    },
    async newestSince(after) {
      return db
        .select({ user: instances.userName, server: instances.serverName, id: newest })
        .from(instanceEvents)
        .innerJoin(instances, eq(instances.id, instanceEvents.instanceId))
        .where(gt(instanceEvents.id, after))
        .groupBy(instances.userName, instances.serverName);
    },
  };
}

/** The key of a server in the fan-out. */
const serverKey = (user: string, server: string) => JSON.stringify([user, server]);

function parseNotice(payload: string): EventNotice | null {
  try {
    const n = JSON.parse(payload) as Partial<EventNotice>;
    if (typeof n.user !== 'string' || typeof n.server !== 'string' || typeof n.id !== 'number')
      return null;
    return n as EventNotice;
  } catch {
    return null;
  }
}

/** One open stream: the events of one server after the last one it returned. */
export class EventStream {
  /** whether something new may be in the database: true at first, so a stream starts with a read */
  private pending = true;
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(
    private after: number,
    private readonly read: (after: number) => Promise<InstanceEvent[]>,
    private readonly onClose: () => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The events written since the last call, oldest first, as soon as there are any; none when
   * `silenceMs` passed without one (time for a heartbeat) or the stream was closed.
   */
  async next(silenceMs: number): Promise<InstanceEvent[]> {
    const deadline = Date.now() + silenceMs;
    while (!this.closed) {
      if (this.pending) {
        // cleared before the read: a notice that arrives during it makes the next round read again
        this.pending = false;
        const events = await this.read(this.after);
        if (events.length) {
          this.after = events.at(-1)!.id;
          if (events.length >= SERVER_EVENTS_PAGE) this.pending = true;
          return events;
        }
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
        const timer = setTimeout(done, left);
        this.wake = done;
      });
    }
    return [];
  }

  /** Something new may be there: event `id` when a notification named it, else anything. */
  poke(id?: number): void {
    if (id !== undefined && id <= this.after) return;
    this.pending = true;
    this.wake?.();
  }

  /** Ends the stream and frees its user's slot; a waiting `next` returns at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    this.onClose();
  }
}

export class EventFeed {
  /** the open streams of each server */
  private readonly streams = new Map<string, Set<EventStream>>();
  /** how many streams each user holds open */
  private readonly held = new Map<string, number>();
  private listening: Promise<() => Promise<void>> | null = null;
  private safety: NodeJS.Timeout | null = null;
  private checking = false;
  /**
   * Event ids the safety read starts above: `[older, newer]`, the newest id at the two previous
   * reads (the first: when the LISTEN came up). It looks two periods back, so an event whose
   * transaction committed after a read that a smaller id was already past is still seen.
   */
  private marks: [number, number] | null = null;
  private readonly index: EventIndex | null;

  constructor(
    private readonly d: {
      database: Pick<Database, 'listen'> & Partial<Pick<Database, 'db'>>;
      store: Pick<InstanceStore, 'serverEvents'>;
      logger: Logger;
      settings: SseSettings;
      /** how often the process looks for missed events (default SAFETY_READ_SECONDS) */
      safetyReadSeconds?: number;
      /** what the safety read asks (default: the database's; none: every stream reads) */
      index?: EventIndex;
    },
  ) {
    this.index = d.index ?? (d.database.db ? eventIndex(d.database.db) : null);
  }

  get perUser(): number {
    return this.d.settings.NGSCI_SSE_PER_USER;
  }

  /**
   * Opens a stream for `caller` that follows `user`'s `server` from after event `after`; null
   * when `caller` already holds NGSCI_SSE_PER_USER streams. The first stream of the process
   * starts the LISTEN.
   */
  async open(
    caller: string,
    user: string,
    server: string,
    after: number,
  ): Promise<EventStream | null> {
    const held = this.held.get(caller) ?? 0;
    if (held >= this.perUser) return null;
    // the slot is taken before anything is awaited, so concurrent opens cannot pass the cap
    this.held.set(caller, held + 1);
    const key = serverKey(user, server);
    const stream = new EventStream(
      after,
      (from) => this.d.store.serverEvents(user, server, from),
      () => this.release(caller, key, stream),
    );
    let set = this.streams.get(key);
    if (!set) this.streams.set(key, (set = new Set()));
    set.add(stream);
    this.safety ??= setInterval(
      () => void this.safetyRead(),
      (this.d.safetyReadSeconds ?? SAFETY_READ_SECONDS) * 1000,
    ).unref();
    try {
      await this.listen();
    } catch (err) {
      stream.close();
      throw err;
    }
    return stream;
  }

  /** How many streams are open, over every user. */
  get size(): number {
    let n = 0;
    for (const set of this.streams.values()) n += set.size;
    return n;
  }

  /** Stops listening and ends every stream. */
  async close(): Promise<void> {
    for (const set of [...this.streams.values()]) for (const s of [...set]) s.close();
    const listening = this.listening;
    this.listening = null;
    const unlisten = await listening?.catch(() => null);
    await unlisten?.();
  }

  private listen(): Promise<() => Promise<void>> {
    this.listening ??= this.d.database
      .listen(
        EVENTS_CHANNEL,
        (payload) => this.heard(payload),
        // (again) in place: whatever was announced while it was not may have been missed
        () => this.pokeAll(),
      )
      .then(async (unlisten) => {
        // from here on every event is announced: the safety read starts above the newest one
        if (this.index && !this.marks) {
          const newest = await this.index.newestId();
          this.marks ??= [newest, newest];
        }
        return unlisten;
      })
      .catch((err: unknown) => {
        // the next stream tries again
        this.listening = null;
        throw err;
      });
    return this.listening;
  }

  private heard(payload: string): void {
    const notice = parseNotice(payload);
    if (!notice) {
      this.d.logger.warn({ channel: EVENTS_CHANNEL }, 'ignored a malformed event notification');
      return;
    }
    for (const s of this.streams.get(serverKey(notice.user, notice.server)) ?? [])
      s.poke(notice.id);
  }

  /**
   * The last line against a lost notification, one query for the whole process: the servers with
   * events above the older mark, and each of their streams reads if it has not returned the newest.
   */
  private async safetyRead(): Promise<void> {
    if (!this.index || !this.marks) {
      this.pokeAll();
      return;
    }
    if (this.checking) return;
    this.checking = true;
    try {
      const [older, newer] = this.marks;
      let newest = newer;
      for (const n of await this.index.newestSince(older)) {
        newest = Math.max(newest, n.id);
        for (const s of this.streams.get(serverKey(n.user, n.server)) ?? []) s.poke(n.id);
      }
      this.marks = [newer, newest];
    } catch (err) {
      this.d.logger.warn({ err }, "the event streams' safety read failed; trying again later");
    } finally {
      this.checking = false;
    }
  }

  private pokeAll(): void {
    for (const set of this.streams.values()) for (const s of set) s.poke();
  }

  private release(caller: string, key: string, stream: EventStream): void {
    const held = (this.held.get(caller) ?? 1) - 1;
    if (held > 0) this.held.set(caller, held);
    else this.held.delete(caller);
    const set = this.streams.get(key);
    set?.delete(stream);
    if (set && !set.size) this.streams.delete(key);
    if (!this.streams.size && this.safety) {
      clearInterval(this.safety);
      this.safety = null;
    }
  }
}
