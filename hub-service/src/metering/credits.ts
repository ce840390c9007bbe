/**
 * Cloud credit grants: the store admins write, the draw-down of each grant by usage, the
 * organisation's statement per cloud and month, alerts about grants that will go to waste or run
 * out, and where a launch that names no cloud should run.
 *
 * The draw-down is never stored. It is replayed from the ledger (usage_intervals) every time: a
 * cloud's usage at list price, summed per UTC day, is taken day by day from the grants valid that
 * day, earliest expiry first. The ledger cannot count a second twice (ledger.ts), and the replay
 * is a pure function of the ledger and the grants, so a restart, a replica or a grant recorded
 * late can never apply credit twice or let a balance drift. Everything is integer µ$.
 *
 * What a grant draws down is the organisation's cost at list price: the row's rate without the
 * researcher's plan multiplier (a non-profit researcher runs free, but the cloud still bills).
 */
import { sql } from 'drizzle-orm';
import {
  cumulativeMicros,
  formatMicros,
  formatRate,
  type Catalog,
  type CreditAlert,
  type CreditCloud,
  type CreditGrant,
  type CreditGrantState,
  type CreditStatement,
  type Placement,
  type PlacementOption,
} from '@ngsci/contract';
import type { Db } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import { creditGrants } from '../db/schema.js';
import { resultRows } from './ledger.js';
import { nextMonthStart, parseMonth } from './money.js';

export const CREDIT_CLOUDS: readonly CreditCloud[] = ['aws', 'gcp', 'azure'];

export type GrantRow = typeof creditGrants.$inferSelect;

/** One cloud's usage on one UTC day, at list price (µ$). */
export interface CloudDay {
  cloud: string;
  day: string;
  listMicros: number;
}

export interface DrawDown {
  /** µ$ each grant has covered */
  used: Map<number, number>;
  /** µ$ of credit applied per `cloud|day` */
  applied: Map<string, number>;
}

const DAY_MS = 86_400_000;
export const dayOf = (t: Date): string => t.toISOString().slice(0, 10);
const addDays = (day: string, n: number): string =>
  dayOf(new Date(new Date(`${day}T00:00:00Z`).getTime() + n * DAY_MS));

/** Grants in the order usage takes them: earliest expiry, then earliest start, then oldest. */
export function drawOrder<T extends Pick<GrantRow, 'id' | 'startsOn' | 'expiresOn'>>(
  grants: readonly T[],
): T[] {
  return [...grants].sort(
    (a, b) =>
      a.expiresOn.localeCompare(b.expiresOn) || a.startsOn.localeCompare(b.startsOn) || a.id - b.id,
  );
}

/**
 * Takes each cloud's daily usage from the grants valid that day, earliest expiry first, until the
 * usage or the grants are used up. Pure; usage days may come in any order.
 */
export function drawDown(
  grants: readonly Pick<GrantRow, 'id' | 'cloud' | 'amountMicros' | 'startsOn' | 'expiresOn'>[],
  usage: readonly CloudDay[],
): DrawDown {
  const used = new Map<number, number>(grants.map((g) => [g.id, 0]));
  const applied = new Map<string, number>();
  const ordered = drawOrder(grants);
  const days = [...usage].sort(
    (a, b) => a.day.localeCompare(b.day) || a.cloud.localeCompare(b.cloud),
  );
  for (const u of days) {
    let left = u.listMicros;
    if (left <= 0) continue;
    for (const g of ordered) {
      if (left === 0) break;
      if (g.cloud !== u.cloud || u.day < g.startsOn || u.day > g.expiresOn) continue;
      const take = Math.min(left, g.amountMicros - used.get(g.id)!);
      if (take <= 0) continue;
      used.set(g.id, used.get(g.id)! + take);
      left -= take;
      const key = `${u.cloud}|${u.day}`;
      applied.set(key, (applied.get(key) ?? 0) + take);
    }
  }
  return { used, applied };
}

export function grantState(g: GrantRow, usedMicros: number, today: string): CreditGrantState {
  if (usedMicros >= g.amountMicros) return 'used_up';
  if (today < g.startsOn) return 'upcoming';
  if (today > g.expiresOn) return 'expired';
  return 'active';
}

