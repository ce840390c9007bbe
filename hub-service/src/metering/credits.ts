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
  const days = [...usage].sort(
    (a, b) => a.day.localeCompare(b.day) || a.cloud.localeCompare(b.cloud),
  );
  return drawDownInOrder(grants, days);
}

/**
 * The draw-down over usage in the order given: the ledger's write order (Credits.usageInOrder),
 * which is also the order the meter decides each new row's coverage in (credit-cover.ts), so a
 * row covered when written is covered by exactly as much in every replay. Each piece takes from
 * the grants of its cloud valid on its day, earliest expiry first; `used` carries on from a
 * replay that stopped earlier (it is updated in place); `taken` says what each piece took.
 */
export function drawDownInOrder(
  grants: readonly Pick<GrantRow, 'id' | 'cloud' | 'amountMicros' | 'startsOn' | 'expiresOn'>[],
  usage: readonly CloudDay[],
  used = new Map<number, number>(),
): DrawDown & { taken: number[] } {
  for (const g of grants) if (!used.has(g.id)) used.set(g.id, 0);
  const applied = new Map<string, number>();
  const ordered = drawOrder(grants);
  const taken: number[] = [];
  for (const u of usage) {
    let left = u.listMicros;
    for (const g of ordered) {
      if (left <= 0) break;
      if (g.cloud !== u.cloud || u.day < g.startsOn || u.day > g.expiresOn) continue;
      const take = Math.min(left, g.amountMicros - used.get(g.id)!);
      if (take <= 0) continue;
      used.set(g.id, used.get(g.id)! + take);
      left -= take;
      const key = `${u.cloud}|${u.day}`;
      applied.set(key, (applied.get(key) ?? 0) + take);
    }
    taken.push(Math.max(0, u.listMicros) - Math.max(0, left));
  }
  return { used, applied, taken };
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
  const size = sizeOf(catalog, req.size);
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

/** A named size or a `<cpu>.<gpu>` pair of the catalog (catalog.ts findSize, without its imports). */
const sizeOf = (catalog: Catalog, id: string) =>
  catalog.sizes.find((s) => s.id === id) ?? catalog.pairs?.find((s) => s.id === id);

/**
 * A placement worth acting on: one among several clouds, or the only cloud that offers the size
 * when that is not the hub's default (a launch there needs no cloud named). A size offered on the
 * default cloud alone keeps the default, as a one-cloud hub does.
 */
export function placementToAct<T extends { cloud: string; options: readonly unknown[] }>(
  catalog: Pick<Catalog, 'defaultCloud'>,
  p: T | null,
): T | null {
  if (!p) return null;
  return p.options.length > 1 || p.cloud !== catalog.defaultCloud ? p : null;
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
    // the replay starts at the earliest grant: a row's draw-down depends on every row before it,
    // in the order the ledger wrote them (usageInOrder), up to the newest row
    for (const g of grants) if (g.startsOn < from) from = g.startsOn;
    const { pieces } = await usageInOrder(this.db, from);
    const draw = drawDownInOrder(grants, pieces);
    const byDay = new Map<string, CloudDay>();
    for (const p of pieces) {
      if (p.day >= to) continue;
      const key = `${p.cloud}|${p.day}`;
      const d = byDay.get(key);
      if (d) d.listMicros += p.listMicros;
      else byDay.set(key, { ...p });
    }
    return { grants, usage: [...byDay.values()], draw, today };
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
    const offered = sizeOf(catalog, req.size)?.offers.filter(
      (o) => o.available && catalog.clouds.includes(o.cloud),
    );
    const credit =
      offered && offered.some((o) => o.cloud !== 'local') && offered.length > 1
        ? await this.available(now)
        : new Map<string, CloudCredit['grants']>();
    return choosePlacement(catalog, req, credit, expectedHours);
  }
}

/** The list µ$ of a row's billed seconds: the ledger's cumulative rounding without the plan. */
export const LIST_MICROS_SQL = sql.raw(
  `(2 * rate_micros * billed_to + rate_period_seconds) / (2 * rate_period_seconds)
    - (2 * rate_micros * billed_from + rate_period_seconds) / (2 * rate_period_seconds)`,
);

