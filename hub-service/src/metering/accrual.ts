/**
 * Accrual, one pass per meter cycle over its snapshot: turns each metered instance (and, every
 * few minutes, each user's home volume) into a ledger stream priced by the user's plan, and has
 * the ledger bring every stream up to the cycle's time. Billing follows the lifecycle only, never
 * the hub, so a slow hub delays nothing here.
 */
import type { CycleReport, MeterSnapshot } from './cycle.js';
import type { Ledger, Stream } from './ledger.js';
import { HOUR, MINIMUM_SECONDS, STORAGE_MONTH_SECONDS } from './money.js';

export interface AccrualSettings {
  /** a running stream's usage is written at most this often; budgets still see it to the second */
  accrueEverySeconds: number;
  activeWindowSeconds: number;
  homeGb: number;
  homeGbMonthMicros: number;
  storageEverySeconds: number;
}

export class Accrual {
  private lastStorage = 0;
  /**
   * Each stream's plan at the last cycle that priced it, and that cycle's time. Usage that was
   * priced but not written yet (NGSCI_METER_ACCRUE_EVERY) ran under that plan: when the plan
   * changes, it is written at the old one first, so a change never reaches back before the cycle
   * that saw it.
   */
  private priced = new Map<string, { planId: string; multiplierPpm: number; at: Date }>();

  constructor(
    private readonly ledger: Pick<Ledger, 'accrue' | 'homeVolumes'>,
    private readonly settings: AccrualSettings,
  ) {}

  /** Accrues the snapshot; answers the µ$ per user priced but not written (budgets count them). */
  async run(snap: MeterSnapshot, report: CycleReport): Promise<Map<string, number>> {
    const { now } = snap;
    const streams = snap.metered.map((r): Stream => {
      const groups = snap.groupsOf(r.userName);
      const plan = snap.plans.planOf(r.userName, groups);
      const terminal = r.state === 'stopped' || r.state === 'failed';
      return {
        key: r.id,
        kind: 'compute',
        user: r.userName,
        groups,
        instanceId: r.id,
        server: r.serverName,
        size: r.sizeId,
        sizeClass: snap.classOf(r.sizeId) ?? 'cpu',
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
        lastActivity: snap.lastActivity(r.userName, r.serverName),
      };
    });
    const { homeGb, homeGbMonthMicros, storageEverySeconds } = this.settings;
    if (
      homeGb > 0 &&
      homeGbMonthMicros > 0 &&
      now.getTime() - this.lastStorage >= storageEverySeconds * 1000
    ) {
      streams.push(...(await this.storageStreams(snap)));
      this.lastStorage = now.getTime();
    }
    report.streams = streams.length;
    let written = 0;
    // a plan changed since the last cycle: what ran until then is billed at the old plan, now
    const byTime = new Map<number, Stream[]>();
    for (const s of streams) {
      const before = this.priced.get(s.key);
      if (
        before &&
        before.at < now &&
        (before.planId !== s.planId || before.multiplierPpm !== s.multiplierPpm)
      ) {
        const at = before.at.getTime();
        byTime.set(at, [
          ...(byTime.get(at) ?? []),
          { ...s, planId: before.planId, multiplierPpm: before.multiplierPpm },
        ]);
      }
      this.priced.set(s.key, { planId: s.planId, multiplierPpm: s.multiplierPpm, at: now });
    }
    for (const [at, old] of byTime)
      written += (await this.ledger.accrue(old, new Date(at), this.settings.activeWindowSeconds, 0))
        .written;
    // streams that ended are not priced again
    if (this.priced.size > streams.length * 2 + 1000) {
      const live = new Set(streams.map((s) => s.key));
      for (const k of this.priced.keys()) if (!live.has(k)) this.priced.delete(k);
    }
    const accrued = await this.ledger.accrue(
      streams,
      now,
      this.settings.activeWindowSeconds,
      this.settings.accrueEverySeconds,
    );
    report.rowsWritten = written + accrued.written;
    return accrued.pending;
  }

  /** Leadership changed: another replica priced the streams meanwhile. */
  forget(): void {
    this.priced.clear();
  }

  /** Home volumes: billed per GB-month from each user's first instance, whether running or not. */
  private async storageStreams(snap: MeterSnapshot): Promise<Stream[]> {
    const { homeGb, homeGbMonthMicros } = this.settings;
    return (await this.ledger.homeVolumes()).map(({ user, since }) => {
      const groups = snap.groupsOf(user);
      const plan = snap.plans.planOf(user, groups);
      return {
        key: `home:${user}`,
        kind: 'storage',
        user,
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
        anchor: since,
        closeAt: null,
        minimumSeconds: 0,
        lastActivity: null,
      } satisfies Stream;
    });
  }
}
