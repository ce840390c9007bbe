/**
 * The meter loop. Every NGSCI_METER_INTERVAL seconds, in exactly one replica, it reads the hub's
 * active servers (every page), accrues usage for every stream, reconciles the hub with the
 * instances table, checks budgets (alerts once, hard stop after a grace) and culls idle servers.
 *
 * One replica: on Postgres a session advisory lock held on a dedicated connection (it is released
 * by the server the moment that connection dies, so a kill -9 hands the meter over at once). PGlite
 * is one connection owned by one process, so no second replica can open the same database and no
 * lock is needed; the ledger's unique key would make a second writer harmless anyway.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { ACTIVE_STATES, toApiServerName, toHubServerName, type Catalog } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { budgetAlerts, idleState, instances, quotas } from '../db/schema.js';
import type { HubClient, HubUserModel } from '../hub.js';
import type { Logger } from '../logger.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceRow, InstanceStore } from '../instances/store.js';
import type { Notifier } from '../notify/types.js';
import { decideIdle, type KernelActivity } from './culler.js';
import { Ledger, resultRows, type Stream } from './ledger.js';
import {
  dollars,
  HOUR,
  MINIMUM_SECONDS,
  monthKey,
  monthStart,
  nextMonthStart,
  STORAGE_MONTH_SECONDS,
} from './money.js';
import { PlanTable } from './plans.js';
import type { PriceBook } from './prices.js';
import { combine, type LimitDefaults, type Limits, type QuotaRow } from './quotas.js';

export interface MeterSettings {
  intervalSeconds: number;
  /** a running stream's usage is written at most this often; budgets still see it to the second */
  accrueEverySeconds: number;
  orphanGraceSeconds: number;
  budgetGraceSeconds: number;
  activeWindowSeconds: number;
  homeGb: number;
  homeGbMonthMicros: number;
  storageEverySeconds: number;
  defaultPlan: string;
  cull: { enabled: boolean; everySeconds: number; warningSeconds: number } & LimitDefaults;
}

export interface MeterDeps {
  db: Db;
  hub: HubClient;
  logger: Logger;
  store: InstanceStore;
  lifecycle: Lifecycle;
  notifier: Notifier;
  ledger: Ledger;
  prices: PriceBook;
  catalog: () => Catalog;
  /** busy kernels as the instance's agent reported them (no fresh report: 'unknown') */
  kernels: KernelActivity;
  /**
   * GPU-aware idleness: whether the instance's agent saw a GPU at work lately (null: no fresh
   * sample). A training loop that never touches a kernel message still counts as work.
   */
  gpuBusy?: (instanceId: string) => Promise<boolean | null>;
  settings: MeterSettings;
  /** where budgets learn of priced but unwritten usage */
  quotas?: { setPending(fn: (kind: 'user' | 'group', name: string) => number): void };
  /** a dedicated connection's advisory lock, on Postgres; absent on PGlite */
  lock?: { tryAcquire(): Promise<boolean>; release(): Promise<void> };
  now?: () => Date;
}

export interface CycleReport {
  at: string;
  ms: number;
  hubServers: number;
  streams: number;
  rowsWritten: number;
  unknownServers: string[];
  orphansClosed: string[];
  alerts: string[];
  budgetStops: string[];
  warned: string[];
  culled: string[];
  keptBusy: string[];
  hubError: string | null;
  /** milliseconds per phase: where a slow cycle spends its time */
  phases: Record<string, number>;
}

interface Activity {
  lastActivity: Date | null;
}

export class Meter {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private holding = false;
  private closed = false;
  private lastCull = 0;
  private lastStorage = 0;
  private readonly missingSince = new Map<string, number>();
  private readonly reportedUnknown = new Set<string>();
  private readonly groupsCache = new Map<string, string[]>();
  private activity = new Map<string, Activity>();
  private hubInFlight: Promise<{ users: HubUserModel[] | null; error: Error | null }> | null = null;
  last: CycleReport | null = null;

  constructor(private readonly d: MeterDeps) {}

