/**
 * The usage ledger: appends intervals for every stream that ran since its last interval, and
 * answers the sums statements, budgets and the usage chart need. Rows are never updated or
 * deleted; everything shown to a user is a sum over them, so it can always be recomputed.
 *
 * Why replays cannot double count: a new row always starts where the stream's newest row ends
 * (or at the instance's readyAt), and (meter_key, started_at) is unique. Two writers that read
 * the same newest row both try the same started_at and one insert is dropped; a writer that read
 * an older row collides with the row that already starts there. After a crash the next cycle
 * simply continues from whatever committed last, so no second is lost either.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { instances, usageIntervals } from '../db/schema.js';
import type { InstanceRow } from '../instances/store.js';
import {
  intervalMicros,
  MINIMUM_SECONDS,
  HOUR,
  secondsSince,
  STORAGE_MONTH_SECONDS,
} from './money.js';

export type IntervalRow = typeof usageIntervals.$inferInsert;

/** Writes a cycle's rows through `append` (on the database or a transaction it opens). */
export interface LedgerCover {
  write(
    rows: IntervalRow[],
    append: (db: Db, rows: IntervalRow[]) => Promise<string[]>,
  ): Promise<string[]>;
  forget(): void;
}

/** One stream to accrue: what it costs and from when; `closeAt` ends it for good. */
export interface Stream {
  key: string;
  kind: 'compute' | 'storage';
  user: string;
  groups: string[];
  instanceId: string | null;
  server: string | null;
  size: string;
  sizeClass: 'cpu' | 'gpu' | 'storage';
  cloud: string;
  region: string;
  spot: boolean;
  planId: string;
  multiplierPpm: number;
  rateMicros: number;
  ratePeriodSeconds: number;
  /** the billing clock's zero: readyAt for compute, the first instance's creation for storage */
  anchor: Date;
  /** the stream ended here (the instance stopped or failed); null while it runs */
  closeAt: Date | null;
  /** the minimum billed seconds of the whole stream */
  minimumSeconds: number;
  /** last activity the hub reported for the server (null: unknown) */
  lastActivity: Date | null;
}

export interface StreamEnd {
  endedAt: Date;
  billedTo: number;
  final: boolean;
}

const nextHour = (t: Date): Date =>
  new Date(Math.floor(t.getTime() / 3_600_000) * 3_600_000 + 3_600_000);

/**
 * The rows that bring a stream from its newest row (`last`) up to `now` (or its close), split at
 * UTC hour boundaries so hourly, daily and monthly sums are exact. Pure, for tests and replays.
 */
export function rowsFor(
  s: Stream,
  last: StreamEnd | null,
  now: Date,
  activeWindowSeconds: number,
): IntervalRow[] {
  if (last?.final) return [];
  const target = s.closeAt && s.closeAt.getTime() <= now.getTime() ? s.closeAt : now;
  const final = s.closeAt !== null && s.closeAt.getTime() <= now.getTime();
  let start = last ? last.endedAt : s.anchor;
  let billedFrom = last ? last.billedTo : 0;
  const rows: IntervalRow[] = [];
  const targetSeconds = secondsSince(s.anchor, target);
  // a running stream is accrued in whole seconds of its own clock, so every row ends on one
  let end = final ? target : new Date(s.anchor.getTime() + targetSeconds * 1000);
  // a stop recorded just before the newest row's end (clock skew between replicas) closes at that end
  if (final && end.getTime() < start.getTime()) end = start;
  if (!final && end.getTime() <= start.getTime()) return [];
  for (;;) {
    const boundary = nextHour(start);
    const last_ = boundary.getTime() >= end.getTime();
    const chunkEnd = last_ ? end : boundary;
    let billedTo = last_ ? targetSeconds : Math.max(billedFrom, secondsSince(s.anchor, chunkEnd));
    if (last_ && final) billedTo = Math.max(billedTo, s.minimumSeconds);
    billedTo = Math.max(billedTo, billedFrom);
    const wall = Math.max(0, Math.round((chunkEnd.getTime() - start.getTime()) / 1000));
    let active = 0;
    if (s.lastActivity) {
      const activeUntil = s.lastActivity.getTime() + activeWindowSeconds * 1000;
      active = Math.round(
        Math.max(0, Math.min(chunkEnd.getTime(), activeUntil) - start.getTime()) / 1000,
      );
      active = Math.min(active, wall);
    }
    rows.push({
      meterKey: s.key,
      kind: s.kind,
      userName: s.user,
      groups: s.groups,
      instanceId: s.instanceId,
      serverName: s.server,
      sizeId: s.size,
      sizeClass: s.sizeClass,
      cloud: s.cloud,
      region: s.region,
      spot: s.spot,
      planId: s.planId,
      multiplierPpm: s.multiplierPpm,
      rateMicros: s.rateMicros,
      ratePeriodSeconds: s.ratePeriodSeconds,
      startedAt: start,
      endedAt: chunkEnd,
      billedFrom,
      billedTo,
      activeSeconds: active,
      idleSeconds: wall - active,
      final: last_ && final,
      amountMicros: intervalMicros(
        s.rateMicros,
        billedFrom,
        billedTo,
        s.multiplierPpm,
        s.ratePeriodSeconds,
      ),
    });
    if (last_) return rows;
    start = chunkEnd;
    billedFrom = billedTo;
  }
}

