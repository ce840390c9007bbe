/**
 * Instance rows and their events. Every state change goes through `transition`, which writes the
 * new state and its event in one transaction: the events are the spawn progress bar, the sidebar's
 * status and the audit trail at once. Every event row is announced on EVENTS_CHANNEL by the
 * statement that writes it, so the SSE streams of every replica hear of it (instances/event-feed.ts).
 */
import {
  and,
  asc,
  desc,
  eq,
  gt,
  inArray,
  isNull,
  notInArray,
  or,
  sql,
  type SQL,
} from 'drizzle-orm';
import {
  ACTIVE_STATES,
  TERMINAL_STATES,
  type BridgeInstance,
  type Instance,
  type InstanceEvent,
  type InstanceEventKind,
  type InstanceState,
} from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instanceAgents, instanceEvents, instances } from '../db/schema.js';

export type InstanceRow = typeof instances.$inferSelect;
export type NewInstanceRow = typeof instances.$inferInsert;
/** The machine a resize moves to, resolved once when the resize is accepted. */
export type ResizeTarget = NonNullable<InstanceRow['resizeTarget']>;
/** Steps of a resize that is still under way. */
const RESIZING = ['stopping', 'starting'] as const;
/** The most events one read of a server's stream returns; a full page means more may follow. */
export const SERVER_EVENTS_PAGE = 1000;

/** The Postgres channel on which each new event row is announced, as an EventNotice in JSON. */
export const EVENTS_CHANNEL = 'ngsci_instance_events';

/** What a notification on EVENTS_CHANNEL says: whose server has a new event, and its id. */
export interface EventNotice {
  user: string;
  server: string;
  id: number;
}

/**
 * Wraps an `insert into instance_events …` (without `returning`) so the same statement announces
 * each row it writes on EVENTS_CHANNEL. Postgres sends the notification when the transaction
 * commits, to every listening connection, and never for a write that rolls back. Every writer of
 * event rows goes through this.
 */
export const announcingEvents = (insert: SQL): SQL => sql`
  with e as (${insert} returning id, instance_id)
  select pg_notify(
    ${EVENTS_CHANNEL},
    json_build_object('user', i.user_name, 'server', i.server_name, 'id', e.id)::text
  )
  from e join instances i on i.id = e.instance_id`;

/** One event row at the given state, announced. */
const eventRow = (
  instanceId: string,
  state: string,
  progress: number,
  message: string,
  kind: InstanceEventKind | null = null,
): SQL =>
  announcingEvents(sql`
    insert into instance_events (instance_id, state, progress, message, kind)
    values (${instanceId}, ${state}, ${progress}, ${message}, ${kind})`);

export function toInstance(row: InstanceRow): Instance {
  return {
    id: row.id,
    user: row.userName,
    server: row.serverName,
    size: row.sizeId,
    cloud: row.cloud as Instance['cloud'],
    region: row.region,
    spot: row.spot,
    state: row.state as InstanceState,
    errorCode: row.errorCode,
    errorMessage: row.errorMessage,
    exitCode: row.exitCode,
    url: row.state === 'running' ? row.baseUrl : null,
    ratePerHourMicros: row.listRatePerHourMicros,
    createdAt: row.createdAt.toISOString(),
    readyAt: row.readyAt?.toISOString() ?? null,
    stoppedAt: row.stoppedAt?.toISOString() ?? null,
    onPreemption: row.onPreemption ?? null,
  };
}

export function toBridgeInstance(row: InstanceRow): BridgeInstance {
  return { ...toInstance(row), targetUrl: row.targetUrl };
}

export function toEvent(row: typeof instanceEvents.$inferSelect): InstanceEvent {
  return {
    id: row.id,
    instanceId: row.instanceId,
    at: row.at.toISOString(),
    state: row.state as InstanceState,
    progress: row.progress,
    message: row.message,
    kind: row.kind ?? null,
  };
}

export interface TransitionPatch {
  errorCode?: string | null;
  errorMessage?: string | null;
  exitCode?: number | null;
  targetUrl?: string | null;
  providerRef?: InstanceRow['providerRef'];
  readyAt?: Date;
  stoppedAt?: Date;
  stopRequestedAt?: Date;
  /** a relaunch after a preemption is recorded as a resize (instances/preemption.ts) */
  resizeTarget?: ResizeTarget;
  resizeState?: 'starting';
}

export class InstanceStore {
  constructor(private readonly db: Db) {}