  /** Lets budgets count what this cycle priced but did not write (see Quotas.pending). */
  private publishPending(byUser: Map<string, number>): void {
    const byGroup = new Map<string, number>();
    for (const [user, micros] of byUser) {
      for (const g of this.groupsCache.get(user) ?? [])
        byGroup.set(g, (byGroup.get(g) ?? 0) + micros);
    }
    this.d.quotas?.setPending((kind, name) => (kind === 'user' ? byUser : byGroup).get(name) ?? 0);
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
        if (this.holding && !was) this.d.ledger.forget();
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
    // (one listing in flight at a time; a cycle waits for it at most one interval)
    this.hubInFlight ??= this.d.hub
      .listActiveUsers(500)
      .then(
        (users) => ({ users, error: null as Error | null }),
        (err: unknown) => ({ users: null, error: err as Error }),
      )
      .finally(() => {
        this.hubInFlight = null;
      });
    const waitMs = Math.max(2000, this.d.settings.intervalSeconds * 1000);
    const hubRead = Promise.race([
      this.hubInFlight,
      new Promise<{ users: null; error: Error }>((r) =>
        setTimeout(
          () => r({ users: null, error: new Error(`no answer within ${waitMs} ms`) }),
          waitMs,
        ).unref(),
      ),
    ]);
    const { metered: rows, active } = await this.meteredInstances(now);
    const plans = await PlanTable.load(this.d.db, this.d.settings.defaultPlan);
    const catalog = this.d.catalog();
    const classOf = new Map(catalog.sizes.map((s) => [s.id, s.class]));
    await this.fillGroups(
      rows.filter((r) => !this.groupsCache.has(r.userName)).map((r) => r.userName),
      hubRead,
    );

    phase('instances');
    const streams: Stream[] = [];
    for (const r of rows) {
      const groups = this.groupsCache.get(r.userName) ?? [];
      const plan = plans.planOf(r.userName, groups);
      const terminal = r.state === 'stopped' || r.state === 'failed';
      streams.push({
        key: r.id,
        kind: 'compute',
        user: r.userName,
        groups,
        instanceId: r.id,
        server: r.serverName,
        size: r.sizeId,
        sizeClass: classOf.get(r.sizeId) ?? 'cpu',
        cloud: r.cloud,
        region: r.region,
        spot: r.spot,
        planId: plan.id,
        multiplierPpm: plan.multiplierPpm,
        rateMicros: r.listRatePerHourMicros,
        ratePeriodSeconds: HOUR,
        anchor: r.readyAt!,
        closeAt: terminal ? (r.stoppedAt ?? now) : null,
        minimumSeconds: MINIMUM_SECONDS,
        lastActivity: this.activity.get(`${r.userName}/${r.serverName}`)?.lastActivity ?? null,
      });
    }
    if (
      this.d.settings.homeGb > 0 &&
      this.d.settings.homeGbMonthMicros > 0 &&
      now.getTime() - this.lastStorage >= this.d.settings.storageEverySeconds * 1000
    ) {
      streams.push(...(await this.storageStreams(plans)));
      this.lastStorage = now.getTime();
    }
    report.streams = streams.length;
    phase('streams');
    const accrued = await this.d.ledger.accrue(
      streams,
      now,
      this.d.settings.activeWindowSeconds,
      this.d.settings.accrueEverySeconds,
    );
    report.rowsWritten = accrued.written;
    this.publishPending(accrued.pending);
    phase('accrue');

    const running = rows.filter((r) => r.state === 'running');
    const hr = await hubRead;
    const hubUsers: HubUserModel[] | null = hr.users;
    if (hr.error) {
      report.hubError = hr.error.message;
      this.d.logger.warn(
        { err: hr.error.message },
        'meter: the hub did not list its servers; accrued from the lifecycle only',
      );
    }
    const activity = new Map<string, Activity>();
    const hubRuns = new Set<string>();
    for (const u of hubUsers ?? []) {
      if (u.groups) this.groupsCache.set(u.name, u.groups);
      for (const [hubName, sv] of Object.entries(u.servers ?? {})) {
        const key = `${u.name}/${toApiServerName(hubName)}`;
        report.hubServers++;
        hubRuns.add(key);
        activity.set(key, { lastActivity: sv.last_activity ? new Date(sv.last_activity) : null });
      }
    }
    if (hubUsers) this.activity = activity;
    phase('hub');
    if (hubUsers) await this.reconcile(hubUsers, hubRuns, active, running, now, report);

    phase('reconcile');
    const quotaRows = await this.d.db.select().from(quotas);
    const limitsOf = (user: string) =>
      combine(quotaRows, user, this.groupsCache.get(user) ?? [], this.d.settings.cull);
    const exhausted = await this.checkBudgets(
      quotaRows,
      running,
      limitsOf,
      accrued.pending,
      now,
      report,
    );
    if (
      this.d.settings.cull.enabled &&
      hubUsers &&
      now.getTime() - this.lastCull >= this.d.settings.cull.everySeconds * 1000
    ) {
      this.lastCull = now.getTime();
      await this.cull(running, activity, limitsOf, exhausted, now, report);
    }
    phase('budgets_and_culling');
    report.ms = Math.round(performance.now() - t0);
    this.last = report;
    this.d.logger.debug(
      { meter: { ...report, unknownServers: report.unknownServers.length } },
      'meter cycle',
    );
    return report;
  }