const COLUMNS =
  'meter_key, kind, user_name, groups, instance_id, server_name, size_id, size_class, cloud, region, spot, plan_id, ' +
  'multiplier_ppm, rate_micros, rate_period_seconds, started_at, ended_at, billed_from, billed_to, active_seconds, ' +
  'idle_seconds, final, amount_micros, credit_micros';

export class Ledger {
  lastTimings = { ends: 0, insert: 0 };
  /** each stream's newest row as this writer knows it; null: the stream has no row yet */
  private readonly known = new Map<string, StreamEnd | null>();

  /** `cover`: credit grants that also lower researchers' charges (credit-cover.ts), when chosen */
  constructor(
    private readonly db: Db,
    private readonly cover?: LedgerCover,
  ) {}

  private async all<T>(query: SQL): Promise<T[]> {
    return resultRows<T>(await this.db.execute(query));
  }

  /** The newest row of each stream. One index probe per stream (a lateral LIMIT 1). */
  async ends(keys: string[]): Promise<Map<string, StreamEnd>> {
    const out = new Map<string, StreamEnd>();
    if (!keys.length) return out;
    const rows = await this.all<{
      key: string;
      ended_at: string | Date;
      billed_to: string | number;
      final: boolean;
    }>(sql`
      select k.key, l.ended_at, l.billed_to, l.final
      from json_array_elements_text(${JSON.stringify(keys)}::json) as k(key)
      join lateral (
        select ended_at, billed_to, final from usage_intervals u
        where u.meter_key = k.key order by u.started_at desc limit 1
      ) l on true`);
    for (const r of rows) {
      out.set(r.key, {
        endedAt: new Date(r.ended_at),
        billedTo: Number(r.billed_to),
        final: r.final,
      });
    }
    return out;
  }