export const toCreditGrant = (g: GrantRow, usedMicros: number, today: string): CreditGrant => ({
  id: g.id,
  cloud: g.cloud,
  amountMicros: g.amountMicros,
  startsOn: g.startsOn,
  expiresOn: g.expiresOn,
  note: g.note,
  createdBy: g.createdBy,
  createdAt: g.createdAt.toISOString(),
  usedMicros,
  remainingMicros: g.amountMicros - usedMicros,
  state: grantState(g, usedMicros, today),
});

const CLOUD_LABEL: Record<string, string> = {
  aws: 'AWS',
  gcp: 'GCP',
  azure: 'Azure',
  local: 'this machine',
};
export const cloudLabel = (cloud: string): string => CLOUD_LABEL[cloud] ?? cloud;

/**
 * Alerts for one cloud's grants at a daily burn: a grant that runs out within `withinDays` days,
 * and one that expires within `withinDays` days with credit left. The future is the same
 * draw-down, fed `burn` µ$ a day from tomorrow.
 */
export function creditAlerts(
  grants: readonly GrantRow[],
  used: ReadonlyMap<number, number>,
  burnByCloud: ReadonlyMap<string, number>,
  today: string,
  withinDays: number,
): CreditAlert[] {
  const alerts: CreditAlert[] = [];
  const horizon = addDays(today, withinDays);
  for (const cloud of CREDIT_CLOUDS) {
    const mine = grants.filter((g) => g.cloud === cloud && g.expiresOn >= today);
    if (!mine.length) continue;
    const burn = burnByCloud.get(cloud) ?? 0;
    // what is left of each grant now, then day after day at the current burn
    const left = new Map(mine.map((g) => [g.id, g.amountMicros - (used.get(g.id) ?? 0)]));
    const ranOut = new Map<number, string>();
    const ordered = drawOrder(mine);
    for (let day = addDays(today, 1); day <= horizon; day = addDays(day, 1)) {
      let need = burn;
      for (const g of ordered) {
        if (need === 0) break;
        if (day < g.startsOn || day > g.expiresOn) continue;
        const have = left.get(g.id)!;
        if (have <= 0) continue;
        const take = Math.min(have, need);
        left.set(g.id, have - take);
        need -= take;
        if (have - take === 0) ranOut.set(g.id, day);
      }
    }
    for (const g of ordered) {
      const remaining = g.amountMicros - (used.get(g.id) ?? 0);
      if (remaining <= 0) continue;
      const out = ranOut.get(g.id);
      const what = g.note
        ? `${cloudLabel(cloud)} grant '${g.note}'`
        : `${cloudLabel(cloud)} grant #${g.id}`;
      if (out) {
        alerts.push({
          grantId: g.id,
          cloud,
          kind: 'runs_out',
          on: out,
          remainingMicros: remaining,
          burnMicrosPerDay: burn,
          message: `${what} runs out around ${out} at the current burn of ${formatMicros(burn)}/day (${formatMicros(remaining)} left)`,
        });
      } else if (g.expiresOn <= horizon) {
        const unused = left.get(g.id)!;
        alerts.push({
          grantId: g.id,
          cloud,
          kind: 'expires_unused',
          on: g.expiresOn,
          remainingMicros: remaining,
          burnMicrosPerDay: burn,
          unusedMicros: unused,
          message: `${what} expires on ${g.expiresOn} with about ${formatMicros(unused)} unused at the current burn of ${formatMicros(burn)}/day`,
        });
      }
    }
  }
  return alerts;
}

/** The credit a cloud has for a run that starts today: grants valid today with credit left. */
export interface CloudCredit {
  cloud: string;
  grants: Array<{ remainingMicros: number; expiresOn: string }>;
}

/** Expected hours of a run, for placement when the launch does not say (docs/billing.md). */
export const EXPECTED_RUN_HOURS = 8;

/**
 * Where a size runs when the launch names no cloud: on the cloud where the expected run costs the
 * organisation least after credits (credits covering it first), then the lowest list price, then
 * the sooner-expiring credit, then the hub's default cloud. Only clouds this hub provisions on and
 * that offer the size (and spot, when asked) are candidates. Pure.
 */