  async create(row: NewInstanceRow, message: string): Promise<InstanceRow | null> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx.insert(instances).values(row).onConflictDoNothing().returning();
      const created = inserted[0];
      if (!created) return null;
      await tx.execute(eventRow(created.id, created.state, 0, message));
      return created;
    });
  }

  async get(id: string): Promise<InstanceRow | null> {
    const rows = await this.db.select().from(instances).where(eq(instances.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The one active instance of a server, if any. */
  async active(user: string, server: string): Promise<InstanceRow | null> {
    const rows = await this.db
      .select()
      .from(instances)
      .where(
        and(
          eq(instances.userName, user),
          eq(instances.serverName, server),
          inArray(instances.state, [...ACTIVE_STATES]),
        ),
      )
      .limit(1);
    return rows[0] ?? null;
  }

  /** The newest instance of a server, active or not. */
  async latest(user: string, server: string): Promise<InstanceRow | null> {
    const rows = await this.db
      .select()
      .from(instances)
      .where(and(eq(instances.userName, user), eq(instances.serverName, server)))
      .orderBy(desc(instances.createdAt))
      .limit(1);
    return rows[0] ?? null;
  }

  /** How many instances each user has running (the admin panel's users table). */
  async runningByUser(): Promise<Map<string, number>> {
    const rows = await this.db
      .select({ user: instances.userName, n: sql<number>`count(*)::int` })
      .from(instances)
      .where(eq(instances.state, 'running'))
      .groupBy(instances.userName);
    return new Map(rows.map((r) => [r.user, Number(r.n)]));
  }

  /** How many instances are active (requested to stopping), over every user. */
  async countActive(): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(instances)
      .where(inArray(instances.state, [...ACTIVE_STATES]));
    return Number(row?.n ?? 0);
  }

  /** Active instances of a user, or of everyone; plus recently ended ones when asked. */
  async list(opts: { user?: string; includeEnded?: boolean } = {}): Promise<InstanceRow[]> {
    const conds = [];
    if (opts.user) conds.push(eq(instances.userName, opts.user));
    if (!opts.includeEnded) conds.push(inArray(instances.state, [...ACTIVE_STATES]));
    return this.db
      .select()
      .from(instances)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(instances.createdAt))
      .limit(500);
  }

  async inStates(states: InstanceState[]): Promise<InstanceRow[]> {
    return this.db.select().from(instances).where(inArray(instances.state, states));
  }

  /**
   * Moves an instance to `state` and records the event, unless it has already ended: a terminal
   * state is final, so a late report (a crash after a stop) cannot reopen it. Returns the row,
   * or null when nothing changed.
   */
  async transition(
    id: string,
    state: InstanceState,
    progress: number,
    message: string,
    patch: TransitionPatch = {},
  ): Promise<InstanceRow | null> {
    return this.db.transaction(async (tx) => {
      const updated = await tx
        .update(instances)
        .set({ state, ...patch })
        .where(and(eq(instances.id, id), notInArray(instances.state, [...TERMINAL_STATES])))
        .returning();
      const row = updated[0];
      if (!row) return null;
      await tx.execute(eventRow(id, state, progress, message));
      if ((TERMINAL_STATES as readonly string[]).includes(state)) {
        // an ended instance's agent credential ends with it
        await tx
          .update(instanceAgents)
          .set({ revokedAt: new Date() })
          .where(and(eq(instanceAgents.instanceId, id), isNull(instanceAgents.revokedAt)));
      }
      return row;
    });
  }

  /**
   * Records an accepted resize on a running instance, with its event, in one transaction. Null
   * when the instance is no longer running or a resize of it is already under way.
   */
  async acceptResize(
    id: string,
    target: ResizeTarget,
    message: string,
  ): Promise<InstanceRow | null> {
    return this.db.transaction(async (tx) => {
      const updated = await tx
        .update(instances)
        .set({ resizeTarget: target, resizeState: 'stopping' })
        .where(
          and(
            eq(instances.id, id),
            eq(instances.state, 'running'),
            or(isNull(instances.resizeState), notInArray(instances.resizeState, [...RESIZING])),
          ),
        )
        .returning();
      const row = updated[0];
      if (!row) return null;
      await tx.execute(eventRow(id, row.state, 0, message));
      return row;
    });
  }

  /**
   * The old machine of a resize is gone: the resize moves on to asking the hub for the new one.
   * Returns the row as it is now (whoever moved it on), or null when it does not exist.
   */
  async resizeStopped(id: string): Promise<InstanceRow | null> {
    await this.db
      .update(instances)
      .set({ resizeState: 'starting' })
      .where(
        and(
          eq(instances.id, id),
          eq(instances.state, 'stopped'),
          eq(instances.resizeState, 'stopping'),
        ),
      );
    return this.get(id);
  }

  /**
   * Ends a resize that is under way, with an event when a message is given. Null when it had
   * already ended: only one caller gets to tell the user.
   */
  async endResize(
    id: string,
    outcome: 'done' | 'abandoned',
    message?: string,
  ): Promise<InstanceRow | null> {
    return this.db.transaction(async (tx) => {
      const updated = await tx
        .update(instances)
        .set({ resizeState: outcome })
        .where(and(eq(instances.id, id), inArray(instances.resizeState, [...RESIZING])))
        .returning();
      const row = updated[0];
      if (!row) return null;
      if (message) await tx.execute(eventRow(id, row.state, 100, message));
      return row;
    });
  }

  /** Resizes whose old instance has ended but whose successor was never asked for or made. */
  async unfinishedResizes(): Promise<InstanceRow[]> {
    return this.db
      .select()
      .from(instances)
      .where(
        and(
          inArray(instances.resizeState, [...RESIZING]),
          inArray(instances.state, [...TERMINAL_STATES]),
        ),
      );
  }

  /**
   * A spot start the cloud had no capacity for goes on on demand, when its user allowed it: the
   * row becomes on-demand at `ratePerHourMicros` in one statement, and only before it is ready
   * (billing starts at readyAt, so nothing was priced at the spot rate). False when the user did
   * not allow it, or the instance is already ready or on demand.
   */
  async switchToOnDemand(id: string, ratePerHourMicros: number): Promise<boolean> {
    const rows = await this.db
      .update(instances)
      .set({ spot: false, listRatePerHourMicros: ratePerHourMicros })
      .where(
        and(
          eq(instances.id, id),
          eq(instances.spot, true),
          isNull(instances.readyAt),
          sql`${instances.providerRef} ->> 'spotFallback' = 'true'`,
        ),
      )
      .returning({ id: instances.id });
    return rows.length > 0;
  }

  /**
   * The agent reported the cloud's notice that it takes this spot machine back: remembered on the
   * instance (a machine that ends after it was preempted, not crashed), with an event, once.
   * Null when it was already recorded or the instance is not an active spot instance.
   */
  async markSpotNotice(id: string, message: string): Promise<InstanceRow | null> {
    return this.db.transaction(async (tx) => {
      const updated = await tx
        .update(instances)
        .set({ spotNoticeAt: new Date() })
        .where(
          and(
            eq(instances.id, id),
            eq(instances.spot, true),
            isNull(instances.spotNoticeAt),
            inArray(instances.state, [...ACTIVE_STATES]),
          ),
        )
        .returning();
      const row = updated[0];
      if (!row) return null;
      await tx.execute(eventRow(id, row.state, 100, message, 'spot_notice'));
      return row;
    });
  }

  /** Records a progress event without changing the state. */
  async note(id: string, progress: number, message: string): Promise<void> {
    await this.db.execute(
      announcingEvents(sql`
        insert into instance_events (instance_id, state, progress, message)
        select id, state, ${progress}, ${message} from instances where id = ${id}`),
    );
  }

  async events(instanceId: string, after = 0): Promise<InstanceEvent[]> {
    const rows = await this.db
      .select()
      .from(instanceEvents)
      .where(and(eq(instanceEvents.instanceId, instanceId), gt(instanceEvents.id, after)))
      .orderBy(asc(instanceEvents.id))
      .limit(1000);
    return rows.map(toEvent);
  }

  /** Events of every instance of a server, after an event id: what the SSE stream follows. */
  async serverEvents(user: string, server: string, after: number): Promise<InstanceEvent[]> {
    const rows = await this.db
      .select({ e: instanceEvents })
      .from(instanceEvents)
      .innerJoin(instances, eq(instances.id, instanceEvents.instanceId))
      .where(
        and(
          eq(instances.userName, user),
          eq(instances.serverName, server),
          gt(instanceEvents.id, after),
        ),
      )
      .orderBy(asc(instanceEvents.id))
      .limit(SERVER_EVENTS_PAGE);
    return rows.map((r) => toEvent(r.e));
  }
}