  /**
   * Brings every stream up to `now`. A running stream is written once its newest row is at least
   * `everySeconds` old (a closing one at once); the rest stays pending, priced but not written.
   * Returns the rows written and the pending µ$ by user, so budgets see spend to the second.
   *
   * The newest row of each stream is remembered between cycles (only the meter's leader writes);
   * a row that was not inserted (another writer got there first) drops that memory, and so does
   * `forget()` when leadership changes, so the next cycle reads the truth from the table.
   */
  async accrue(streams: Stream[], now: Date, activeWindowSeconds: number, everySeconds = 0) {
    const t0 = performance.now();
    const unknown = streams.filter((s) => !this.known.has(s.key)).map((s) => s.key);
    const found = await this.ends(unknown);
    // a stream with no row is remembered too (it is not asked about again every cycle)
    for (const k of unknown) this.known.set(k, found.get(k) ?? null);
    const t1 = performance.now();
    const due: IntervalRow[] = [];
    const pending = new Map<string, number>();
    for (const s of streams) {
      const last = this.known.get(s.key) ?? null;
      const rows = rowsFor(s, last, now, activeWindowSeconds);
      if (!rows.length) continue;
      const closing = rows.some((r) => r.final);
      const age = now.getTime() - (last ? last.endedAt.getTime() : s.anchor.getTime());
      if (closing || age >= everySeconds * 1000) due.push(...rows);
      else
        pending.set(
          s.user,
          (pending.get(s.user) ?? 0) + rows.reduce((a, r) => a + r.amountMicros, 0),
        );
    }
    let inserted: string[];
    try {
      inserted = await this.append(due);
    } catch (err) {
      // the insert may have committed though its answer was lost (the database restarted): the
      // next cycle reads these streams' ends from the table, or its rows from the stale end would
      // skip ahead of what was written and leave a gap (or collide at every hour boundary)
      for (const r of due) this.known.delete(r.meterKey);
      throw err;
    }
    const ok = new Set(inserted);
    for (const r of due) {
      const id = `${r.meterKey}@${(r.startedAt as Date).getTime()}`;
      if (!ok.has(id)) this.known.delete(r.meterKey);
      else if (r.final) this.known.delete(r.meterKey);
      else
        this.known.set(r.meterKey, {
          endedAt: r.endedAt as Date,
          billedTo: r.billedTo,
          final: false,
        });
    }
    this.lastTimings = { ends: t1 - t0, insert: performance.now() - t1 };
    return { written: inserted.length, pending };
  }

  /** Drops the remembered stream ends (leadership changed: another replica may have written). */
  forget(): void {
    this.known.clear();
    this.cover?.forget();
  }

  /**
   * Inserts a cycle's rows in one statement (one array parameter per column, unnested): binding
   * 24 parameters per row would cost more than the insert. The per-day totals (usage_user_days,
   * usage_group_days) are upserted by the table's statement trigger inside that same statement,
   * from exactly the rows it inserted, so a row dropped as a replay adds nothing and a statement
   * that fails adds nothing. More than BATCH rows (a meter back from a long outage) go in batches
   * of one transaction.
   */
  async append(rows: IntervalRow[]): Promise<string[]> {
    if (!rows.length) return [];
    // the rows' credit coverage is decided in the transaction that inserts them (credit-cover.ts)
    if (this.cover) return this.cover.write(rows, (db, r) => this.appendOn(db, r));
    return this.appendOn(this.db, rows);
  }

  private async appendOn(db: Db, rows: IntervalRow[]): Promise<string[]> {
    const batches: IntervalRow[][] = [];
    for (let i = 0; i < rows.length; i += BATCH) batches.push(rows.slice(i, i + BATCH));
    if (batches.length === 1) return this.insertBatch(db, batches[0]!);
    return db.transaction(async (tx) => {
      const written: string[] = [];
      for (const b of batches) written.push(...(await this.insertBatch(tx as unknown as Db, b)));
      return written;
    });
  }