  /**
   * Active instances, and the ended ones whose usage is not closed yet. Ended instances are looked
   * at for 35 days after they stop (a meter down longer than that leaves them for an admin).
   */
  private async meteredInstances(
    now: Date,
  ): Promise<{ metered: InstanceRow[]; active: InstanceRow[] }> {
    const active = await this.d.db
      .select()
      .from(instances)
      .where(inArray(instances.state, [...ACTIVE_STATES]));
    const ended = await this.d.db
      .select()
      .from(instances)
      .where(
        sql`${instances.state} in ('stopped', 'failed') and ${instances.readyAt} is not null
          and coalesce(${instances.stoppedAt}, ${instances.readyAt}) > ${new Date(now.getTime() - 35 * 86_400_000).toISOString()}
          and not exists (select 1 from usage_intervals u where u.meter_key = ${instances.id}::text and u.final)`,
      );
    return { metered: [...active.filter((r) => r.readyAt), ...ended], active };
  }

  /**
   * Groups decide plans. Unknown users (a restarted service): the groups on their newest ledger
   * row; users never metered: wait for this cycle's hub listing, which carries groups.
   */
  private async fillGroups(
    users: string[],
    hubRead: Promise<{ users: HubUserModel[] | null }>,
  ): Promise<void> {
    const missing = [...new Set(users)];
    if (!missing.length) return;
    const rows = resultRows<{ u: string; groups: string[] }>(
      await this.d.db.execute(sql`
        select k.u, l.groups from json_array_elements_text(${JSON.stringify(missing)}::json) as k(u)
        join lateral (select groups from usage_intervals where user_name = k.u order by started_at desc limit 1) l on true`),
    );
    for (const r of rows) this.groupsCache.set(r.u, r.groups ?? []);
    if (missing.every((u) => this.groupsCache.has(u))) return;
    const listed = (await hubRead).users ?? [];
    for (const u of listed) if (u.groups) this.groupsCache.set(u.name, u.groups);
  }

  private async storageStreams(plans: PlanTable): Promise<Stream[]> {
    const users = resultRows<{ u: string; first: string | Date }>(
      await this.d.db.execute(
        sql`select user_name as u, min(created_at) as first from instances group by user_name`,
      ),
    );
    const { homeGb, homeGbMonthMicros } = this.d.settings;
    return users.map((u) => {
      const groups = this.groupsCache.get(u.u) ?? [];
      const plan = plans.planOf(u.u, groups);
      return {
        key: `home:${u.u}`,
        kind: 'storage',
        user: u.u,
        groups,
        instanceId: null,
        server: null,
        size: 'home-volume',
        sizeClass: 'storage',
        cloud: 'any',
        region: 'any',
        spot: false,
        planId: plan.id,
        multiplierPpm: plan.multiplierPpm,
        rateMicros: Math.round(homeGb * homeGbMonthMicros),
        ratePeriodSeconds: STORAGE_MONTH_SECONDS,
        anchor: new Date(u.first),
        closeAt: null,
        minimumSeconds: 0,
        lastActivity: null,
      } satisfies Stream;
    });
  }

  private async reconcile(
    hubUsers: HubUserModel[],
    hubRuns: Set<string>,
    active: InstanceRow[],
    running: InstanceRow[],
    now: Date,
    report: CycleReport,
  ) {
    const known = new Set(active.map((r) => `${r.userName}/${r.serverName}`));
    for (const u of hubUsers) {
      for (const hubName of Object.keys(u.servers ?? {})) {
        const key = `${u.name}/${toApiServerName(hubName)}`;
        if (known.has(key)) continue;
        report.unknownServers.push(key);
        if (!this.reportedUnknown.has(key)) {
          this.reportedUnknown.add(key);
          this.d.logger.warn(
            { user: u.name, server: hubName },
            'meter: the hub runs a server ngsci does not know (started by another spawner?); it is not billed',
          );
        }
      }
    }
    for (const r of running) {
      const key = `${r.userName}/${r.serverName}`;
      if (hubRuns.has(key)) {
        this.missingSince.delete(r.id);
        continue;
      }
      const since = this.missingSince.get(r.id) ?? now.getTime();
      this.missingSince.set(r.id, since);
      if (now.getTime() - since < this.d.settings.orphanGraceSeconds * 1000) continue;
      this.missingSince.delete(r.id);
      report.orphansClosed.push(r.id);
      this.d.logger.warn(
        { instance: r.id, user: r.userName, server: r.serverName },
        'meter: JupyterHub no longer runs this server; stopping the instance',
      );
      await this.d.store.note(
        r.id,
        100,
        'JupyterHub no longer runs this server; the instance is stopped and its billing closed',
      );
      await this.d.lifecycle.bridgeStop(r.userName, toHubServerName(r.serverName));
    }
  }

