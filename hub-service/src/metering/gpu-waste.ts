/**
 * GPU money wasted (issue 15, part 3): a meter phase that turns each GPU instance's agent samples
 * into idle stretches (gpu_idle_intervals, db/tables/gpu-waste.ts) priced at the instance's own
 * rate, and the reads every surface makes of them. What counts as idle is the contract's
 * (contract/src/gpu-waste.ts: every GPU below NGSCI_GPU_IDLE_PERCENT; a sample stands for at most
 * NGSCI_GPU_SAMPLE_SPAN seconds before it, and only while the instance was billed).
 *
 * Why nothing is counted twice: an instance's new rows start where its newest row ends (or at its
 * readyAt), cover only the samples after that point, and (meter_key, started_at) is unique, so a
 * replayed cycle, a second writer or a restarted service (which reads that end back from the
 * table) adds nothing already written. A sample repeated by the agent covers only the seconds
 * since the sample before it. The per-day totals are kept by the table's statement triggers
 * (migration 0014_gpu_idle_totals) from exactly the rows each insert wrote.
 */
import { sql, type SQL } from 'drizzle-orm';
import {
  GPU_IDLE_PERCENT_DEFAULT,
  GPU_SAMPLE_SPAN_DEFAULT,
  gpuSampleIdle,
  type GpuIdle,
  type GpuWasteEntry,
} from '@ngsci/contract';
import type { Db } from '../db/client.js';
import type { gpuIdleIntervals } from '../db/schema.js';
import type { MeterSnapshot } from './cycle.js';
import { resultRows } from './ledger.js';
import { HOUR, intervalMicros } from './money.js';

export interface GpuWasteSettings {
  /** a GPU below this utilisation (percent) is idle (NGSCI_GPU_IDLE_PERCENT) */
  idlePercent: number;
  /** a sample stands for at most this many seconds before it (NGSCI_GPU_SAMPLE_SPAN) */
  sampleSpanSeconds: number;
  /**
   * a running instance's rows are written once they reach this many seconds past its newest row
   * (NGSCI_METER_ACCRUE_EVERY, as the ledger's); a stopped one's at once. 0: every cycle
   */
  everySeconds?: number;
}

export const defaultGpuWasteSettings: GpuWasteSettings = {
  idlePercent: GPU_IDLE_PERCENT_DEFAULT,
  sampleSpanSeconds: GPU_SAMPLE_SPAN_DEFAULT,
};

/** One GPU instance as the phase prices it. */
export interface GpuStream {
  key: string;
  user: string;
  groups: string[];
  instanceId: string;
  server: string | null;
  size: string;
  planId: string;
  multiplierPpm: number;
  rateMicros: number;
  ratePeriodSeconds: number;
  /** billed from here (readyAt) */
  anchor: Date;
  /** billed until here (the stop); null while it runs */
  closeAt: Date | null;
}

export interface GpuStreamEnd {
  endedAt: Date;
  idleTo: number;
}

export interface GpuSampleAt {
  at: Date;
  gpus: ReadonlyArray<{ utilizationPercent: number | null }>;
}

export type GpuIdleRow = typeof gpuIdleIntervals.$inferInsert;