export function choosePlacement(
  catalog: Catalog,
  req: { size: string; spot?: boolean | undefined },
  credit: ReadonlyMap<string, CloudCredit['grants']>,
  expectedHours = EXPECTED_RUN_HOURS,
): Placement | null {
  const size = catalog.sizes.find((s) => s.id === req.size);
  if (!size) return null;
  const seconds = Math.round(expectedHours * 3600);
  const options: PlacementOption[] = [];
  for (const o of size.offers) {
    if (!o.available || !catalog.clouds.includes(o.cloud)) continue;
    const rate = req.spot ? o.spotMicrosPerHour : o.onDemandMicrosPerHour;
    if (rate === null) continue;
    const expected = cumulativeMicros(rate, seconds, 1_000_000, 3600);
    let covered = 0;
    let until: string | null = null;
    const grants = [...(credit.get(o.cloud) ?? [])].sort((a, b) =>
      a.expiresOn.localeCompare(b.expiresOn),
    );
    for (const g of grants) {
      if (covered >= expected) break;
      if (g.remainingMicros <= 0) continue;
      covered += Math.min(g.remainingMicros, expected - covered);
      until ??= g.expiresOn;
    }
    options.push({
      cloud: o.cloud as PlacementOption['cloud'],
      region: o.region,
      ratePerHourMicros: rate,
      expectedMicros: expected,
      coveredMicros: covered,
      netMicros: expected - covered,
      creditsUntil: until,
    });
  }
  if (!options.length) return null;
  const rank = (c: string) => (c === catalog.defaultCloud ? 0 : 1);
  options.sort(
    (a, b) =>
      a.netMicros - b.netMicros ||
      a.ratePerHourMicros - b.ratePerHourMicros ||
      (a.creditsUntil ?? '9999').localeCompare(b.creditsUntil ?? '9999') ||
      rank(a.cloud) - rank(b.cloud),
  );
  const best = options[0]!;
  return {
    size: size.id,
    cloud: best.cloud,
    region: best.region,
    reason: placementReason(best, options, size.id, expectedHours),
    expectedHours,
    options,
  };
}

function placementReason(
  best: PlacementOption,
  options: readonly PlacementOption[],
  size: string,
  hours: number,
): string {
  const on = `on ${cloudLabel(best.cloud)}`;
  if (best.coveredMicros > 0 && best.netMicros === 0)
    return `${on}: covered by research credits until ${best.creditsUntil}`;
  if (best.coveredMicros > 0)
    return `${on}: credits cover ${formatMicros(best.coveredMicros)} of the expected ${formatMicros(best.expectedMicros)} (${hours} h at ${formatRate(best.ratePerHourMicros)})`;
  if (options.length === 1) return `${on}: the only cloud this hub offers ${size} on`;
  return `${on}: the lowest list price, ${formatRate(best.ratePerHourMicros)} (no credits left that cover it)`;
}

/** The grants, the ledger's daily list cost per cloud, and everything derived from them. */
export class Credits {
  constructor(private readonly db: Db) {}

  async list(): Promise<GrantRow[]> {
    return this.db.select().from(creditGrants).orderBy(creditGrants.expiresOn, creditGrants.id);
  }

  async add(input: {
    cloud: CreditCloud;
    amountMicros: number;
    startsOn: string;
    expiresOn: string;
    note?: string | undefined;
    createdBy: string;
  }): Promise<GrantRow> {
    const [row] = await this.db
      .insert(creditGrants)
      .values({ ...input, note: input.note || null })
      .returning();
    return row!;
  }

  async remove(id: number): Promise<GrantRow | null> {
    const [row] = await this.db
      .delete(creditGrants)
      .where(sql`${creditGrants.id} = ${id}`)
      .returning();
    return row ?? null;
  }

  /**
   * Each cloud's list cost per UTC day over [from, to): every row priced at its rate without the
   * plan multiplier, with the ledger's cumulative rounding (money.ts), so a stream's days sum to
   * its exact list price. In bigint: every operand is non-negative, so integer division is the
   * floor, and 2·rate·seconds stays far below 2^63 (a $1,000/h machine billed for 3 years: 2·10^17).
   */
  async usageByDay(from: string, to: string): Promise<CloudDay[]> {
    if (from >= to) return [];
    const rows = resultRows<{ cloud: string; day: string; list: string | number }>(
      await this.db.execute(sql`
        select cloud, to_char(d, 'YYYY-MM-DD') as day, sum(list) as list from (
          select cloud, (started_at at time zone 'UTC')::date as d,
            (2 * rate_micros * billed_to + rate_period_seconds) / (2 * rate_period_seconds)
              - (2 * rate_micros * billed_from + rate_period_seconds) / (2 * rate_period_seconds) as list
          from usage_intervals
          where cloud in ('aws', 'gcp', 'azure')
            and started_at >= ${`${from}T00:00:00Z`}::timestamptz and started_at < ${`${to}T00:00:00Z`}::timestamptz
        ) r
        group by cloud, d`),
    );
    return rows.map((r) => ({ cloud: r.cloud, day: r.day, listMicros: Number(r.list) }));
  }