  /** Alerts at 50/80/100 % once each; hard stop after the grace. Returns users whose budget is spent. */
  private async checkBudgets(
    quotaRows: QuotaRow[],
    running: InstanceRow[],
    limitsOf: (user: string) => Limits,
    pending: Map<string, number>,
    now: Date,
    report: CycleReport,
  ): Promise<Set<string>> {
    const exhausted = new Set<string>();
    if (!quotaRows.some((q) => q.monthlyBudgetMicros !== null)) return exhausted;
    const from = monthStart(now);
    const to = nextMonthStart(now);
    const month = monthKey(now);
    const users = [...new Set(running.map((r) => r.userName))];
    const spend = await this.d.ledger.spendByUser(from, to);
    // what is priced but not yet written counts too: budgets act to the second
    for (const [u, p] of pending) spend.set(u, (spend.get(u) ?? 0) + p);
    const groupSpend = new Map<string, number>();
    for (const user of users) {
      const limits = limitsOf(user);
      for (const b of limits.budgets) {
        let spent = spend.get(user) ?? 0;
        if (b.kind === 'group') {
          if (!groupSpend.has(b.name)) {
            let groupPending = 0;
            for (const [u, p] of pending) {
              if (this.groupsCache.get(u)?.includes(b.name)) groupPending += p;
            }
            groupSpend.set(
              b.name,
              (await this.d.ledger.groupSpend(b.name, from, to)) + groupPending,
            );
          }
          spent = groupSpend.get(b.name)!;
        }
        // a budget of 0 allows nothing: it is spent from the start
        const percent = b.budgetMicros > 0 ? Math.floor((spent * 100) / b.budgetMicros) : 100;
        const subjectName = b.kind === 'group' ? b.name : user;
        const crossed = [50, 80, 100].filter((t) => percent >= t);
        if (!crossed.length) continue;
        const inserted = await this.d.db
          .insert(budgetAlerts)
          .values(
            crossed.map((t) => ({
              subjectKind: b.kind,
              subjectName,
              month,
              threshold: t,
              sentAt: now,
            })),
          )
          .onConflictDoNothing()
          .returning({ threshold: budgetAlerts.threshold });
        const newest = Math.max(0, ...inserted.map((i) => i.threshold));
        const whose = b.kind === 'group' ? `group ${b.name}'s` : 'your';
        if (newest) {
          report.alerts.push(`${b.kind}:${subjectName}:${newest}`);
          const stops = newest === 100 && b.hardStop;
          await this.d.notifier.send({
            user,
            kind: 'budget',
            level: newest === 100 ? 'error' : 'warning',
            title: `${newest} % of ${whose} monthly budget is spent`,
            body:
              `${dollars(spent)} of ${dollars(b.budgetMicros)} this month.` +
              (stops
                ? ` Running servers stop in ${Math.round(this.d.settings.budgetGraceSeconds / 60)} min unless an admin raises the budget.`
                : ''),
            actions: [{ id: 'open_billing', label: 'See usage' }],
            dedupeKey: `budget:${b.kind}:${subjectName}:${month}:${newest}`,
          });
        }
        if (percent < 100) continue;
        exhausted.add(user);
        if (!b.hardStop) continue;
        const [alert] = await this.d.db
          .select()
          .from(budgetAlerts)
          .where(
            and(
              eq(budgetAlerts.subjectKind, b.kind),
              eq(budgetAlerts.subjectName, subjectName),
              eq(budgetAlerts.month, month),
              eq(budgetAlerts.threshold, 100),
            ),
          );
        if (
          !alert ||
          now.getTime() - alert.sentAt.getTime() < this.d.settings.budgetGraceSeconds * 1000
        )
          continue;
        for (const r of running.filter((x) => x.userName === user)) {
          report.budgetStops.push(r.id);
          this.d.logger.info(
            { instance: r.id, user, budget: `${b.kind}:${subjectName}` },
            'meter: budget exhausted; stopping',
          );
          await this.d.store.note(
            r.id,
            100,
            `stopping: ${whose.replace('your', 'the')} monthly budget of ${dollars(b.budgetMicros)} is spent`,
          );
          await this.d.lifecycle
            .stop(user, r.serverName)
            .catch((err: unknown) =>
              this.d.logger.warn({ err, instance: r.id }, 'budget stop failed'),
            );
        }
      }
    }
    return exhausted;
  }

