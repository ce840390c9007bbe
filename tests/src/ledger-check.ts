/**
 * Recomputes the compute ledger from its rows and says what is wrong with it, for the fault tests:
 * each instance's usage rows must run without gap or overlap from its readyAt (billed seconds too),
 * close exactly at its stop with the 60 s minimum, be priced as rate × seconds, and an instance
 * that never became ready must have no row at all. Reads Postgres directly (usage_intervals,
 * instances); the service's own code is not used, so a bug there cannot hide itself.
 */
import type postgres from 'postgres';

const MINIMUM_SECONDS = 60;

interface InstanceFacts {
  id: string;
  user_name: string;
  state: string;
  ready_at: Date | null;
  stopped_at: Date | null;
  list_rate_per_hour_micros: string;
}

interface Row {
  meter_key: string;
  started_at: Date;
  ended_at: Date;
  billed_from: string;
  billed_to: string;
  amount_micros: string;
  rate_micros: string;
  rate_period_seconds: number;
  multiplier_ppm: number;
  final: boolean;
}

export interface LedgerCheck {
  /** one line per thing that is wrong; empty when the ledger is right */
  problems: string[];
  /** billed seconds and µ$ per instance, for the test's own figures */
  totals: Map<string, { seconds: number; micros: number; rows: number; closed: boolean }>;
}

/** µ$ of `seconds` at `rate` per `period`, times ppm, rounded half up: the price of whole seconds. */
function cumulative(rate: bigint, seconds: bigint, ppm: bigint, period: bigint): bigint {
  const den = period * 1_000_000n;
  return (2n * rate * seconds * ppm + den) / (2n * den);
}

/**
 * Checks every compute stream of the given instances (default: all). `closed` instances (stopped
 * or failed) must have their final row; pass `requireClosed: false` to check a ledger mid-run.
 */
export async function checkLedger(
  sql: postgres.Sql,
  opts: { instanceIds?: string[]; requireClosed?: boolean } = {},
): Promise<LedgerCheck> {
  const requireClosed = opts.requireClosed ?? true;
  const instances = opts.instanceIds
    ? await sql<InstanceFacts[]>`
        select id::text, user_name, state, ready_at, stopped_at, list_rate_per_hour_micros
        from instances where id::text in ${sql(opts.instanceIds)}`
    : await sql<InstanceFacts[]>`
        select id::text, user_name, state, ready_at, stopped_at, list_rate_per_hour_micros
        from instances`;
  const rows = await sql<Row[]>`
    select meter_key, started_at, ended_at, billed_from, billed_to, amount_micros, rate_micros,
           rate_period_seconds, multiplier_ppm, final
    from usage_intervals where kind = 'compute' order by meter_key, started_at, id`;
  const byKey = new Map<string, Row[]>();
  for (const r of rows) byKey.set(r.meter_key, [...(byKey.get(r.meter_key) ?? []), r]);

  const problems: string[] = [];
  const totals: LedgerCheck['totals'] = new Map();
  const known = new Set(instances.map((i) => i.id));
  if (!opts.instanceIds) {
    for (const key of byKey.keys())
      if (!known.has(key)) problems.push(`usage rows for an unknown instance ${key}`);
  }

  for (const inst of instances) {
    const say = (what: string) => problems.push(`${inst.user_name} ${inst.id}: ${what}`);
    const own = byKey.get(inst.id) ?? [];
    const ended = inst.state === 'stopped' || inst.state === 'failed';
    if (!inst.ready_at) {
      if (own.length) say(`never ready, yet billed in ${own.length} row(s)`);
      totals.set(inst.id, { seconds: 0, micros: 0, rows: 0, closed: true });
      continue;
    }
    if (!own.length) {
      if (ended && requireClosed) say('ran but has no usage row');
      totals.set(inst.id, { seconds: 0, micros: 0, rows: 0, closed: false });
      continue;
    }
    const first = own[0]!;
    if (first.started_at.getTime() !== inst.ready_at.getTime())
      say(
        `first row starts at ${first.started_at.toISOString()}, not at readyAt ${inst.ready_at.toISOString()}`,
      );
    if (Number(first.billed_from) !== 0) say(`first row bills from second ${first.billed_from}`);
    let seconds = 0;
    let micros = 0;
    for (let i = 0; i < own.length; i++) {
      const r = own[i]!;
      const from = Number(r.billed_from);
      const to = Number(r.billed_to);
      if (to < from) say(`row ${i} bills backwards (${from} → ${to})`);
      if (r.ended_at.getTime() < r.started_at.getTime()) say(`row ${i} ends before it starts`);
      if (i > 0) {
        const prev = own[i - 1]!;
        if (r.started_at.getTime() !== prev.ended_at.getTime())
          say(
            `row ${i} starts at ${r.started_at.toISOString()} but row ${i - 1} ends at ${prev.ended_at.toISOString()} (${r.started_at < prev.ended_at ? 'overlap' : 'gap'})`,
          );
        if (from !== Number(prev.billed_to))
          say(`row ${i} bills from second ${from}, row ${i - 1} billed to ${prev.billed_to}`);
      }
      if (r.final && i !== own.length - 1) say(`row ${i} is final but more rows follow`);
      const expected = Number(
        cumulative(
          BigInt(r.rate_micros),
          BigInt(to),
          BigInt(r.multiplier_ppm),
          BigInt(r.rate_period_seconds),
        ) -
          cumulative(
            BigInt(r.rate_micros),
            BigInt(from),
            BigInt(r.multiplier_ppm),
            BigInt(r.rate_period_seconds),
          ),
      );
      if (Number(r.amount_micros) !== expected)
        say(`row ${i} is priced ${r.amount_micros} µ$, rate × seconds gives ${expected}`);
      if (Number(r.rate_micros) !== Number(inst.list_rate_per_hour_micros))
        say(
          `row ${i} at rate ${r.rate_micros}, the instance's is ${inst.list_rate_per_hour_micros}`,
        );
      seconds += to - from;
      micros += Number(r.amount_micros);
    }
    const last = own.at(-1)!;
    if (inst.stopped_at && last.ended_at.getTime() > inst.stopped_at.getTime())
      say(
        `billed past its stop (${last.ended_at.toISOString()} > ${inst.stopped_at.toISOString()})`,
      );
    if (ended && requireClosed) {
      if (!last.final) say(`${inst.state}, but its usage is not closed`);
      else if (inst.stopped_at) {
        if (last.ended_at.getTime() !== inst.stopped_at.getTime())
          say(
            `closed at ${last.ended_at.toISOString()}, stopped at ${inst.stopped_at.toISOString()}`,
          );
        const ran = Math.floor((inst.stopped_at.getTime() - inst.ready_at.getTime()) / 1000);
        const due = Math.max(MINIMUM_SECONDS, ran);
        if (seconds !== due) say(`billed ${seconds} s, it ran ${ran} s (due: ${due} s)`);
      }
    }
    if (!ended && last.final) say(`${inst.state}, but its usage was closed`);
    totals.set(inst.id, { seconds, micros, rows: own.length, closed: last.final });
  }
  return { problems, totals };
}