/**
 * The ledger's rows of the clouds grants apply to, since `from` (a UTC day) and after row
 * `afterId`, in the order they were written (row id), each cloud's consecutive rows of one UTC
 * day summed into a piece (a run of rows of one cloud and day draws exactly what its rows would
 * one by one). `top`: the newest row id this read saw.
 *
 * Window functions over the rows in id order cost ~8x a plain sum per day (1,000,000 rows: 12-30
 * s against 1.6 s), so the runs are found from sums: a first pass gives each cloud's days with
 * their first and last row id; where a day's id range overlaps another's (rows written late,
 * around midnight) the rows are read one by one by id, and everywhere else a second pass sums the
 * rows per day and id segment between those edges, where only one day of the cloud has rows.
 * Reads one snapshot: pass `inSnapshot` when `db` is a transaction that already holds one (the
 * meter's, under its lock).
 */
export async function usageInOrder(
  db: Db,
  from: string,
  afterId = 0,
  inSnapshot = false,
): Promise<{ pieces: CloudDay[]; top: number }> {
  if (!inSnapshot)
    return db.transaction((tx) => usageInOrder(tx as unknown as Db, from, afterId, true), {
      isolationLevel: 'repeatable read',
      accessMode: 'read only',
    });
  const since = sql`started_at >= ${`${from}T00:00:00Z`}::timestamptz`;
  const stats = resultRows<{
    cloud: string | null;
    day: string | null;
    lo: string | number | null;
    hi: string | number | null;
    list: string | number | null;
    top: string | number;
  }>(
    await db.execute(sql`
      with top as (select coalesce(max(id), 0) as top from usage_intervals),
      days as (
        select cloud, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day,
          min(id) as lo, max(id) as hi, sum(${LIST_MICROS_SQL}) as list
        from usage_intervals
        where cloud in ('aws', 'gcp', 'azure') and id > ${afterId}
          and id <= (select top from top) and ${since}
        group by 1, 2)
      select d.cloud, d.day, d.lo, d.hi, d.list, top.top from top left join days d on true`),
  );
  const top = Number(stats[0]?.top ?? 0);
  const days: DaySpan[] = stats
    .filter((r) => r.cloud !== null)
    .map((r) => ({
      cloud: r.cloud!,
      day: r.day!,
      lo: Number(r.lo),
      hi: Number(r.hi),
      listMicros: Number(r.list),
    }));
  const { mixed, edges } = daySpans(days);
  // no day of any cloud overlaps another: each day is one run
  if (!mixed.length)
    return {
      pieces: [...days]
        .sort((a, b) => a.lo - b.lo)
        .map(({ cloud, day, listMicros }) => ({ cloud, day, listMicros })),
      top,
    };
  const bounded = sql`cloud in ('aws', 'gcp', 'azure') and id > ${afterId} and id <= ${top} and ${since}`;
  const segments = resultRows<{
    cloud: string;
    day: string;
    first: string | number;
    list: string | number;
  }>(
    await db.execute(sql`
      select cloud, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day,
        min(id) as first, sum(${LIST_MICROS_SQL}) as list
      from usage_intervals where ${bounded}
      group by cloud, 2, width_bucket(id, ${`{${edges.join(',')}}`}::bigint[])`),
  );
  const inMixed = (cloud: string, id: number) =>
    mixed.some((m) => m.cloud === cloud && id >= m.lo && id <= m.hi);
  const out: Array<CloudDay & { first: number }> = segments
    .filter((r) => !inMixed(r.cloud, Number(r.first)))
    .map((r) => ({
      cloud: r.cloud,
      day: r.day,
      listMicros: Number(r.list),
      first: Number(r.first),
    }));
  // the rows where days interleave, one by one (one read for every such range)
  const rows = resultRows<{
    id: string | number;
    cloud: string;
    zone: string | number;
    day: string;
    list: string | number;
  }>(
    await db.execute(sql`
      select id, cloud, z.zlo as zone,
        to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, ${LIST_MICROS_SQL} as list
      from unnest(${`{${mixed.map((m) => m.cloud).join(',')}}`}::text[],
          ${`{${mixed.map((m) => m.lo).join(',')}}`}::bigint[],
          ${`{${mixed.map((m) => m.hi).join(',')}}`}::bigint[]) as z(zcloud, zlo, zhi)
        join usage_intervals on id between z.zlo and z.zhi and cloud = z.zcloud
      where ${bounded}
      order by id`),
  );
  // runs within one range: a range's rows follow each other in id order, ranges do not overlap
  const runs = new Map<string, CloudDay & { first: number }>();
  for (const r of rows) {
    const key = `${r.cloud}|${r.zone}`;
    const run = runs.get(key);
    if (run && run.day === r.day) run.listMicros += Number(r.list);
    else {
      const next = { cloud: r.cloud, day: r.day, listMicros: Number(r.list), first: Number(r.id) };
      out.push(next);
      runs.set(key, next);
    }
  }
  out.sort((a, b) => a.first - b.first);
  // a run cut by another cloud's edge is one run again (clouds draw independently)
  const pieces: CloudDay[] = [];
  const open = new Map<string, CloudDay>();
  for (const { cloud, day, listMicros } of out) {
    const run = open.get(cloud);
    if (run && run.day === day) run.listMicros += listMicros;
    else {
      const next = { cloud, day, listMicros };
      pieces.push(next);
      open.set(cloud, next);
    }
  }
  return { pieces, top };
}

