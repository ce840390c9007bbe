/**
 * The state every ngsci panel shows, fetched through the API seam: who the user is, the catalog,
 * the user's instances (this page's server first), usage, budget and statements. Panels ask for
 * refreshes when they become visible and stop asking when hidden; the model itself never polls
 * on its own, so a page nobody looks at costs the service nothing.
 *
 * DOM-free (Lumino signals only), so it is unit-tested with a fake `fetch`.
 */
import { Signal, type ISignal } from '@lumino/signaling';
import {
  NgsciApiError,
  type Budget,
  type Catalog,
  type Instance,
  type InstanceEvent,
  type Me,
  type NgsciApi,
  type StatementSummary,
  type Usage,
} from './api';
import {
  advance,
  instanceBilled,
  monthWindow,
  spentThisMonth,
  spentToday as spentTodayOf,
  statementTotal as statementTotalOf,
  usageBySize,
  type BudgetScope,
  type OpenStream,
} from '@ngsci/contract';
import { costOf, costSoFar, startOfDayUtc } from './projection';
import type { INgsciModel, ResizeProgress, Section } from './tokens';

export type { ResizeProgress, Section };

const ACTIVE = new Set(['requested', 'provisioning', 'starting', 'running', 'stopping']);
const STARTING = new Set(['requested', 'provisioning', 'starting']);
/** the states of an instance at which what it costs changes: every money part is asked again */
const MONEY_STATES = new Set(['running', 'stopping', 'stopped', 'failed']);
const ENDED = new Set(['stopped', 'failed']);
/** the event of a spot instance the cloud took back, when the service starts it again (hub-service instances/preemption.ts) */
const RELAUNCH = /^the cloud took this spot machine back; starting the server again/;
/** the service will not let this page follow its server: watching again would not help */
const WATCH_ENDS = new Set(['unauthenticated', 'forbidden', 'login_required', 'endpoint_missing']);

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export class NgsciModel implements INgsciModel {
  readonly api: NgsciApi;
  /** this page's server as the API names it */
  readonly server: string;
  readonly user: string;

  me: Me | null = null;
  catalog: Catalog | null = null;
  instances: Instance[] = [];
  usage: Usage | null = null;
  /** what today has cost, as the ledger said at `todayAt` */
  today: { micros: number; at: number } | null = null;
  budget: Budget | null = null;
  statements: StatementSummary[] | null = null;
  /** the last error of each section, or null when its last refresh worked */
  errors: Record<Section | 'me', NgsciApiError | null> = {
    me: null,
    instance: null,
    usage: null,
    billing: null,
  };
  /** the latest lifecycle event of a server that is starting, per server */
  progress = new Map<string, InstanceEvent>();
  resizing: ResizeProgress | null = null;

  private readonly _changed = new Signal<this, Section | 'me'>(this);
  private readonly _instanceEvent = new Signal<this, { server: string; event: InstanceEvent }>(
    this,
  );
  private readonly _spotNotice = new Signal<this, InstanceEvent>(this);
  private followers = new Map<string, AbortController>();
  /** this page's own server's event stream, followed for the page's life (watch) */
  private watcher: AbortController | null = null;
  /** the newest state the watched stream gave for this page's server */
  private watchedState: string | null = null;
  private moneyRefresh: Promise<void> | null = null;
  private moneyAgain = false;
  private readonly localNow: () => number;
  /** service clock − local clock, from the newest answer's asOf */
  private offset = 0;
  /** each answer's clock and open streams: its figures tick from them (figures.ts) */
  private instanceFigs: { asOf: string; streams: OpenStream[] } | null = null;
  private usageFigs: { asOf: string; streams: OpenStream[]; from: number } | null = null;
  private statementFigs: { asOf: string; streams: OpenStream[] } | null = null;

  /** The service's clock: every figure is taken and ticked on it. */
  serviceNow(): number {
    return this.localNow() + this.offset;
  }

  private now(): number {
    return this.serviceNow();
  }

  private sync(asOf: string | undefined): void {
    const t = asOf ? Date.parse(asOf) : NaN;
    if (Number.isFinite(t)) this.offset = t - this.localNow();
  }

  constructor(opts: { api: NgsciApi; server: string; user: string; now?: () => number }) {
    this.api = opts.api;
    this.server = opts.server;
    this.user = opts.user;
    this.localNow = opts.now ?? Date.now;
  }

  /** Emits the name of the part that changed. */
  get changed(): ISignal<this, Section | 'me'> {
    return this._changed;
  }

  /** Every lifecycle event the model follows (failed starts become notifications). */
  get instanceEvent(): ISignal<this, { server: string; event: InstanceEvent }> {
    return this._instanceEvent;
  }

  /**
   * The cloud announced it takes this page's spot machine back (an event of the watched stream,
   * as it comes): the notifications ask for their notices at once rather than at the next poll.
   */
  get spotNotice(): ISignal<this, InstanceEvent> {
    return this._spotNotice;
  }

  /** The newest instance of this page's server. */
  get current(): Instance | null {
    return this.latestOf(this.server);
  }

  latestOf(server: string): Instance | null {
    return this.instances.find((i) => i.server === server) ?? null;
  }

  /** The user's other servers (newest instance of each), for start/stop from the sidebar. */
  get otherServers(): Instance[] {
    const seen = new Set([this.server]);
    const out: Instance[] = [];
    for (const i of this.instances) {
      if (seen.has(i.server)) continue;
      seen.add(i.server);
      out.push(i);
    }
    return out;
  }

  /** Sizes the user may pick, as the catalog and the budget's allowed sizes say. */
  get allowedSizes(): Catalog['sizes'] {
    const allowed = this.budget?.limits.allowedSizes ?? null;
    return (this.catalog?.sizes ?? []).filter((s) => !allowed || allowed.includes(s.id));
  }

  /** The clouds this hub provisions on (the resize list offers a choice when there are several). */
  get clouds(): Catalog['clouds'] {
    return this.catalog?.clouds ?? [];
  }

  /** The price per hour of a size on a cloud (default: this instance's), or null when not offered there. */
  rateOf(
    sizeId: string,
    cloud = this.current?.cloud ?? this.catalog?.defaultCloud,
    spot = this.current?.spot ?? false,
  ): number | null {
    const size =
      this.catalog?.sizes.find((s) => s.id === sizeId) ??
      this.catalog?.pairs?.find((s) => s.id === sizeId);
    // the named cloud's offer only: a price from another cloud would mislead
    const offer = size?.offers.find((o) => o.cloud === cloud && o.available);
    if (!offer) return null;
    const list =
      spot && offer.spotMicrosPerHour !== null
        ? offer.spotMicrosPerHour
        : offer.onDemandMicrosPerHour;
    const ppm = this.me?.plan.multiplierPpm ?? 1_000_000;
    return Math.round((list * ppm) / 1_000_000);
  }

  /** What the running instances of the user burn per hour (the budget's figure, else summed). */
  get burnMicrosPerHour(): number {
    if (this.budget) return this.budget.burnMicrosPerHour;
    return this.instances
      .filter((i) => i.state === 'running')
      .reduce((a, i) => a + i.ratePerHourMicros, 0);
  }

  /** Month-to-date spend, ticking between refreshes with the burn rate. */
  monthToDate(now = this.now()): number | null {
    if (!this.budget) return null;
    if (this.budget.figures) return spentThisMonth(this.budget.figures, now);
    return this.budget.spentMicros + costOf(now - this.budgetAt, this.budget.burnMicrosPerHour);
  }

  /**
   * Budget spent (contract figures.ts): a user's own or the default budget is spent this month; a
   * group's is the group's month at asOf, ticked with its members' open streams.
   */
  budgetSpent(scope: BudgetScope, now = this.now()): number {
    if (scope.kind !== 'group') return this.monthToDate(now) ?? scope.spentMicros;
    const asOf = this.budget?.asOf ? Date.parse(this.budget.asOf) : NaN;
    if (!scope.streams || !Number.isFinite(asOf)) return scope.spentMicros;
    const w = monthWindow(now);
    // a new month since asOf: nothing of it is in the figure but the streams' part
    const base = monthWindow(asOf).from === w.from ? scope.spentMicros : 0;
    return advance(base, w, scope.streams, asOf, now);
  }

  /**
   * What today has cost so far: the ledger's figure plus what has run since it was read; without
   * the usage endpoint, what this server's instance has cost today.
   */
  spentToday(now = this.now()): number {
    if (this.budget?.figures) return spentTodayOf(this.budget.figures, now);
    const running = this.instances.filter((i) => i.state === 'running');
    if (this.today) {
      return (
        this.today.micros +
        running.reduce(
          (a, i) =>
            a +
            costOf(
              now - Math.max(this.today!.at, Date.parse(i.readyAt ?? '')),
              i.ratePerHourMicros,
            ),
          0,
        )
      );
    }
    const day = startOfDayUtc(now);
    return running.reduce((a, i) => {
      const from = Math.max(Date.parse(i.readyAt ?? ''), day);
      return (
        a +
        (Number.isFinite(from)
          ? costSoFar(
              { readyAt: new Date(from).toISOString(), ratePerHourMicros: i.ratePerHourMicros },
              now,
            )
          : 0)
      );
    }, 0);
  }

  private budgetAt = 0;

  /** Billed so far for an instance: the service's figure ticked with its stream (figures.ts). */
  billedSoFar(inst: Instance, now = this.now()): number {
    if (inst.billedMicros !== undefined && this.instanceFigs)
      return instanceBilled(inst, this.instanceFigs, now);
    return costSoFar(inst, now);
  }

  /** Usage per size over the usage window, ticked: one row per size with usage or running. */
  usageRows(now = this.now()): { size: string; seconds: number; micros: number }[] {
    if (!this.usage) return [];
    const figs = this.usageFigs ?? {
      asOf: this.usage.to,
      streams: [],
      from: Date.parse(this.usage.from),
    };
    return usageBySize(this.usage, { from: figs.from, to: Infinity }, figs, now);
  }

  /** A statement's total; the running month's ticks with the open streams. */
  statementTotal(s: StatementSummary, now = this.now()): number {
    return this.statementFigs ? statementTotalOf(s, this.statementFigs, now) : s.totalMicros;
  }

  async refreshMe(): Promise<void> {
    await this.guard('me', async () => {
      this.me = await this.api.me();
      if (!this.catalog) this.catalog = await this.api.catalog();
    });
  }

  async refreshInstances(): Promise<void> {
    await this.guard('instance', async () => {
      if (!this.catalog) this.catalog = await this.api.catalog();
      const list = await this.api.instanceList();
      this.sync(list.asOf);
      // the list has running instances only: once this page's server has stopped, its newest
      // instance (stopped, with its final cost) is asked for, so the Instance section shows it
      // (none yet is a 404; any failure leaves the list as it is)
      const listed = list.instances.some((i) => i.server === this.server);
      const own = listed ? null : await this.api.instance(this.server).catch(() => null);
      this.instances = own ? [...list.instances, own] : list.instances;
      this.instanceFigs =
        list.asOf && list.streams ? { asOf: list.asOf, streams: list.streams } : null;
      for (const i of this.instances) {
        if (STARTING.has(i.state) && !this.followers.has(i.server)) void this.follow(i.server);
      }
    });
  }

  async refreshUsage(days = 30): Promise<void> {
    const now = this.now();
    await this.guard('usage', async () => {
      const from = new Date(startOfDayUtc(now) - (days - 1) * 86_400_000).toISOString();
      this.usage = await this.api.usage({ from, granularity: 'day' });
      this.sync(this.usage.asOf);
      this.usageFigs =
        this.usage.asOf && this.usage.streams
          ? { asOf: this.usage.asOf, streams: this.usage.streams, from: Date.parse(from) }
          : null;
      const today = startOfDayUtc(now);
      const micros = this.usage.series
        .filter((p) => Date.parse(p.start) >= today)
        .reduce((a, p) => a + p.amountMicros, 0);
      this.today = { micros, at: now };
    });
  }

  async refreshBilling(): Promise<void> {
    await this.guard('billing', async () => {
      const [budget, statements] = await Promise.allSettled([
        this.api.budget(),
        this.api.statementList(),
      ]);
      if (budget.status === 'fulfilled') {
        this.sync(budget.value.asOf);
        this.budget = budget.value;
        this.budgetAt = this.now();
      }
      // a failed answer keeps the last list (and its error says so), rather than showing none
      if (statements.status === 'fulfilled') {
        const list = statements.value;
        this.statements = list.statements;
        this.statementFigs =
          list.asOf && list.streams ? { asOf: list.asOf, streams: list.streams } : null;
      }
      if (budget.status === 'rejected') throw budget.reason;
      if (statements.status === 'rejected') throw statements.reason;
    });
  }

  /**
   * Every money part again at once — the status bar, the Instance, Usage and Billing sections, the
   * budget bar, the statements — after an instance changed state (a start, a stop, a resize), so
   * no surface keeps a figure from before the change. A call while one runs makes one more run
   * after it (the figures then are at least as new as the call).
   */
  refreshMoney(): Promise<void> {
    this.moneyAgain = true;
    if (!this.moneyRefresh) {
      this.moneyRefresh = (async () => {
        while (this.moneyAgain) {
          this.moneyAgain = false;
          await this.refresh(['instance', 'usage', 'billing']);
        }
      })().finally(() => {
        this.moneyRefresh = null;
      });
    }
    return this.moneyRefresh;
  }

  /**
   * Follows this page's server's lifecycle events for the page's life: each time one of its
   * instances changes state (runs, stops, fails; a resize is a stop and a start) every money
   * part is asked again at once (`refreshMoney`). A stop is seen here while the page's token
   * still works (the hub revokes it once the stop is through). Ends on dispose, or when the
   * service will not let the page follow (its token refused and no sign-in, an older service).
   */
  watch(): void {
    if (this.watcher) return;
    const ctl = new AbortController();
    this.watcher = ctl;
    void (async () => {
      let after: number | undefined;
      let wait = 1000;
      while (!ctl.signal.aborted) {
        try {
          after = await this.api.followEvents(
            this.server,
            (e) => this.onWatched(e),
            ctl.signal,
            after,
          );
          wait = 1000;
        } catch (err) {
          if ((err as Error)?.name === 'AbortError' || ctl.signal.aborted) break;
          const code = err instanceof NgsciApiError ? err.code : null;
          if (code && WATCH_ENDS.has(code)) break;
          wait = Math.min(code === 'rate_limited' ? 30_000 : wait * 2, 30_000);
        }
        // the stream ended (a proxy's timeout, a restart of the service): again, not at once
        await pause(wait, ctl.signal);
      }
      if (this.watcher === ctl) this.watcher = null;
    })();
  }

  private onWatched(e: InstanceEvent): void {
    this.watchedState = e.state;
    if (e.kind === 'spot_notice') this._spotNotice.emit(e);
    // the cloud took this spot machine back and the service starts the server again: the page
    // follows it as it follows a resize (the same overlay, and a reload once it runs)
    if (e.state === 'stopped' && RELAUNCH.test(e.message) && !this.resizing) {
      const from = this.instances.find((i) => i.id === e.instanceId);
      if (from && e.instanceId === this.current?.id) {
        this.resizing = {
          server: this.server,
          fromInstanceId: e.instanceId,
          toSize: from.size,
          last: e,
          readyInstanceId: null,
          failed: null,
          preempted: true,
        };
        this._changed.emit('instance');
        void this.follow(this.server, { untilNewInstanceFrom: e.instanceId });
      }
    }
    if (!MONEY_STATES.has(e.state)) return;
    // the replay of what is known already (a reconnect starts with the instance's events)
    if (this.instances.find((i) => i.id === e.instanceId)?.state === e.state) return;
    void this.refreshMoney();
  }

  /** This page's server has stopped (so the hub has revoked, or soon revokes, the page's token). */
  get pageServerEnded(): boolean {
    const inst = this.current;
    return (
      (!!inst && ENDED.has(inst.state)) ||
      (this.watchedState !== null && ENDED.has(this.watchedState))
    );
  }

  async refresh(sections: Section[] = ['instance', 'usage', 'billing']): Promise<void> {
    if (!this.me) await this.refreshMe();
    await Promise.all(
      sections.map((s) =>
        s === 'instance'
          ? this.refreshInstances()
          : s === 'usage'
            ? this.refreshUsage()
            : this.refreshBilling(),
      ),
    );
  }

  private async guard(section: Section | 'me', fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      this.errors[section] = null;
    } catch (err) {
      let e =
        err instanceof NgsciApiError
          ? err
          : new NgsciApiError(0, 'bad_response', (err as Error)?.message ?? String(err));
      // the page's token died with its server: say that, not "reload to sign in again"
      if (e.code === 'unauthenticated' && this.pageServerEnded)
        e = new NgsciApiError(e.status, 'page_server_stopped', e.message, e.requestId);
      this.errors[section] = e;
    }
    this._changed.emit(section);
  }

  /** Starts one of the user's servers at a size (the current size by default). */
  async start(server: string, size: string): Promise<void> {
    const inst = await this.api.launch({ server, size });
    this.upsert(inst);
    void this.follow(server);
  }

  async stop(server: string): Promise<Instance> {
    const inst = await this.api.stop(server);
    this.upsert(inst);
    // its stop changes every money figure: followed until it is through (this page's own
    // server is followed all along by watch)
    if (!(server === this.server && this.watcher) && ACTIVE.has(inst.state))
      void this.follow(server, { untilEndOf: inst.id });
    return inst;
  }

  /**
   * Resizes a server: the service stops it and starts it at the new size (a new instance). The
   * model follows the events until the new instance runs or fails; `resizing` says where it is.
   */
  async resize(server: string, size: string, cloud?: string): Promise<void> {
    const before = this.latestOf(server);
    const inst = await this.api.resize(server, { size, ...(cloud ? { cloud } : {}) });
    this.resizing = {
      server,
      fromInstanceId: before?.id ?? inst.id,
      toSize: size,
      last: null,
      readyInstanceId: null,
      failed: null,
    };
    this.upsert(inst);
    this._changed.emit('instance');
    void this.follow(server, { untilNewInstanceFrom: this.resizing.fromInstanceId });
  }

  private upsert(inst: Instance): void {
    this.instances = [inst, ...this.instances.filter((i) => i.id !== inst.id)].sort(
      (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt),
    );
    this._changed.emit('instance');
  }

  /**
   * Follows a server's event stream while something there is starting (or a resize is under way),
   * reconnecting after breaks; stops when it runs, fails or stops.
   */
  async follow(
    server: string,
    opts: { untilNewInstanceFrom?: string; untilEndOf?: string } = {},
  ): Promise<void> {
    this.followers.get(server)?.abort();
    const ctl = new AbortController();
    this.followers.set(server, ctl);
    let after: number | undefined;
    let done = false;
    const onEvent = (e: InstanceEvent) => {
      this._instanceEvent.emit({ server, event: e });
      const r = this.resizing;
      const resizingHere = r && r.server === server;
      if (resizingHere) r.last = e;
      if (STARTING.has(e.state)) this.progress.set(server, e);
      else this.progress.delete(server);
      const fresh = !opts.untilNewInstanceFrom || e.instanceId !== opts.untilNewInstanceFrom;
      if (opts.untilEndOf) {
        // a stop: until that instance has stopped (the replay of its start does not end it)
        if (e.instanceId === opts.untilEndOf && ENDED.has(e.state)) {
          done = true;
          ctl.abort();
        }
      } else if (
        fresh &&
        (e.state === 'running' ||
          e.state === 'failed' ||
          (e.state === 'stopped' && !opts.untilNewInstanceFrom))
      ) {
        if (resizingHere && e.state === 'running') r.readyInstanceId = e.instanceId;
        if (resizingHere && e.state === 'failed')
          r.failed = e.message || 'the new instance failed to start';
        done = true;
        ctl.abort();
      }
      this._changed.emit('instance');
    };
    for (let attempt = 0; !done && !ctl.signal.aborted && attempt < 600; attempt++) {
      try {
        after = await this.api.followEvents(server, onEvent, ctl.signal, after);
      } catch (err) {
        if ((err as Error)?.name === 'AbortError' || ctl.signal.aborted) break;
        const r = this.resizing;
        if (
          r &&
          r.server === server &&
          r.server === this.server &&
          err instanceof NgsciApiError &&
          err.code === 'unauthenticated'
        ) {
          // the hub revoked this page's token, which it does once the old machine has stopped:
          // the stream cannot come back, the page follows its server's address from here
          r.eventsLost = true;
          this._changed.emit('instance');
          break;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    if (this.followers.get(server) === ctl) this.followers.delete(server);
    // a start, a stop or a resize is through: every money figure changed with it
    if (done) await this.refreshMoney();
  }

  isActive(i: Instance | null): boolean {
    return !!i && ACTIVE.has(i.state);
  }

  dispose(): void {
    this.watcher?.abort();
    this.watcher = null;
    for (const c of this.followers.values()) c.abort();
    this.followers.clear();
    Signal.clearData(this);
  }
}