  private async insertBatch(db: Db, rows: IntervalRow[]): Promise<string[]> {
    // one array literal per column, unnested into rows (Postgres reads them faster than one JSON
    // parameter through json_populate_recordset, which builds a hash table per object)
    const col = <T>(f: (r: IntervalRow) => T) => rows.map(f);
    const inserted = resultRows<{ meter_key: string; started_at: string | Date }>(
      await db.execute(sql`
        insert into usage_intervals (${sql.raw(COLUMNS)})
        select meter_key, kind, user_name, groups::text[], instance_id, server_name, size_id,
          size_class, cloud, region, spot, plan_id, multiplier_ppm, rate_micros,
          rate_period_seconds, started_at, ended_at, billed_from, billed_to, active_seconds,
          idle_seconds, final, amount_micros, credit_micros
        from unnest(
          ${textArray(col((r) => r.meterKey))}::text[], ${textArray(col((r) => r.kind))}::text[],
          ${textArray(col((r) => r.userName))}::text[],
          ${textArray(col((r) => textArray(r.groups ?? [])))}::text[],
          ${textArray(col((r) => r.instanceId ?? null))}::uuid[],
          ${textArray(col((r) => r.serverName ?? null))}::text[],
          ${textArray(col((r) => r.sizeId))}::text[], ${textArray(col((r) => r.sizeClass))}::text[],
          ${textArray(col((r) => r.cloud))}::text[], ${textArray(col((r) => r.region))}::text[],
          ${boolArray(col((r) => r.spot ?? false))}::boolean[],
          ${textArray(col((r) => r.planId))}::text[],
          ${intArray(col((r) => r.multiplierPpm))}::int4[],
          ${intArray(col((r) => r.rateMicros))}::int8[],
          ${intArray(col((r) => r.ratePeriodSeconds))}::int4[],
          ${textArray(col((r) => (r.startedAt as Date).toISOString()))}::timestamptz[],
          ${textArray(col((r) => (r.endedAt as Date).toISOString()))}::timestamptz[],
          ${intArray(col((r) => r.billedFrom))}::int8[], ${intArray(col((r) => r.billedTo))}::int8[],
          ${intArray(col((r) => r.activeSeconds ?? 0))}::int4[],
          ${intArray(col((r) => r.idleSeconds ?? 0))}::int4[],
          ${boolArray(col((r) => r.final ?? false))}::boolean[],
          ${intArray(col((r) => r.amountMicros))}::int8[],
          ${intArray(col((r) => r.creditMicros ?? 0))}::int8[]
        ) as x(${sql.raw(COLUMNS)})
        on conflict (meter_key, started_at) do nothing
        returning meter_key, started_at`),
    );
    return inserted.map((r) => `${r.meter_key}@${new Date(r.started_at).getTime()}`);
  }

  /**
   * µ$ a user was billed for usage that started in [from, to). Whole UTC days (every day, month
   * and budget window) are read from the per-day totals: a few dozen rows however long the ledger
   * is; any other range sums the rows.
   */
  async userSpend(user: string, from: Date, to: Date): Promise<number> {
    if (!wholeDays(from, to)) return this.userSpendFromRows(user, from, to);
    const rows = await this.all<{ s: string | number | null }>(sql`
      select sum(micros) as s from usage_user_days
      where user_name = ${user} and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`);
    return Number(rows[0]?.s ?? 0);
  }

  /**
   * userSpend over each of `windows` and gpuSeconds over `gpu`, in one read of the per-day totals
   * when every range is whole UTC days (each sum is the one those methods answer); else each
   * asked on its own.
   */
  async userSums(
    user: string,
    windows: ReadonlyArray<readonly [Date, Date]>,
    gpu: readonly [Date, Date],
  ): Promise<{ spend: number[]; gpuSeconds: number }> {
    const all = [...windows, gpu];
    if (!windows.length || !all.every(([from, to]) => wholeDays(from, to))) {
      const [spend, gpuSeconds] = await Promise.all([
        Promise.all(windows.map(([from, to]) => this.userSpend(user, from, to))),
        this.gpuSeconds(user, gpu[0], gpu[1]),
      ]);
      return { spend, gpuSeconds };
    }
    const within = ([from, to]: readonly [Date, Date]) =>
      sql`day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`;
    const sums = windows.map(
      (w, i) => sql`sum(micros) filter (where ${within(w)}) as ${sql.raw(`s${i}`)}`,
    );
    const from = new Date(Math.min(...all.map(([f]) => f.getTime())));
    const to = new Date(Math.max(...all.map(([, t]) => t.getTime())));
    const rows = await this.all<Record<string, string | number | null>>(sql`
      select ${sql.join(sums, sql`, `)}, sum(gpu_seconds) filter (where ${within(gpu)}) as g
      from usage_user_days
      where user_name = ${user} and ${within([from, to])}`);
    const r = rows[0] ?? {};
    return {
      spend: windows.map((_, i) => Number(r[`s${i}`] ?? 0)),
      gpuSeconds: Number(r.g ?? 0),
    };
  }

