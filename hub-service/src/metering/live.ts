/**
 * The figures every endpoint answers, live to the second: ledger sums plus the part of each open
 * stream the meter has not written yet, computed with the contract's definitions (figures.ts) on
 * one clock (`Metering.now`). GET /budget (a group budget too), /usage, /instances,
 * /billing/statements (the list and a month's detail), /admin/users and /admin/instances all go
 * through here, so at the same instant they answer the same amounts.
 */
import { inArray, sql } from 'drizzle-orm';
import {
  dayWindow,
  monthKeyWindow,
  monthWindow,
  unwrittenMicros,
  unwrittenSeconds,
  unwrittenTotal,
  type LiveFigures,
  type OpenStream,
  type Statement,
  type Window,
} from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instances } from '../db/schema.js';
import type { InstanceRow } from '../instances/store.js';
import type { ReadCache } from '../routes/read-cache.js';
import type { Ledger, StreamEnd } from './ledger.js';
import type { MeterSettings } from './meter.js';
import { PlanTable } from './plans.js';
import type { PlanCache } from './plan-cache.js';
import { HOUR, MINIMUM_SECONDS, STORAGE_MONTH_SECONDS } from './money.js';

export interface LiveParts {
  db: Db;
  ledger: Ledger;
  settings: Pick<MeterSettings, 'homeGb' | 'homeGbMonthMicros' | 'defaultPlan'>;
  /** the plans in memory (plan-cache.ts); without it each read loads the plan tables */
  plans?: Pick<PlanCache, 'table'>;
  /** the read routes' cache of settled figures (routes/read-cache.ts); without it, none */
  cache?: Pick<ReadCache, 'get' | 'active'>;
}

/** Every plan and assignment: from the copy in memory when there is one, else from the tables. */
const planTable = (p: LiveParts): Promise<PlanTable> =>
  p.plans ? p.plans.table() : PlanTable.load(p.db, p.settings.defaultPlan);

type GroupsOf = (user: string) => readonly string[];

/** Stopped instances whose final row may still be missing are looked for this far back. */
const UNCLOSED_LOOKBACK_MS = 2 * 86_400_000;

/**
 * What the open streams of some users are computed from, read at one instant (`at`): their
 * instances that became ready and are active or ended within the look-back of `at`, their home
 * volumes' starts, and the newest ledger row of each of those streams. Settled data only: a copy
 * stays exact for any later `now` until one of them is written (routes/read-cache.ts).
 */
export interface StreamInputs {
  at: number;
  rows: InstanceRow[];
  homes: Array<{ user: string; since: Date }>;
  ends: Map<string, StreamEnd>;
}

/** Reads StreamInputs of `users` (all users when null) at `now`. */
export async function streamInputs(
  p: LiveParts,
  users: readonly string[] | null,
  now: Date,
): Promise<StreamInputs> {
  const at = now.getTime();
  if (users && !users.length) return { at, rows: [], homes: [], ends: new Map() };
  const since = new Date(at - UNCLOSED_LOOKBACK_MS).toISOString();
  const userFilter = users
    ? sql` and ${instances.userName} in (select json_array_elements_text(${JSON.stringify(users)}::json))`
    : sql``;
  // `readyAt <= now` is applied by streamsAt, so that the rows serve any later instant too
  const rows = await p.db
    .select()
    .from(instances)
    .where(
      sql`${instances.readyAt} is not null and (
        ${instances.state} in ('requested', 'provisioning', 'starting', 'running', 'stopping')
        or coalesce(${instances.stoppedAt}, ${instances.readyAt}) > ${since})${userFilter}`,
    );
  const { homeGb, homeGbMonthMicros } = p.settings;
  const homes =
    homeGb > 0 && homeGbMonthMicros > 0 ? await p.ledger.homeVolumes(users ?? undefined) : [];
  const ends = await p.ledger.ends(streamKeys(rows, homes));
  return { at, rows, homes, ends };
}