  /** The grants with their draw-down up to `now`, and the usage the replay read. */
  async state(now: Date, extra?: { from: string; to: string }) {
    const grants = await this.list();
    const today = dayOf(now);
    let from = extra?.from ?? today;
    const tomorrow = addDays(today, 1);
    const to = extra?.to && extra.to > tomorrow ? extra.to : tomorrow;
    // the replay starts at the earliest grant: a day's draw-down depends on every day before it
    for (const g of grants) if (g.startsOn < from) from = g.startsOn;
    const usage = await this.usageByDay(from, to);
    const draw = drawDown(grants, usage);
    return { grants, usage, draw, today };
  }

  /** Every grant with what is used and left, and the alerts at the burn of the last `burnDays`. */
  async summary(now: Date, opts: { alertDays: number; burnDays: number }) {
    const today = dayOf(now);
    const burnFrom = addDays(today, -opts.burnDays);
    // no grants (most hubs): nothing to replay, and no ledger read at all
    if (!(await this.list()).length) return { asOf: now.toISOString(), grants: [], alerts: [] };
    const { grants, usage, draw } = await this.state(now, { from: burnFrom, to: today });
    const burn = new Map<string, number>();
    for (const u of usage)
      if (u.day >= burnFrom && u.day < today)
        burn.set(u.cloud, (burn.get(u.cloud) ?? 0) + u.listMicros);
    for (const [c, total] of burn) burn.set(c, Math.floor(total / opts.burnDays));
    return {
      asOf: now.toISOString(),
      grants: grants.map((g) => toCreditGrant(g, draw.used.get(g.id) ?? 0, today)),
      alerts: creditAlerts(grants, draw.used, burn, today, opts.alertDays),
    };
  }

  /** A month per cloud: list cost, the credit applied to it and the net (list - credits). */
  async statement(month: string, now: Date): Promise<CreditStatement> {
    const from = dayOf(parseMonth(month));
    const to = dayOf(nextMonthStart(parseMonth(month)));
    const { usage, draw } = await this.state(now, { from, to });
    const clouds = CREDIT_CLOUDS.map((cloud) => {
      let list = 0;
      let credits = 0;
      for (const u of usage) {
        if (u.cloud !== cloud || u.day < from || u.day >= to) continue;
        list += u.listMicros;
        credits += draw.applied.get(`${cloud}|${u.day}`) ?? 0;
      }
      return { cloud, listMicros: list, creditsMicros: credits, netMicros: list - credits };
    });
    const sum = (k: 'listMicros' | 'creditsMicros' | 'netMicros') =>
      clouds.reduce((s, c) => s + c[k], 0);
    return {
      month,
      clouds,
      listMicros: sum('listMicros'),
      creditsMicros: sum('creditsMicros'),
      netMicros: sum('netMicros'),
    };
  }

  /** What each cloud's grants valid today have left. */
  async available(now: Date): Promise<Map<string, CloudCredit['grants']>> {
    // no grant valid today: nothing to replay (a launch on a hub without credits reads no ledger)
    const today_ = dayOf(now);
    const listed = await this.list();
    if (!listed.some((g) => g.startsOn <= today_ && g.expiresOn >= today_)) return new Map();
    // the replay reads the ledger since the oldest grant: launches reuse it for a minute, unless
    // a grant was recorded or removed meanwhile (the key) — a minute of usage moves little credit
    const key = `${today_}|${listed.map((g) => g.id).join(',')}`;
    const hit = this.cache;
    if (hit && hit.key === key && now.getTime() - hit.at >= 0 && now.getTime() - hit.at < 60_000)
      return hit.value;
    const value = await this.replayAvailable(now);
    this.cache = { key, at: now.getTime(), value };
    return value;
  }

  private cache: { key: string; at: number; value: Map<string, CloudCredit['grants']> } | null =
    null;

