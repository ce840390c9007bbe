/**
 * The meter loop: the schedule, the leader lock and the per-cycle snapshot. Every
 * NGSCI_METER_INTERVAL seconds, in exactly one replica, it reads the hub's active servers (every
 * page) and takes one snapshot of instances, plans, groups and quotas, then hands it to each
 * phase in turn: accrual into the ledger (accrual.ts), servers on one side only (reconcile/
 * orphans.ts), budget alerts and hard stops (budget-enforcer.ts) and idle culling (culler.ts).
 * The phases own their work and their data access; this file owns none.
 *
 * One replica: on Postgres a session advisory lock held on a dedicated connection (it is released
 * by the server the moment that connection dies, so a kill -9 hands the meter over at once). PGlite
 * is one connection owned by one process, so no second replica can open the same database and no
 * lock is needed; the ledger's unique key would make a second writer harmless anyway.
 */
import { ACTIVE_STATES, toApiServerName, type Catalog } from '@ngsci/contract';
import type { HubClient, HubUserModel } from '../hub.js';
import type { Logger } from '../logger.js';
import type { InstanceStore } from '../instances/store.js';
import type { Orphans } from '../reconcile/orphans.js';
import { Accrual, type AccrualSettings } from './accrual.js';
import type { BudgetEnforcer } from './budget-enforcer.js';
import type { Culler } from './culler.js';
import type { CycleReport, MeterSnapshot, PlanLookup } from './cycle.js';
import type { PlanRef } from './plans.js';
import type { IdleStateStore } from './idle-state.js';
import type { Ledger } from './ledger.js';
import type { PriceBook } from './prices.js';
import { combine, type LimitDefaults, type Limits, type QuotaRow } from './quotas.js';
import type { IdleChoice } from './idle-choice.js';
import type { GpuWaste, GpuWasteSettings } from './gpu-waste.js';
import type { InstanceSnapshot } from './instance-snapshot.js';

export type { CycleReport, MeterSnapshot } from './cycle.js';

export interface MeterSettings extends AccrualSettings {
  intervalSeconds: number;
  budgetGraceSeconds: number;
  defaultPlan: string;
  cull: { enabled: boolean; everySeconds: number; warningSeconds: number } & LimitDefaults;
  /** what counts as an idle GPU (gpu-waste.ts); the contract's defaults when absent */
  gpuIdle?: GpuWasteSettings;
}

export interface MeterDeps {
  hub: Pick<HubClient, 'listActiveUsers'>;
  logger: Logger;
  store: Pick<InstanceStore, 'inStates'>;
  /** the active instances read incrementally (instance-snapshot.ts); else every row each cycle */
  activeInstances?: Pick<InstanceSnapshot, 'read' | 'forget'>;
  ledger: Pick<Ledger, 'accrue' | 'homeVolumes' | 'unclosed' | 'newestGroups' | 'forget'>;
  prices: Pick<PriceBook, 'refresh'>;
  catalog: () => Catalog;
  /** plans and their assignments, loaded once per cycle */
  plans: () => Promise<PlanLookup>;
  quotaRows: () => Promise<QuotaRow[]>;
  /** researchers' own idle timeouts, by user (metering/idle-choice.ts) */
  idleChoices?: () => Promise<Map<string, IdleChoice>>;
  budgets: BudgetEnforcer;
  culler: Culler;
  /** where "Keep running" resets the idle clock */
  idle: Pick<IdleStateStore, 'keepRunning'>;
  /** servers on one side only (reconcile/orphans.ts), fed this cycle's hub listing */
  orphans: Pick<Orphans, 'fromListing'>;
  /** idle GPU stretches from the agents' samples (gpu-waste.ts), after accrual */
  gpuWaste?: Pick<GpuWaste, 'run'>;
  /** cloud credit grants that will expire unused or run out soon, told to admins (credits.ts) */
  creditAlerts?: { run(now: Date): Promise<unknown> };
  settings: MeterSettings;
  /** a dedicated connection's advisory lock, on Postgres; absent on PGlite */
  lock?: { tryAcquire(): Promise<boolean>; release(): Promise<void> };
  now?: () => Date;
}