const streamKeys = (rows: readonly InstanceRow[], homes: StreamInputs['homes']): string[] => [
  ...rows.map((r) => r.id),
  ...homes.map((h) => `home:${h.user}`),
];

const ACTIVE = new Set(['requested', 'provisioning', 'starting', 'running', 'stopping']);

/** The open streams at `now` (not before `inputs.at`) from StreamInputs. Pure. */
export function streamsAt(
  inputs: StreamInputs,
  plans: PlanTable,
  groupsOf: GroupsOf,
  p: Pick<LiveParts, 'settings'>,
  now: Date,
): OpenStream[] {
  const t = now.getTime();
  const since = t - UNCLOSED_LOOKBACK_MS;
  const draft: Array<Omit<OpenStream, 'writtenUntil' | 'billedSeconds'>> = [];
  for (const r of inputs.rows) {
    if (r.readyAt!.getTime() > t) continue;
    if (!ACTIVE.has(r.state) && (r.stoppedAt ?? r.readyAt!).getTime() <= since) continue;
    const terminal = r.state === 'stopped' || r.state === 'failed';
    const plan = plans.planOf(r.userName, groupsOf(r.userName));
    draft.push({
      key: r.id,
      kind: 'compute',
      user: r.userName,
      size: r.sizeId,
      instanceId: r.id,
      anchor: r.readyAt!.toISOString(),
      rateMicros: r.listRatePerHourMicros,
      ratePeriodSeconds: HOUR,
      multiplierPpm: plan.multiplierPpm,
      closeAt: terminal ? (r.stoppedAt ?? now).toISOString() : null,
      minimumSeconds: MINIMUM_SECONDS,
    });
  }
  const { homeGb, homeGbMonthMicros } = p.settings;
  for (const { user, since: first } of inputs.homes) {
    if (first.getTime() > t) continue;
    const plan = plans.planOf(user, groupsOf(user));
    draft.push({
      key: `home:${user}`,
      kind: 'storage',
      user,
      size: 'home-volume',
      instanceId: null,
      anchor: first.toISOString(),
      rateMicros: Math.round(homeGb * homeGbMonthMicros),
      ratePeriodSeconds: STORAGE_MONTH_SECONDS,
      multiplierPpm: plan.multiplierPpm,
      closeAt: null,
      minimumSeconds: 0,
    });
  }
  const out: OpenStream[] = [];
  for (const d of draft) {
    const end = inputs.ends.get(d.key);
    if (end?.final) continue;
    // an instance that stopped before the meter ever wrote it and is long gone: nothing open
    out.push({
      ...d,
      writtenUntil: end ? end.endedAt.toISOString() : d.anchor,
      billedSeconds: end ? end.billedTo : 0,
    });
  }
  return out;
}

/**
 * The open ledger streams of `users` (all users when null) at `now`: running instances (and
 * stopped ones the meter has not closed yet) and home volumes, each with its newest row's end.
 */
export async function openStreams(
  p: LiveParts,
  users: readonly string[] | null,
  groupsOf: GroupsOf,
  now: Date,
): Promise<OpenStream[]> {
  const inputs = await streamInputs(p, users, now);
  return streamsAt(inputs, await planTable(p), groupsOf, p, now);
}

const sameEnd = (a: StreamEnd | undefined, b: StreamEnd | undefined): boolean =>
  a && b ? a.endedAt.getTime() === b.endedAt.getTime() && a.final === b.final : !a && !b;

/**
 * Reads ledger sums and the open streams' inputs as of one instant: if the meter wrote a row
 * between the two reads (which would count those seconds twice), reads again.
 */
async function measured<T>(
  p: LiveParts,
  users: readonly string[] | null,
  now: Date,
  read: () => Promise<T>,
): Promise<{ inputs: StreamInputs; written: T }> {
  for (let attempt = 0; ; attempt++) {
    const inputs = await streamInputs(p, users, now);
    const written = await read();
    const keys = streamKeys(inputs.rows, inputs.homes);
    const again = await p.ledger.ends(keys);
    if (keys.every((k) => sameEnd(inputs.ends.get(k), again.get(k))) || attempt >= 4)
      return { inputs, written };
  }
}