  private async replayAvailable(now: Date): Promise<Map<string, CloudCredit['grants']>> {
    const { grants, draw, today } = await this.state(now);
    const out = new Map<string, CloudCredit['grants']>();
    for (const g of grants) {
      const remaining = g.amountMicros - (draw.used.get(g.id) ?? 0);
      if (remaining <= 0 || today < g.startsOn || today > g.expiresOn) continue;
      const list = out.get(g.cloud) ?? [];
      list.push({ remainingMicros: remaining, expiresOn: g.expiresOn });
      out.set(g.cloud, list);
    }
    return out;
  }

  /** Where a launch of `size` that names no cloud goes now, and why (null: no cloud offers it). */
  async placement(
    catalog: Catalog,
    req: { size: string; spot?: boolean | undefined },
    now: Date,
    expectedHours = EXPECTED_RUN_HOURS,
  ): Promise<Placement | null> {
    // one cloud offers it: nothing to weigh, and nothing to read
    const offered = catalog.sizes
      .find((s) => s.id === req.size)
      ?.offers.filter((o) => o.available && catalog.clouds.includes(o.cloud));
    const credit =
      offered && offered.some((o) => o.cloud !== 'local') && offered.length > 1
        ? await this.available(now)
        : new Map<string, CloudCredit['grants']>();
    return choosePlacement(catalog, req, credit, expectedHours);
  }
}

/** A statement as CSV: one row per cloud and a total row, amounts in µ$ and dollars. */
export function creditStatementCsv(s: CreditStatement): string {
  const rows = ['month,cloud,list_micros,credits_micros,net_micros'];
  for (const c of s.clouds)
    rows.push([s.month, c.cloud, c.listMicros, c.creditsMicros, c.netMicros].join(','));
  rows.push([s.month, 'total', s.listMicros, s.creditsMicros, s.netMicros].join(','));
  return `${rows.join('\r\n')}\r\n`;
}

/** Alerts look this many days ahead, at the burn of the last BURN_DAYS days (docs/billing.md). */
export const CREDIT_ALERT_DAYS = 30;
export const CREDIT_BURN_DAYS = 14;

/**
 * Tells hub admins, as notices, about grants that will expire unused or run out soon. Run by the
 * meter loop's leader; it looks at most once an hour, and each (grant, kind) is announced once
 * (the notifier drops a notice whose dedupe key was sent before), whichever replica leads.
 */
export class CreditAlerter {
  private last = 0;

  constructor(
    private readonly d: {
      db: Db;
      notifier: Notifier;
      admins: () => Promise<string[]>;
      logger: Logger;
      everyMs?: number;
    },
  ) {}

  async run(now: Date): Promise<CreditAlert[]> {
    if (now.getTime() - this.last < (this.d.everyMs ?? 3_600_000)) return [];
    this.last = now.getTime();
    const { alerts } = await new Credits(this.d.db).summary(now, {
      alertDays: CREDIT_ALERT_DAYS,
      burnDays: CREDIT_BURN_DAYS,
    });
    if (!alerts.length) return alerts;
    const admins = await this.d.admins();
    for (const a of alerts)
      for (const admin of admins)
        await this.d.notifier
          .send({
            user: admin,
            kind: 'budget',
            level: 'warning',
            title:
              a.kind === 'runs_out'
                ? `Cloud credits: a ${cloudLabel(a.cloud)} grant runs out soon`
                : `Cloud credits: a ${cloudLabel(a.cloud)} grant will expire unused`,
            body: a.message,
            dedupeKey: `credits:${a.grantId}:${a.kind}`,
          })
          .catch((err: unknown) =>
            this.d.logger.warn({ err, admin }, 'credit alert: notice not sent'),
          );
    return alerts;
  }
}

/**
 * Where each size of the catalog would be placed now, for the spawn form (`placements` of the
 * bridge's catalog): only sizes offered on more than one of the hub's clouds, on demand.
 */
export async function placementsFor(
  credits: Credits,
  catalog: Catalog,
  now: Date,
): Promise<Record<string, { cloud: string; region: string; reason: string }>> {
  const out: Record<string, { cloud: string; region: string; reason: string }> = {};
  if (catalog.clouds.length < 2) return out;
  const credit = await credits.available(now);
  for (const size of catalog.sizes) {
    const p = choosePlacement(catalog, { size: size.id }, credit);
    if (p && p.options.length > 1)
      out[size.id] = { cloud: p.cloud, region: p.region, reason: p.reason };
  }
  return out;
}