/** One cloud's day in the ledger: its first and last row id, and its list µ$. */
export interface DaySpan extends CloudDay {
  lo: number;
  hi: number;
}

/**
 * Where each cloud's days overlap in row ids (`mixed`: rows of several days interleave there),
 * and the edges that cut the id axis so that, outside `mixed`, a segment between two edges holds
 * rows of at most one day per cloud (every day's first id and last id + 1, every mixed range's
 * ends). Pure.
 */
export function daySpans(days: readonly DaySpan[]): {
  mixed: Array<{ cloud: string; lo: number; hi: number }>;
  edges: number[];
} {
  const mixed: Array<{ cloud: string; lo: number; hi: number }> = [];
  const edges = new Set<number>();
  for (const cloud of CREDIT_CLOUDS) {
    const mine = days.filter((d) => d.cloud === cloud).sort((a, b) => a.lo - b.lo);
    let maxHi = -Infinity;
    const zones: Array<{ lo: number; hi: number }> = [];
    for (const d of mine) {
      edges.add(d.lo);
      edges.add(d.hi + 1);
      // the overlap with every earlier day (each starts no later): [lo, min(hi, max earlier hi)]
      if (d.lo <= maxHi) {
        const z = { lo: d.lo, hi: Math.min(d.hi, maxHi) };
        const last = zones.at(-1);
        if (last && z.lo <= last.hi + 1) last.hi = Math.max(last.hi, z.hi);
        else zones.push(z);
      }
      maxHi = Math.max(maxHi, d.hi);
    }
    for (const z of zones) {
      edges.add(z.lo);
      edges.add(z.hi + 1);
      mixed.push({ cloud, ...z });
    }
  }
  return { mixed, edges: [...edges].sort((a, b) => a - b) };
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
 * Where each size and pair of the catalog would be placed now, for the spawn form (`placements`
 * of the bridge's catalog; `spotPlacements` with `spot`): the sizes offered on more than one of
 * the hub's clouds, and those only one cloud offers that is not the default (placementToAct).
 */
export async function placementsFor(
  credits: Credits,
  catalog: Catalog,
  now: Date,
  spot = false,
): Promise<Record<string, { cloud: string; region: string; reason: string }>> {
  const out: Record<string, { cloud: string; region: string; reason: string }> = {};
  if (catalog.clouds.length < 2) return out;
  const credit = await credits.available(now);
  for (const size of [...catalog.sizes, ...(catalog.pairs ?? [])]) {
    const p = placementToAct(catalog, choosePlacement(catalog, { size: size.id, spot }, credit));
    if (p) out[size.id] = { cloud: p.cloud, region: p.region, reason: p.reason };
  }
  return out;
}