type HubRead = { users: HubUserModel[] | null; error: Error | null };

const NO_GROUPS: string[] = [];

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Ended instances are looked at this long after they stop (a meter down longer leaves them to an admin). */
const ENDED_LOOKBACK_MS = 35 * 86_400_000;

export class Meter {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private holding = false;
  private closed = false;
  private lastCull = 0;
  private readonly accrual: Accrual;
  private readonly groupsCache = new Map<string, string[]>();
  /** user/server → the hub's last_activity, from the newest listing */
  private activity = new Map<string, Date | null>();
  private hubInFlight: Promise<HubRead> | null = null;
  last: CycleReport | null = null;

  constructor(private readonly d: MeterDeps) {
    this.accrual = new Accrual(d.ledger, d.settings);
  }

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  get leader(): boolean {
    return this.holding;
  }

  start(): void {
    const tick = async () => {
      if (this.closed) return;
      try {
        // asked every tick: a lost connection loses the lock, and another replica may hold it now
        const was = this.holding;
        this.holding = this.d.lock ? await this.d.lock.tryAcquire() : true;
        if (this.holding && !was) {
          this.d.ledger.forget();
          this.accrual.forget();
          this.d.activeInstances?.forget();
        }
        if (this.holding) {
          this.running = this.cycle();
          await this.running;
        }
      } catch (err) {
        this.d.logger.error({ err }, 'meter cycle failed');
      } finally {
        this.running = null;
        if (!this.closed)
          this.timer = setTimeout(() => void tick(), this.d.settings.intervalSeconds * 1000);
      }
    };
    this.timer = setTimeout(() => void tick(), 200);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => {});
    if (this.holding) await this.d.lock?.release().catch(() => {});
    this.holding = false;
  }

  /** One meter cycle. Public so tests and the benchmark can drive it with their own clock. */
  async cycle(): Promise<CycleReport> {
    const t0 = performance.now();
    const now = this.now();
    const report: CycleReport = {
      at: now.toISOString(),
      ms: 0,
      hubServers: 0,
      streams: 0,
      rowsWritten: 0,
      unknownServers: [],
      orphansClosed: [],
      alerts: [],
      budgetStops: [],
      warned: [],
      culled: [],
      keptBusy: [],
      hubError: null,
      phases: {},
    };
    let mark = t0;
    const phase = (name: string) => {
      const t = performance.now();
      report.phases[name] = Math.round((t - mark) * 10) / 10;
      mark = t;
    };
    await this.d.prices.refresh();
    phase('prices');

    // the hub is read while usage accrues: accrual depends on the lifecycle only, so a slow or
    // frozen hub delays reconciling and culling, never billing (activity is the last cycle's)
    const hubRead = this.readHub();
    const snap = await this.snapshot(now, hubRead);
    phase('instances');
    const pending = await this.accrual.run(snap, report);
    phase('accrue');
    if (this.d.gpuWaste) {
      // a failure here is logged and never keeps budgets or culling from running
      await this.d.gpuWaste
        .run(snap)
        .catch((err: unknown) => this.d.logger.error({ err }, 'meter: idle GPU accrual failed'));
      phase('gpu_idle');
    }

    const { users: hubUsers, error } = await hubRead;
    if (error) {
      report.hubError = error.message;
      this.d.logger.warn(
        { err: error.message },
        'meter: the hub did not list its servers; accrued from the lifecycle only',
      );
    }
    if (hubUsers) {
      const activity = new Map<string, Date | null>();
      for (const u of hubUsers) {
        if (u.groups) this.groupsCache.set(u.name, u.groups);
        for (const [hubName, sv] of Object.entries(u.servers ?? {})) {
          report.hubServers++;
          activity.set(
            `${u.name}/${toApiServerName(hubName)}`,
            sv.last_activity ? new Date(sv.last_activity) : null,
          );
        }
      }
      // a running server this listing missed (offset pages shift when a user is deleted while
      // they are read) keeps the activity it had: no idle warning for a server the hub still runs
      for (const r of snap.running) {
        const key = `${r.userName}/${r.serverName}`;
        if (!activity.has(key) && this.activity.has(key))
          activity.set(key, this.activity.get(key)!);
      }
      // from here on the snapshot's lastActivity is this cycle's
      this.activity = activity;
    }
    phase('hub');
    if (hubUsers) {
      const found = await this.d.orphans.fromListing(hubUsers, snap.active, snap.running, now);
      report.unknownServers = found.unknownServers;
      report.orphansClosed = found.orphansClosed;
    }
    phase('reconcile');

    const exhausted = await this.d.budgets.enforce(snap, pending, report);
    if (
      this.d.settings.cull.enabled &&
      hubUsers &&
      now.getTime() - this.lastCull >= this.d.settings.cull.everySeconds * 1000
    ) {
      this.lastCull = now.getTime();
      await this.d.culler.pass(snap, exhausted, report);
    }
    phase('budgets_and_culling');
    // at most hourly inside; a failure here must not fail the cycle that billed
    await this.d.creditAlerts
      ?.run(now)
      .catch((err: unknown) => this.d.logger.warn({ err }, 'meter: credit alerts failed'));
    report.ms = Math.round(performance.now() - t0);
    this.last = report;
    this.d.logger.debug(
      { meter: { ...report, unknownServers: report.unknownServers.length } },
      'meter cycle',
    );
    return report;
  }

  /** This cycle's hub listing: one in flight at a time, waited for at most one interval. */
  private readHub(): Promise<HubRead> {
    this.hubInFlight ??= this.d.hub
      .listActiveUsers(500)
      .then(
        (users): HubRead => ({ users, error: null }),
        (err: unknown): HubRead => ({ users: null, error: err as Error }),
      )
      .finally(() => {
        this.hubInFlight = null;
      });
    const waitMs = Math.max(2000, this.d.settings.intervalSeconds * 1000);
    return Promise.race([
      this.hubInFlight,
      new Promise<HubRead>((r) =>
        setTimeout(
          () => r({ users: null, error: new Error(`no answer within ${waitMs} ms`) }),
          waitMs,
        ).unref(),
      ),
    ]);
  }

  /**
   * The snapshot every phase works from: active instances, and the ended ones whose usage is not
   * closed yet; plans, the catalog's size classes, quotas, and the groups of every metered user.
   */
  private async snapshot(now: Date, hubRead: Promise<HubRead>): Promise<MeterSnapshot> {
    const [active, ended, plans, quotaRows, idleChoices] = await Promise.all([
      this.d.activeInstances?.read() ?? this.d.store.inStates([...ACTIVE_STATES]),
      this.d.ledger.unclosed(new Date(now.getTime() - ENDED_LOOKBACK_MS)),
      this.d.plans(),
      this.d.quotaRows(),
      this.d.idleChoices?.() ?? new Map<string, IdleChoice>(),
    ]);
    const metered = [...active.filter((r) => r.readyAt), ...ended];
    const classOf = new Map(this.d.catalog().sizes.map((s) => [s.id, s.class]));
    await this.fillGroups(
      metered.filter((r) => !this.groupsCache.has(r.userName)).map((r) => r.userName),
      hubRead,
    );
    const groupsOf = (user: string): string[] => this.groupsCache.get(user) ?? NO_GROUPS;
    // a user's plan and limits are the same all cycle: worked out once per user, not per server
    // (100,000 servers: the phases ask for them several times each). A memo entry holds for the
    // groups it was worked out with (the same array while the user's groups do not change; the
    // hub's listing may bring new ones mid-cycle)
    const planMemo = new Map<string, { groups: readonly string[]; plan: PlanRef }>();
    const limitsMemo = new Map<string, { groups: readonly string[]; limits: Limits }>();
    // users with a quota row or an idle timeout of their own; everyone else's limits depend on
    // their groups only (apart from the name on a default budget), so they are combined once per
    // set of groups, not once per user
    const ownLimits = new Set(
      quotaRows.filter((q) => q.subjectKind === 'user').map((q) => q.subjectName),
    );
    const byGroups = new Map<string, Limits>();
    const limitsFor = (user: string, groups: readonly string[]): Limits => {
      const choice = idleChoices.get(user);
      if (ownLimits.has(user) || choice)
        return combine(quotaRows, user, groups, this.d.settings.cull, choice);
      const key = groups.join('\n');
      let shared = byGroups.get(key);
      if (!shared)
        byGroups.set(key, (shared = combine(quotaRows, user, groups, this.d.settings.cull)));
      return shared.budgets.some((b) => b.kind === 'default')
        ? {
            ...shared,
            budgets: shared.budgets.map((b) => (b.kind === 'default' ? { ...b, name: user } : b)),
          }
        : shared;
    };
    return {
      now,
      active,
      running: metered.filter((r) => r.state === 'running'),
      metered,
      plans: {
        planOf: (user, groups) => {
          const m = planMemo.get(user);
          if (m && (m.groups === groups || sameGroups(m.groups, groups))) return m.plan;
          const plan = plans.planOf(user, groups);
          planMemo.set(user, { groups, plan });
          return plan;
        },
      },
      classOf: (sizeId) => classOf.get(sizeId),
      groupsOf,
      lastActivity: (user, server) => this.activity.get(`${user}/${server}`) ?? null,
      quotas: quotaRows,
      limitsOf: (user) => {
        const groups = groupsOf(user);
        const m = limitsMemo.get(user);
        if (m && (m.groups === groups || sameGroups(m.groups, groups))) return m.limits;
        const limits = limitsFor(user, groups);
        limitsMemo.set(user, { groups, limits });
        return limits;
      },
    };
  }

  /**
   * Groups decide plans. Unknown users (a restarted service): the groups on their newest ledger
   * row; users never metered: wait for this cycle's hub listing, which carries groups.
   */
  private async fillGroups(users: string[], hubRead: Promise<HubRead>): Promise<void> {
    const missing = [...new Set(users)];
    if (!missing.length) return;
    for (const [u, groups] of await this.d.ledger.newestGroups(missing))
      this.groupsCache.set(u, groups);
    if (missing.every((u) => this.groupsCache.has(u))) return;
    const listed = (await hubRead).users ?? [];
    for (const u of listed) if (u.groups) this.groupsCache.set(u.name, u.groups);
  }

  /** "Keep running": resets the idle clock of a running instance. */
  async keepRunning(instanceId: string, at = this.now()): Promise<void> {
    await this.d.idle.keepRunning(instanceId, at);
  }
}

/**
 * A session advisory lock on a dedicated one-connection client, so the lock lives exactly as
 * long as that connection. pg_try_advisory_lock is re-entrant within a session, so asking again
 * while holding it answers true.
 */
export function advisoryLock(url: string, key = 0x6e677363): NonNullable<MeterDeps['lock']> {
  let client: {
    unsafe: (q: string) => Promise<unknown>;
    end: (o?: { timeout?: number }) => Promise<void>;
  } | null = null;
  return {
    async tryAcquire() {
      if (!client) {
        const { default: postgres } = await import('postgres');
        client = postgres(url, {
          max: 1,
          idle_timeout: 0,
          onnotice: () => {},
        }) as unknown as NonNullable<typeof client>;
      }
      const rows = (await client.unsafe(`select pg_try_advisory_lock(${key}) as ok`)) as Array<{
        ok: boolean;
      }>;
      return rows[0]?.ok === true;
    },
    async release() {
      const c = client;
      client = null;
      await c?.end({ timeout: 2 }).catch(() => {});
    },
  };
}