const sec = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * The rows that bring an instance from its newest row (`last`) through the samples after it, up
 * to `until` (the samples are the instance's, oldest first; ones at or before `last` are skipped).
 * Whole seconds; split at UTC hours. Pure, for tests and replays. Empty when no sample is new.
 */
export function idleRowsFor(
  s: GpuStream,
  last: GpuStreamEnd | null,
  samples: readonly GpuSampleAt[],
  until: Date,
  settings: GpuWasteSettings,
): GpuIdleRow[] {
  const start = last ? sec(last.endedAt) : Math.ceil(s.anchor.getTime() / 1000);
  const limitMs = Math.min(until.getTime(), s.closeAt ? s.closeAt.getTime() : Infinity);
  const sampled = new Map<number, number>();
  const idle = new Map<number, number>();
  const add = (into: Map<number, number>, from: number, to: number) => {
    for (let a = from; a < to;) {
      const h = Math.floor(a / HOUR);
      const b = Math.min(to, (h + 1) * HOUR);
      into.set(h, (into.get(h) ?? 0) + (b - a));
      a = b;
    }
  };
  let prev = start;
  for (const x of samples) {
    if (x.at.getTime() > limitMs) break;
    const t = sec(x.at);
    if (t <= prev) continue;
    const covered = Math.max(prev, t - settings.sampleSpanSeconds);
    const isIdle = gpuSampleIdle(x.gpus, settings.idlePercent);
    if (isIdle !== null) {
      add(sampled, covered, t);
      if (isIdle) add(idle, covered, t);
    }
    prev = t;
  }
  if (prev === start) return [];
  const rows: GpuIdleRow[] = [];
  let idleFrom = last?.idleTo ?? 0;
  for (let a = start; a < prev;) {
    const h = Math.floor(a / HOUR);
    const b = Math.min(prev, (h + 1) * HOUR);
    const idleSeconds = idle.get(h) ?? 0;
    const sampledSeconds = sampled.get(h) ?? 0;
    // an hour without any sample adds nothing; the last row is written anyway (it moves the end)
    if (sampledSeconds > 0 || b === prev) {
      const idleTo = idleFrom + idleSeconds;
      rows.push({
        meterKey: s.key,
        userName: s.user,
        groups: s.groups,
        instanceId: s.instanceId,
        serverName: s.server,
        sizeId: s.size,
        startedAt: new Date(a * 1000),
        endedAt: new Date(b * 1000),
        sampledSeconds,
        idleSeconds,
        idleFrom,
        idleTo,
        thresholdPercent: Math.round(settings.idlePercent),
        planId: s.planId,
        multiplierPpm: s.multiplierPpm,
        rateMicros: s.rateMicros,
        ratePeriodSeconds: s.ratePeriodSeconds,
        amountMicros: intervalMicros(
          s.rateMicros,
          idleFrom,
          idleTo,
          s.multiplierPpm,
          s.ratePeriodSeconds,
        ),
      });
      idleFrom = idleTo;
    }
    a = b;
  }
  return rows;
}

const COLUMNS =
  'meter_key, user_name, groups, instance_id, server_name, size_id, started_at, ended_at, sampled_seconds, ' +
  'idle_seconds, idle_from, idle_to, threshold_percent, plan_id, multiplier_ppm, rate_micros, rate_period_seconds, amount_micros';

/** Samples read per instance per cycle (a meter back from a long outage catches up over cycles). */
const SAMPLES_PER_CYCLE = 20_000;
/** Samples younger than this are left for the next cycle (a report still committing). */
const LAG_SECONDS = 5;
const DAY_MS = 86_400_000;

export class GpuWaste {
  readonly settings: GpuWasteSettings;

  constructor(
    private readonly db: Db,
    settings: Partial<GpuWasteSettings> = {},
  ) {
    this.settings = { ...defaultGpuWasteSettings, ...settings };
  }

  private async all<T>(query: SQL): Promise<T[]> {
    return resultRows<T>(await this.db.execute(query));
  }

  /** The meter phase: the GPU instances of the snapshot, brought up to the cycle. Rows written. */
  async run(snap: MeterSnapshot): Promise<number> {
    const streams: GpuStream[] = [];
    for (const r of snap.metered) {
      if (!r.readyAt || snap.classOf(r.sizeId) !== 'gpu') continue;
      const groups = snap.groupsOf(r.userName);
      const plan = snap.plans.planOf(r.userName, groups);
      const terminal = r.state === 'stopped' || r.state === 'failed';
      streams.push({
        key: r.id,
        user: r.userName,
        groups,
        instanceId: r.id,
        server: r.serverName,
        size: r.sizeId,
        planId: plan.id,
        multiplierPpm: plan.multiplierPpm,
        rateMicros: r.listRatePerHourMicros,
        ratePeriodSeconds: HOUR,
        anchor: r.readyAt,
        closeAt: terminal ? (r.stoppedAt ?? snap.now) : null,
      });
    }
    return this.accrue(streams, snap.now);
  }

  /** Brings each stream up to `now` (its close, if sooner) from the samples after its newest row. */
  async accrue(streams: readonly GpuStream[], now: Date): Promise<number> {
    if (!streams.length) return 0;
    const ends = await this.ends(streams.map((s) => s.key));
    const until = new Date(now.getTime() - LAG_SECONDS * 1000);
    const asks = streams.map((s) => {
      const end = s.closeAt && s.closeAt < until ? s.closeAt : until;
      return {
        id: s.key,
        since: (ends.get(s.key)?.endedAt ?? s.anchor).toISOString(),
        until: end.toISOString(),
      };
    });
    const samples = await this.samples(asks);
    const rows: GpuIdleRow[] = [];
    for (const s of streams) {
      const mine = samples.get(s.key);
      if (!mine?.length) continue;
      const last = ends.get(s.key) ?? null;
      const due = idleRowsFor(s, last, mine, until, this.settings);
      const from = (last?.endedAt ?? s.anchor).getTime();
      const reach = due.length ? (due[due.length - 1]!.endedAt as Date).getTime() - from : 0;
      if (s.closeAt || reach >= (this.settings.everySeconds ?? 0) * 1000) rows.push(...due);
    }
    return this.append(rows);
  }

  /** The newest row of each stream: where its next row starts. */
  async ends(keys: readonly string[]): Promise<Map<string, GpuStreamEnd>> {
    const out = new Map<string, GpuStreamEnd>();
    if (!keys.length) return out;
    const rows = await this.all<{ key: string; ended_at: string | Date; idle_to: string | number }>(
      sql`
      select k.key, l.ended_at, l.idle_to
      from json_array_elements_text(${JSON.stringify(keys)}::json) as k(key)
      join lateral (
        select ended_at, idle_to from gpu_idle_intervals g
        where g.meter_key = k.key order by g.started_at desc limit 1
      ) l on true`,
    );
    for (const r of rows)
      out.set(r.key, { endedAt: new Date(r.ended_at), idleTo: Number(r.idle_to) });
    return out;
  }

  private async samples(
    asks: ReadonlyArray<{ id: string; since: string; until: string }>,
  ): Promise<Map<string, GpuSampleAt[]>> {
    const rows = await this.all<{
      id: string;
      at: string | Date;
      gpus: GpuSampleAt['gpus'] | string;
    }>(sql`
      select k.id, s.at, s.gpus
      from json_to_recordset(${JSON.stringify(asks)}::json) as k(id text, since timestamptz, until timestamptz)
      join lateral (
        select at, gpus, id as sid from gpu_samples s
        where s.instance_id = k.id and s.at > k.since and s.at <= k.until
        order by s.at, s.id limit ${SAMPLES_PER_CYCLE}
      ) s on true
      order by k.id, s.at, s.sid`);
    const out = new Map<string, GpuSampleAt[]>();
    for (const r of rows) {
      const list = out.get(r.id) ?? [];
      list.push({
        at: new Date(r.at),
        gpus: typeof r.gpus === 'string' ? (JSON.parse(r.gpus) as GpuSampleAt['gpus']) : r.gpus,
      });
      out.set(r.id, list);
    }
    return out;
  }

  /** One statement; a row whose (meter_key, started_at) exists already is dropped. Rows inserted. */
  async append(rows: readonly GpuIdleRow[]): Promise<number> {
    if (!rows.length) return 0;
    const batch = rows.map((r) => ({
      meter_key: r.meterKey,
      user_name: r.userName,
      groups: r.groups ?? [],
      instance_id: r.instanceId ?? null,
      server_name: r.serverName ?? null,
      size_id: r.sizeId,
      started_at: (r.startedAt as Date).toISOString(),
      ended_at: (r.endedAt as Date).toISOString(),
      sampled_seconds: r.sampledSeconds,
      idle_seconds: r.idleSeconds,
      idle_from: r.idleFrom,
      idle_to: r.idleTo,
      threshold_percent: r.thresholdPercent,
      plan_id: r.planId,
      multiplier_ppm: r.multiplierPpm,
      rate_micros: r.rateMicros,
      rate_period_seconds: r.ratePeriodSeconds,
      amount_micros: r.amountMicros,
    }));
    const inserted = await this.all<{ id: number }>(sql`
      insert into gpu_idle_intervals (${sql.raw(COLUMNS)})
      select ${sql.raw(COLUMNS)} from json_populate_recordset(null::gpu_idle_intervals, ${JSON.stringify(batch)}::json)
      on conflict (meter_key, started_at) do nothing
      returning id`);
    return inserted.length;
  }

  private figure(r: { s?: unknown; i?: unknown; m?: unknown } | undefined): GpuIdle {
    return {
      sampledSeconds: Number(r?.s ?? 0),
      idleSeconds: Number(r?.i ?? 0),
      idleMicros: Number(r?.m ?? 0),
      thresholdPercent: Math.round(this.settings.idlePercent),
    };
  }

  /**
   * A user's idle GPU seconds and µ$ in rows that started in [from, to): whole UTC days from the
   * per-day totals, any other range from the rows.
   */
  async userIdle(user: string, from: Date, to: Date): Promise<GpuIdle> {
    const rows = await this.all<{ s: unknown; i: unknown; m: unknown }>(
      wholeDays(from, to)
        ? sql`select sum(sampled_seconds) as s, sum(idle_seconds) as i, sum(micros) as m
            from gpu_idle_user_days
            where user_name = ${user} and day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`
        : sql`select sum(sampled_seconds) as s, sum(idle_seconds) as i, sum(amount_micros) as m
            from gpu_idle_intervals
            where user_name = ${user} and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}`,
    );
    return this.figure(rows[0]);
  }

  /** The same summed over the rows themselves (tests compare). */
  async userIdleFromRows(user: string, from: Date, to: Date): Promise<GpuIdle> {
    const rows = await this.all<{ s: unknown; i: unknown; m: unknown }>(sql`
      select sum(sampled_seconds) as s, sum(idle_seconds) as i, sum(amount_micros) as m
      from gpu_idle_intervals
      where user_name = ${user} and started_at >= ${from.toISOString()} and started_at < ${to.toISOString()}`);
    return this.figure(rows[0]);
  }

  /**
   * Users and groups ranked by idle-GPU µ$ over whole UTC days [from, to) (the per-day totals),
   * most first, at most `limit` of each; and every user's total.
   */
  async ranking(
    from: Date,
    to: Date,
    limit: number,
  ): Promise<{ users: GpuWasteEntry[]; groups: GpuWasteEntry[]; totalIdleMicros: number }> {
    if (!wholeDays(from, to)) throw new Error('ranking: from and to must be UTC midnights');
    const range = sql`day >= ${dayOf(from)}::date and day < ${dayOf(to)}::date`;
    const entry = (r: { n: string; s: unknown; i: unknown; m: unknown }): GpuWasteEntry => ({
      name: r.n,
      idleSeconds: Number(r.i),
      sampledSeconds: Number(r.s),
      idleMicros: Number(r.m),
    });
    type R = { n: string; s: unknown; i: unknown; m: unknown };
    const [users, groups, total] = await Promise.all([
      this.all<R>(sql`
        select user_name as n, sum(sampled_seconds) as s, sum(idle_seconds) as i, sum(micros) as m
        from gpu_idle_user_days where ${range}
        group by user_name having sum(idle_seconds) > 0
        order by sum(micros) desc, sum(idle_seconds) desc, user_name limit ${limit}`),
      this.all<R>(sql`
        select group_name as n, sum(sampled_seconds) as s, sum(idle_seconds) as i, sum(micros) as m
        from gpu_idle_group_days where ${range}
        group by group_name having sum(idle_seconds) > 0
        order by sum(micros) desc, sum(idle_seconds) desc, group_name limit ${limit}`),
      this.all<{ m: unknown }>(sql`select sum(micros) as m from gpu_idle_user_days where ${range}`),
    ]);
    return {
      users: users.map(entry),
      groups: groups.map(entry),
      totalIdleMicros: Number(total[0]?.m ?? 0),
    };
  }

  /**
   * Where the per-day totals differ from the rows they sum (a full scan: tests and audits).
   * Empty unless something wrote around the triggers.
   */
  async totalsDrift(): Promise<
    Array<{ subject: string; day: string; totals: string; rows: string }>
  > {
    const sums = `sum(sampled_seconds) || '/' || sum(idle_seconds) || '/' || sum(amount_micros) || '/' || count(*)`;
    const rows = await this.all<{ subject: string; day: string; totals: string; rows: string }>(
      sql.raw(`
      with r as (
        select 'user:' || user_name || ':' || size_id as subject,
          to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, ${sums} as v
        from gpu_idle_intervals group by user_name, size_id, 2
        union all
        select 'group:' || g, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD'), ${sums}
        from gpu_idle_intervals cross join lateral (select distinct x from unnest(groups) x where x is not null) gs(g)
        group by g, 2),
      t as (
        select 'user:' || user_name || ':' || size_id as subject, to_char(day, 'YYYY-MM-DD') as day,
          sampled_seconds || '/' || idle_seconds || '/' || micros || '/' || rows as v
        from gpu_idle_user_days
        union all
        select 'group:' || group_name, to_char(day, 'YYYY-MM-DD'),
          sampled_seconds || '/' || idle_seconds || '/' || micros || '/' || rows from gpu_idle_group_days)
      select coalesce(r.subject, t.subject) as subject, coalesce(r.day, t.day) as day,
        coalesce(t.v, '-') as totals, coalesce(r.v, '-') as rows
      from r full join t on r.subject = t.subject and r.day = t.day
      where r.v is distinct from t.v
      order by 1, 2`),
    );
    return rows.map((r) => ({ ...r }));
  }
}

/** [from, to) starts and ends on UTC midnights: the per-day totals answer it exactly. */
function wholeDays(from: Date, to: Date): boolean {
  return from.getTime() % DAY_MS === 0 && to.getTime() % DAY_MS === 0 && from < to;
}

const dayOf = (d: Date) => d.toISOString().slice(0, 10);