  /** The same sum over the rows themselves (the totals are checked against it; the benchmark compares). */
  async userSpendFromRows(user: string, from: Date, to: Date): Promise<number> {
    const rows = await this.all<{ s: string | number | null }>(sql`
      select sum(amount_micros) as s from usage_intervals
      where user_name = ${user} and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}`);
    return Number(rows[0]?.s ?? 0);
  }

  /** µ$ of every row naming `group` that started in [from, to) (per-day totals for whole days). */
  async groupSpend(group: string, from: Date, to: Date): Promise<number> {
    const rows = await this.all<{ s: string | number | null }>(
      wholeDays(from, to)
        ? sql`select sum(micros) as s from usage_group_days
            where group_name = ${group} and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`
        : sql`select sum(amount_micros) as s from usage_intervals
            where groups @> array[${group}]::text[] and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}`,
    );
    return Number(rows[0]?.s ?? 0);
  }

  /** µ$ of each group in [from, to) (whole days), for the groups asked. */
  async groupsSpend(groups: readonly string[], from: Date, to: Date): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!groups.length) return out;
    if (!wholeDays(from, to)) {
      for (const g of groups) out.set(g, await this.groupSpend(g, from, to));
      return out;
    }
    const rows = await this.all<{ g: string; s: string | number }>(sql`
      select group_name as g, sum(micros) as s from usage_group_days
      where group_name in (select json_array_elements_text(${JSON.stringify(groups)}::json))
        and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date
      group by group_name`);
    for (const r of rows) out.set(r.g, Number(r.s));
    return out;
  }

  /** Every user's spend in [from, to) (per-day totals for whole days), or only `users`' when given. */
  async spendByUser(from: Date, to: Date, users?: readonly string[]): Promise<Map<string, number>> {
    const only = users
      ? sql` and user_name in (select json_array_elements_text(${JSON.stringify(users)}::json))`
      : sql``;
    const rows = await this.all<{ u: string; s: string | number }>(
      wholeDays(from, to)
        ? sql`select user_name as u, sum(micros) as s from usage_user_days
            where day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date${only} group by user_name`
        : sql`select user_name as u, sum(amount_micros) as s from usage_intervals
            where started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}${only} group by user_name`,
    );
    return new Map(rows.map((r) => [r.u, Number(r.s)]));
  }

  /** µ$ of every row of each stream (an instance's whole bill so far, as written). */
  async streamTotals(keys: readonly string[]): Promise<Map<string, number>> {
    if (!keys.length) return new Map();
    const rows = await this.all<{ k: string; s: string | number }>(sql`
      select meter_key as k, sum(amount_micros) as s from usage_intervals
      where meter_key in (select json_array_elements_text(${JSON.stringify(keys)}::json))
      group by meter_key`);
    return new Map(rows.map((r) => [r.k, Number(r.s)]));
  }

  /** Billed GPU seconds of a user in [from, to) (per-day totals for whole days). */
  async gpuSeconds(user: string, from: Date, to: Date): Promise<number> {
    const rows = await this.all<{ s: string | number | null }>(
      wholeDays(from, to)
        ? sql`select sum(gpu_seconds) as s from usage_user_days
            where user_name = ${user} and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`
        : sql`select sum(billed_to - billed_from) as s from usage_intervals
            where user_name = ${user} and size_class = 'gpu' and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}`,
    );
    return Number(rows[0]?.s ?? 0);
  }

  /**
   * Sums by time bucket and size: the usage chart. By day or month, the whole UTC days of the
   * range come from the per-day totals and only a partial first or last day from the rows.
   */
  async series(
    user: string,
    from: Date,
    to: Date,
    granularity: 'hour' | 'day' | 'month',
  ): Promise<SeriesRow[]> {
    const a = new Date(Math.ceil(from.getTime() / DAY_MS) * DAY_MS);
    const b = new Date(Math.floor(to.getTime() / DAY_MS) * DAY_MS);
    if (granularity === 'hour' || !(a < b)) return this.seriesFromRows(user, from, to, granularity);
    const parts = await Promise.all([
      from < a ? this.seriesFromRows(user, from, a, granularity) : [],
      this.seriesFromTotals(user, a, b, granularity),
      b < to ? this.seriesFromRows(user, b, to, granularity) : [],
    ]);
    const merged = new Map<string, SeriesRow>();
    for (const p of parts.flat()) {
      const key = `${p.start}|${p.size}`;
      const m = merged.get(key);
      if (!m) merged.set(key, { ...p });
      else {
        m.seconds += p.seconds;
        m.activeSeconds += p.activeSeconds;
        m.idleSeconds += p.idleSeconds;
        m.amountMicros += p.amountMicros;
      }
    }
    return [...merged.values()].sort(
      (x, y) => x.start.localeCompare(y.start) || x.size.localeCompare(y.size),
    );
  }

  private async seriesFromTotals(
    user: string,
    from: Date,
    to: Date,
    granularity: 'day' | 'month',
  ): Promise<SeriesRow[]> {
    const rows = await this.all<{
      bucket: string | Date;
      size: string;
      kind: string;
      seconds: string | number;
      active: string | number;
      idle: string | number;
      amount: string | number;
    }>(sql`
      select date_trunc(${granularity}, day::timestamp) as bucket, size_id as size, kind,
        sum(billed_seconds) as seconds, sum(active_seconds) as active, sum(idle_seconds) as idle,
        sum(micros) as amount
      from usage_user_days
      where user_name = ${user} and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date
      group by 1, 2, 3 order by 1, 2`);
    return rows.map((r) => ({
      start: utcBucket(r.bucket),
      size: r.kind === 'storage' ? 'home-volume' : r.size,
      seconds: Number(r.seconds),
      activeSeconds: Number(r.active),
      idleSeconds: Number(r.idle),
      amountMicros: Number(r.amount),
    }));
  }

  /** The usage chart's sums over the rows themselves. */
  async seriesFromRows(
    user: string,
    from: Date,
    to: Date,
    granularity: 'hour' | 'day' | 'month',
  ): Promise<SeriesRow[]> {
    const rows = await this.all<{
      bucket: string | Date;
      size: string;
      kind: string;
      seconds: string | number;
      active: string | number;
      idle: string | number;
      amount: string | number;
    }>(sql`
      select date_trunc(${granularity}, started_at at time zone 'UTC') as bucket, size_id as size, kind,
        sum(billed_to - billed_from) as seconds, sum(active_seconds) as active, sum(idle_seconds) as idle,
        sum(amount_micros) as amount
      from usage_intervals
      where user_name = ${user} and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}
      group by 1, 2, 3 order by 1, 2`);
    return rows.map((r) => ({
      start: utcBucket(r.bucket),
      size: r.kind === 'storage' ? 'home-volume' : r.size,
      seconds: Number(r.seconds),
      activeSeconds: Number(r.active),
      idleSeconds: Number(r.idle),
      amountMicros: Number(r.amount),
    }));
  }

  /** A month's statement lines: one per stream and price snapshot. */
  async statementLines(user: string, from: Date, to: Date) {
    const rows = await this.all<Record<string, string | number | boolean | Date | null>>(sql`
      select kind, server_name, instance_id, size_id, cloud, region, spot, plan_id, multiplier_ppm,
        rate_micros, rate_period_seconds, min(started_at) as first, max(ended_at) as last,
        sum(billed_to - billed_from) as seconds, sum(amount_micros) as amount
      from usage_intervals
      where user_name = ${user} and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}
      group by kind, meter_key, server_name, instance_id, size_id, cloud, region, spot, plan_id, multiplier_ppm, rate_micros, rate_period_seconds
      order by min(started_at), meter_key`);
    return rows.map((r) => ({
      kind: r.kind as 'compute' | 'storage',
      server: (r.server_name as string | null) ?? null,
      instanceId: (r.instance_id as string | null) ?? null,
      size: r.kind === 'storage' ? 'home-volume' : String(r.size_id),
      cloud: String(r.cloud),
      region: String(r.region),
      spot: Boolean(r.spot),
      plan: String(r.plan_id),
      multiplierPpm: Number(r.multiplier_ppm),
      ratePerHourMicros:
        Number(r.rate_period_seconds) === HOUR
          ? Number(r.rate_micros)
          : Math.round((Number(r.rate_micros) * HOUR) / STORAGE_MONTH_SECONDS),
      from: new Date(r.first as string).toISOString(),
      to: new Date(r.last as string).toISOString(),
      seconds: Number(r.seconds),
      amountMicros: Number(r.amount),
    }));
  }

  /** Months with any usage, newest first (from the per-day totals). */
  async months(user: string) {
    const rows = await this.all<{ m: string; s: string | number; secs: string | number }>(sql`
      select to_char(day, 'YYYY-MM') as m, sum(micros) as s,
        sum(case when kind = 'compute' then billed_seconds else 0 end) as secs
      from usage_user_days where user_name = ${user} group by 1 order by 1 desc`);
    return rows.map((r) => ({ month: r.m, totalMicros: Number(r.s), seconds: Number(r.secs) }));
  }

  /**
   * Instances that ended (stopped or failed) after becoming ready, since `since`, whose usage has
   * no final row yet: the meter still has to close them.
   */
  async unclosed(since: Date): Promise<InstanceRow[]> {
    return this.db
      .select()
      .from(instances)
      .where(
        sql`${instances.state} in ('stopped', 'failed') and ${instances.readyAt} is not null
          and coalesce(${instances.stoppedAt}, ${instances.readyAt}) > ${since.toISOString()}
          and not exists (select 1 from usage_intervals u where u.meter_key = ${instances.id}::text and u.final)`,
      );
  }

  /** The groups on each user's newest row (users never metered are absent). */
  async newestGroups(users: string[]): Promise<Map<string, string[]>> {
    const rows = await this.all<{ u: string; groups: string[] | null }>(sql`
      select k.u, l.groups from json_array_elements_text(${JSON.stringify(users)}::json) as k(u)
      join lateral (select groups from usage_intervals where user_name = k.u order by started_at desc limit 1) l on true`);
    return new Map(rows.map((r) => [r.u, r.groups ?? []]));
  }

  /**
   * Every user who ever had an instance (only `users`, when given), and when the first was
   * created: their home volume's start.
   */
  async homeVolumes(users?: readonly string[]): Promise<Array<{ user: string; since: Date }>> {
    if (users && !users.length) return [];
    const only = users
      ? sql` where user_name in (select json_array_elements_text(${JSON.stringify(users)}::json))`
      : sql``;
    const rows = await this.all<{ u: string; first: string | Date }>(
      sql`select user_name as u, min(created_at) as first from instances${only} group by user_name`,
    );
    return rows.map((r) => ({ user: r.u, since: new Date(r.first) }));
  }

  /**
   * Where the per-day totals differ from the rows they sum, recomputed from every row (a full
   * scan: tests and audits). Empty unless something wrote around the triggers.
   */
  async totalsDrift(): Promise<
    Array<{ subject: string; day: string; totals: string; rows: string }>
  > {
    const userSums = `sum(amount_micros) || '/' || sum(billed_to - billed_from) || '/' ||
      sum(case when size_class = 'gpu' then billed_to - billed_from else 0 end) || '/' ||
      sum(active_seconds) || '/' || sum(idle_seconds) || '/' || count(*)`;
    const rows = await this.all<{ subject: string; day: string; totals: string; rows: string }>(
      sql.raw(`
      with r as (
        select 'user:' || user_name || ':' || kind || ':' || size_id as subject,
          to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, ${userSums} as v
        from usage_intervals group by user_name, kind, size_id, 2
        union all
        select 'group:' || g, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD'),
          sum(amount_micros) || '/' || count(*)
        from usage_intervals cross join lateral (select distinct x from unnest(groups) x where x is not null) gs(g)
        group by g, 2),
      t as (
        select 'user:' || user_name || ':' || kind || ':' || size_id as subject, to_char(day, 'YYYY-MM-DD') as day,
          micros || '/' || billed_seconds || '/' || gpu_seconds || '/' || active_seconds || '/' || idle_seconds || '/' || rows as v
        from usage_user_days
        union all
        select 'group:' || group_name, to_char(day, 'YYYY-MM-DD'), micros || '/' || rows from usage_group_days)
      select coalesce(r.subject, t.subject) as subject, coalesce(r.day, t.day) as day,
        coalesce(t.v, '-') as totals, coalesce(r.v, '-') as rows
      from r full join t on r.subject = t.subject and r.day = t.day
      where r.v is distinct from t.v
      order by 1, 2`),
    );
    return rows.map((r) => ({ ...r }));
  }

  /** Every compute row of one instance, oldest first (tests and audits). */
  async rowsOf(key: string) {
    return this.db
      .select()
      .from(usageIntervals)
      .where(sql`${usageIntervals.meterKey} = ${key}`)
      .orderBy(usageIntervals.startedAt);
  }
}