/**
 * The open streams and `read`'s ledger sums as of one instant (see `measured`). With a read cache
 * in `p` and a `key` that names what `read` reads (for one user), both come from memory while
 * nothing they depend on was written; the streams are computed for `now` either way. What `read`
 * answers is shared with later requests then: callers copy before they change it.
 */
export async function measure<T>(
  p: LiveParts,
  users: readonly string[] | null,
  groupsOf: GroupsOf,
  now: Date,
  read: () => Promise<T>,
  key?: string,
): Promise<{ streams: OpenStream[]; written: T }> {
  const user = users?.length === 1 ? users[0]! : null;
  let got: { inputs: StreamInputs; written: T };
  if (p.cache && key && user !== null) {
    got = await p.cache.get(user, `measure:${key}`, () => measured(p, users, now, read));
    // a clock behind the copy's (a test's, or a replica's): the look-back may differ, ask
    if (got.inputs.at > now.getTime()) got = await measured(p, users, now, read);
  } else got = await measured(p, users, now, read);
  const streams = streamsAt(got.inputs, await planTable(p), groupsOf, p, now);
  return { streams, written: got.written };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Today and this month for one user at `now`, with the streams to tick them. */
export async function liveFigures(
  p: LiveParts,
  user: string,
  groups: readonly string[],
  now: Date,
): Promise<LiveFigures> {
  return (await liveFiguresAndGpu(p, user, groups, now)).figures;
}

/**
 * liveFigures, and the user's billed GPU seconds this month read with the same query (GET
 * /budget): the day's and the month's ledger sums and the GPU seconds are one read of the
 * per-day totals (Ledger.userSums), each the figure userSpend and gpuSeconds answer.
 */
export async function liveFiguresAndGpu(
  p: LiveParts,
  user: string,
  groups: readonly string[],
  now: Date,
): Promise<{ figures: LiveFigures; gpuSeconds: number }> {
  const t = now.getTime();
  const day = dayWindow(t);
  const month = monthWindow(t);
  const { streams, written: sums } = await measure(
    p,
    [user],
    () => groups,
    now,
    () =>
      p.ledger.userSums(
        user,
        [
          [new Date(day.from), new Date(day.to)],
          [new Date(month.from), new Date(month.to)],
        ],
        [new Date(month.from), new Date(month.to)],
      ),
    `sums:${day.from}:${month.from}`,
  );
  const written = sums.spend;
  const figures: LiveFigures = {
    asOf: now.toISOString(),
    user,
    today: {
      from: iso(day.from),
      to: iso(day.to),
      micros: written[0]! + unwrittenTotal(streams, day, t),
    },
    month: {
      from: iso(month.from),
      to: iso(month.to),
      micros: written[1]! + unwrittenTotal(streams, month, t),
    },
    streams,
  };
  return { figures, gpuSeconds: sums.gpuSeconds };
}

/** What each instance has been billed so far (its ledger rows plus its open part) at `now`. */
export async function billedByInstance(
  p: LiveParts,
  user: string | null,
  groupsOf: GroupsOf,
  ids: readonly string[],
  now: Date,
): Promise<{ billed: Map<string, number>; streams: OpenStream[] }> {
  const { streams, written } = await measure(
    p,
    user ? [user] : null,
    groupsOf,
    now,
    () => p.ledger.streamTotals(ids),
    `streamTotals:${ids.join(',')}`,
  );
  const billed = new Map(written);
  const all = { from: -Infinity, to: Infinity };
  for (const s of streams) {
    if (s.kind !== 'compute') continue;
    billed.set(s.key, (billed.get(s.key) ?? 0) + unwrittenMicros(s, all, now.getTime()));
  }
  return { billed, streams: streams.filter((s) => s.kind === 'compute') };
}

export type Bucket = 'hour' | 'day' | 'month';

function bucketStart(t: number, g: Bucket): number {
  const d = new Date(t);
  if (g === 'hour') return Math.floor(t / 3_600_000) * 3_600_000;
  if (g === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
function bucketEnd(start: number, g: Bucket): number {
  const d = new Date(start);
  if (g === 'hour') return start + 3_600_000;
  if (g === 'day') return start + 86_400_000;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export interface SeriesPoint {
  start: string;
  size: string;
  seconds: number;
  activeSeconds: number;
  idleSeconds: number;
  amountMicros: number;
}

/**
 * The usage series of a user over [from, to) at `now`: the ledger's buckets plus each open
 * stream's unwritten seconds and µ$ in the buckets they fall in.
 */
export async function liveSeries(
  p: LiveParts,
  user: string,
  groups: readonly string[],
  from: Date,
  to: Date,
  granularity: Bucket,
  now: Date,
): Promise<{ series: SeriesPoint[]; streams: OpenStream[] }> {
  const { streams, written } = await measure(
    p,
    [user],
    () => groups,
    now,
    () => p.ledger.series(user, from, to, granularity),
  );
  return { series: seriesAt(written, streams, from, to, granularity, now), streams };
}

/** The usage series from the ledger's buckets (`written`) and the open streams at `now`. Pure. */
export function seriesAt(
  written: readonly SeriesPoint[],
  streams: readonly OpenStream[],
  from: Date,
  to: Date,
  granularity: Bucket,
  now: Date,
): SeriesPoint[] {
  const points = new Map(written.map((pt) => [`${pt.start}|${pt.size}`, { ...pt }]));
  const t = now.getTime();
  const end = Math.min(t, to.getTime());
  for (const s of streams) {
    const first = Math.max(Date.parse(s.writtenUntil), from.getTime());
    for (let b = bucketStart(first, granularity); ; b = bucketEnd(b, granularity)) {
      const w = {
        from: Math.max(b, from.getTime()),
        to: Math.min(bucketEnd(b, granularity), to.getTime()),
      };
      const micros = unwrittenMicros(s, w, t);
      const seconds = s.kind === 'compute' ? unwrittenSeconds(s, w, t) : 0;
      if (micros || seconds) {
        const key = `${iso(b)}|${s.size}`;
        const pt = points.get(key) ?? {
          start: iso(b),
          size: s.size,
          seconds: 0,
          activeSeconds: 0,
          idleSeconds: 0,
          amountMicros: 0,
        };
        pt.seconds += seconds;
        pt.amountMicros += micros;
        points.set(key, pt);
      }
      if (bucketEnd(b, granularity) >= end) break;
    }
  }
  return [...points.values()].sort(
    (a, b) => a.start.localeCompare(b.start) || a.size.localeCompare(b.size),
  );
}

/** Months with usage, newest first; the running month's total live at `now`. */
export async function liveMonths(
  p: LiveParts,
  user: string,
  groups: readonly string[],
  now: Date,
): Promise<{
  statements: Array<{ month: string; totalMicros: number; seconds: number }>;
  streams: OpenStream[];
}> {
  const { streams, written } = await measure(
    p,
    [user],
    () => groups,
    now,
    () => p.ledger.months(user),
    'months',
  );
  const t = now.getTime();
  const month = monthWindow(t);
  const key = iso(month.from).slice(0, 7);
  const add = unwrittenTotal(streams, month, t);
  const addSeconds = streams
    .filter((s) => s.kind === 'compute')
    .reduce((a, s) => a + unwrittenSeconds(s, month, t), 0);
  const statements = written.map((m) => ({ ...m }));
  if (add || addSeconds) {
    const cur = statements.find((m) => m.month === key);
    if (cur) {
      cur.totalMicros += add;
      cur.seconds += addSeconds;
    } else statements.unshift({ month: key, totalMicros: add, seconds: addSeconds });
  }
  return { statements, streams };
}

/**
 * Who is in which group, as the meter bills them: the caller's hub groups, everyone else's on
 * their newest ledger row. Users are everyone who ever had an instance (a home volume).
 */
async function knownGroups(
  p: LiveParts,
  caller: { user: string; groups: readonly string[] } | null,
): Promise<{ users: string[]; groupsOf: GroupsOf }> {
  const users = (await p.ledger.homeVolumes()).map((h) => h.user);
  const groups = await p.ledger.newestGroups(users);
  if (caller) {
    groups.set(caller.user, [...caller.groups]);
    if (!users.includes(caller.user)) users.push(caller.user);
  }
  return { users, groupsOf: (u) => groups.get(u) ?? [] };
}

/**
 * A group budget's spent at `now` over `w`: the group's ledger rows plus the unwritten part of its
 * members' open streams (the same definition as a user's month, figures.ts), with those streams
 * so a surface can tick it.
 */
export async function liveGroupSpend(
  p: LiveParts,
  group: string,
  caller: { user: string; groups: readonly string[] },
  w: Window,
  now: Date,
): Promise<{ micros: number; streams: OpenStream[] }> {
  const { users, groupsOf } = await knownGroups(p, caller);
  const members = users.filter((u) => groupsOf(u).includes(group));
  const { streams, written } = await measure(p, members, groupsOf, now, () =>
    p.ledger.groupSpend(group, new Date(w.from), new Date(w.to)),
  );
  return { micros: written + unwrittenTotal(streams, w, now.getTime()), streams };
}

/**
 * Spent this month at `now` for budget subjects, each exactly as GET /budget answers it
 * (figures.ts): a user's month as liveFigures has it, a group's as liveGroupSpend has it (its
 * rows plus its members' open streams). The meter's budget enforcer takes its alerts and hard
 * stops from here, so they agree with every surface at the same instant. `groupsOf` is who is in
 * which group as the caller knows it (the meter: the hub's listing; undefined: not known, then
 * the groups on the user's newest ledger row, as the surfaces have them).
 */
export async function liveMonthSpend(
  p: LiveParts,
  users: readonly string[],
  groups: readonly string[],
  groupsOf: (user: string) => readonly string[] | undefined,
  now: Date,
): Promise<{ users: Map<string, number>; groups: Map<string, number> }> {
  const t = now.getTime();
  const w = monthWindow(t);
  let subjects = [...new Set(users)];
  let membership: GroupsOf = (u) => groupsOf(u) ?? [];
  if (groups.length) {
    const known = await knownGroups(p, null);
    membership = (u) => groupsOf(u) ?? known.groupsOf(u);
    const wanted = new Set(groups);
    for (const u of known.users) if (membership(u).some((g) => wanted.has(g))) subjects.push(u);
    subjects = [...new Set(subjects)];
  }
  const { streams, written } = await measure(p, subjects, membership, now, () =>
    Promise.all([
      p.ledger.spendByUser(new Date(w.from), new Date(w.to), users),
      p.ledger.groupsSpend(groups, new Date(w.from), new Date(w.to)),
    ]),
  );
  const byUser = new Map(users.map((u) => [u, written[0].get(u) ?? 0]));
  const byGroup = new Map(groups.map((g) => [g, written[1].get(g) ?? 0]));
  for (const s of streams) {
    const add = unwrittenMicros(s, w, t);
    if (!add) continue;
    if (byUser.has(s.user)) byUser.set(s.user, byUser.get(s.user)! + add);
    for (const g of new Set(membership(s.user)))
      if (byGroup.has(g)) byGroup.set(g, byGroup.get(g)! + add);
  }
  return { users: byUser, groups: byGroup };
}

/** Every instance's billed so far at `now` (the admin panel's running instances), any user. */
export async function billedByInstanceAll(
  p: LiveParts,
  ids: readonly string[],
  now: Date,
): Promise<{ billed: Map<string, number>; streams: OpenStream[] }> {
  const { groupsOf } = await knownGroups(p, null);
  return billedByInstance(p, null, groupsOf, ids, now);
}

/**
 * Every user's spend in `w` at `now` (the admin users table): ledger plus unwritten part, with
 * the open streams the table ticks its "Spent" column with.
 */
export async function liveSpendByUserWithStreams(
  p: LiveParts,
  groupsOf: GroupsOf,
  w: Window,
  now: Date,
): Promise<{ spend: Map<string, number>; streams: OpenStream[] }> {
  const { streams, written } = await measure(p, null, groupsOf, now, () =>
    p.ledger.spendByUser(new Date(w.from), new Date(w.to)),
  );
  const spend = new Map(written);
  for (const s of streams) {
    const add = unwrittenMicros(s, w, now.getTime());
    if (add) spend.set(s.user, (spend.get(s.user) ?? 0) + add);
  }
  return { spend, streams };
}

/**
 * A month's statement at `now`: its ledger lines, and for the running month each open stream's
 * unwritten part up to this second, added to that stream's newest line at the same rate (or as
 * a line of its own before the meter wrote any), so the detail sums to the live total.
 */
export async function liveStatement(
  p: LiveParts,
  user: string,
  groups: readonly string[],
  month: string,
  now: Date,
  read: () => Promise<Statement>,
): Promise<{ statement: Statement; streams: OpenStream[] }> {
  const { streams, written } = await measure(p, [user], () => groups, now, read);
  const statement = { ...written, lines: written.lines.map((l) => ({ ...l })) };
  const w = monthKeyWindow(month);
  const t = now.getTime();
  const open = streams.filter((s) => unwrittenMicros(s, w, t) || unwrittenSeconds(s, w, t));
  const facts = open.some((s) => s.instanceId)
    ? await p.db
        .select()
        .from(instances)
        .where(
          inArray(
            instances.id,
            open.flatMap((s) => (s.instanceId ? [s.instanceId] : [])),
          ),
        )
    : [];
  const plans = await planTable(p);
  const hourly = (s: OpenStream) =>
    s.ratePeriodSeconds === HOUR
      ? s.rateMicros
      : Math.round((s.rateMicros * HOUR) / s.ratePeriodSeconds);
  for (const s of open) {
    const micros = unwrittenMicros(s, w, t);
    const seconds = s.kind === 'compute' ? unwrittenSeconds(s, w, t) : 0;
    const end = iso(Math.min(t, w.to, s.closeAt ? Date.parse(s.closeAt) : Infinity));
    const line = statement.lines
      .filter(
        (l) =>
          l.kind === s.kind &&
          (s.kind === 'storage' || l.instanceId === s.instanceId) &&
          l.multiplierPpm === s.multiplierPpm &&
          l.ratePerHourMicros === hourly(s),
      )
      .at(-1);
    if (line) {
      line.seconds += s.kind === 'compute' ? seconds : 0;
      line.amountMicros += micros;
      if (end > line.to) line.to = end;
      continue;
    }
    const row = facts.find((r) => r.id === s.instanceId);
    statement.lines.push({
      kind: s.kind,
      server: row?.serverName ?? null,
      instanceId: s.instanceId,
      size: s.size,
      cloud: row?.cloud ?? 'local',
      region: row?.region ?? '',
      spot: row?.spot ?? false,
      plan: plans.planOf(user, groups).id,
      multiplierPpm: s.multiplierPpm,
      ratePerHourMicros: hourly(s),
      from: iso(Math.max(Date.parse(s.writtenUntil), w.from)),
      to: end,
      seconds,
      amountMicros: micros,
    });
  }
  const sum = (kind: string) =>
    statement.lines.filter((l) => l.kind === kind).reduce((a, l) => a + l.amountMicros, 0);
  statement.computeMicros = sum('compute');
  statement.storageMicros = sum('storage');
  statement.totalMicros = statement.computeMicros + statement.storageMicros;
  return { statement, streams };
}