  private async cull(
    running: InstanceRow[],
    activity: Map<string, Activity>,
    limitsOf: (user: string) => Limits,
    exhausted: Set<string>,
    now: Date,
    report: CycleReport,
  ) {
    if (!running.length) return;
    const states = new Map(
      (
        await this.d.db
          .select({ s: idleState })
          .from(idleState)
          .innerJoin(instances, eq(instances.id, idleState.instanceId))
          .where(eq(instances.state, 'running'))
      ).map(({ s }) => [s.instanceId, s]),
    );
    const classOf = new Map(this.d.catalog().sizes.map((s) => [s.id, s.class]));
    const { warningSeconds } = this.d.settings.cull;
    for (const r of running) {
      if (!r.readyAt || !r.targetUrl) continue;
      const limits = limitsOf(r.userName);
      const gpu = classOf.get(r.sizeId) === 'gpu';
      const st = states.get(r.id);
      const decision = decideIdle({
        now,
        readyAt: r.readyAt,
        lastActivity: activity.get(`${r.userName}/${r.serverName}`)?.lastActivity ?? null,
        keepRunningAt: st?.keepRunningAt ?? null,
        warnedAt: st?.warnedAt ?? null,
        timeoutSeconds: gpu ? limits.idleTimeoutGpuSeconds : limits.idleTimeoutCpuSeconds,
        warningSeconds,
        maxAgeSeconds: limits.maxAgeSeconds,
      });
      if (decision.action === 'none') continue;
      if (decision.action !== 'stop' || decision.reason === 'idle') {
        // a busy kernel or GPU, as the agent reports it, keeps its server unless the money is
        // gone. A silent agent proves nothing: the hub's activity decides (and the silence is a
        // security event of its own, security/agent-watch.ts), so killing the agent cannot keep
        // a machine running forever.
        if (!exhausted.has(r.userName)) {
          const kernels = await this.d.kernels(r.id);
          const gpuAtWork = gpu && kernels !== 'busy' && (await this.d.gpuBusy?.(r.id)) === true;
          if (kernels === 'busy' || gpuAtWork) {
            report.keptBusy.push(r.id);
            this.d.logger.debug(
              { instance: r.id, kernels, gpuAtWork },
              'meter: idle by the hub, but its agent reports kernels or GPUs at work; not culled',
            );
            continue;
          }
        }
      }
      if (decision.action === 'warn') {
        report.warned.push(r.id);
        const minutes = Math.max(
          1,
          Math.round((decision.stopAt.getTime() - now.getTime()) / 60_000),
        );
        await this.d.db
          .insert(idleState)
          .values({ instanceId: r.id, warnedAt: now })
          .onConflictDoUpdate({ target: idleState.instanceId, set: { warnedAt: now } });
        await this.d.store.note(
          r.id,
          100,
          `idle for ${Math.round(decision.idleSeconds / 60)} min; stops at ${decision.stopAt.toISOString()} unless kept running`,
        );
        await this.d.notifier.send({
          user: r.userName,
          kind: 'idle_stop',
          level: 'warning',
          instanceId: r.id,
          server: r.serverName,
          title: `${r.serverName} is idle and stops in about ${minutes} min`,
          body: `No activity for ${Math.round(decision.idleSeconds / 60)} min on ${r.sizeId}. Choose "Keep running" to keep it.`,
          actions: [{ id: 'keep_running', label: 'Keep running' }],
          dedupeKey: `idle:${r.id}:${decision.idleSince.toISOString()}`,
        });
        continue;
      }
      report.culled.push(r.id);
      const why =
        decision.reason === 'max_age'
          ? `it reached its maximum age of ${Math.round((limits.maxAgeSeconds ?? 0) / 3600)} h`
          : `it was idle for ${Math.round(decision.idleSeconds / 60)} min`;
      this.d.logger.info(
        { instance: r.id, user: r.userName, reason: decision.reason },
        'meter: culling',
      );
      await this.d.store.note(r.id, 100, `stopping: ${why}`);
      await this.d.lifecycle
        .stop(r.userName, r.serverName)
        .catch((err: unknown) => this.d.logger.warn({ err, instance: r.id }, 'cull failed'));
    }
  }

  /** "Keep running": resets the idle clock of a running instance. */
  async keepRunning(instanceId: string, at = this.now()): Promise<void> {
    await this.d.db
      .insert(idleState)
      .values({ instanceId, keepRunningAt: at, warnedAt: null })
      .onConflictDoUpdate({
        target: idleState.instanceId,
        set: { keepRunningAt: at, warnedAt: null },
      });
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