/** One point of the usage chart: a bucket's seconds and µ$ of one size. */
export interface SeriesRow {
  start: string;
  size: string;
  seconds: number;
  activeSeconds: number;
  idleSeconds: number;
  amountMicros: number;
}

/**
 * A Postgres array literal of texts (null: NULL). JSON's string escapes for `"` and `\\` are the
 * array literal's, and an unquoted null is NULL, so JSON.stringify (native, the fast path) writes
 * it; any other escape (control characters, lone surrogates) takes the element-by-element path.
 */
export function textArray(values: ReadonlyArray<string | null>): string {
  const json = JSON.stringify(values);
  if (!/\\[^"\\]/.test(json)) return `{${json.slice(1, -1)}}`;
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i) out += ',';
    out += v === null || v === undefined ? 'NULL' : `"${v.replace(/["\\]/g, '\\$&')}"`;
  }
  return `${out}}`;
}

/** An array literal of integers; anything but a safe integer is refused before it is sent. */
function intArray(values: readonly number[]): string {
  for (const v of values)
    if (!Number.isSafeInteger(v)) throw new Error(`ledger: ${String(v)} is not an integer`);
  return `{${values.join(',')}}`;
}

const boolArray = (values: readonly boolean[]) =>
  `{${values.map((v) => (v ? 't' : 'f')).join(',')}}`;

/** Rows per insert statement; more go in batches of one transaction. */
const BATCH = 20_000;

const DAY_MS = 86_400_000;

/** [from, to) starts and ends on UTC midnights: the per-day totals answer it exactly. */
function wholeDays(from: Date, to: Date): boolean {
  return from.getTime() % DAY_MS === 0 && to.getTime() % DAY_MS === 0 && from < to;
}

const dayOf = (d: Date) => d.toISOString().slice(0, 10);

/** drizzle's execute answers rows directly (postgres.js) or as { rows } (PGlite). */
export function resultRows<T>(res: unknown): T[] {
  if (Array.isArray(res)) return res as T[];
  return ((res as { rows?: T[] }).rows ?? []) as T[];
}

function utcBucket(v: string | Date): string {
  // date_trunc(... at time zone 'UTC') is a timestamp without zone: its text is UTC wall time
  if (v instanceof Date)
    return new Date(v.getTime() - v.getTimezoneOffset() * 60_000).toISOString();
  return new Date(`${String(v).replace(' ', 'T')}Z`).toISOString();
}

export { MINIMUM_SECONDS };
