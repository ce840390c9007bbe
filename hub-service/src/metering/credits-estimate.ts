/**
 * Credit grants in an estimate: "with the $50,000 AWS grant this scenario costs $…". A grant
 * covers the scenario's instance hours on its cloud, month by month from the month the estimate
 * is made, until its expiry (a grant tried without an expiry covers the whole scenario); several
 * grants on a cloud are used earliest expiry first, as the draw-down does (credits.ts). Other
 * lines (always-on machines, fixed costs, storage) name no cloud and stay at list price.
 */
import {
  EstimateScenario as Scenario,
  chosenSizeId,
  formatMicros,
  type Catalog,
  type Estimate,
  type EstimateCredits,
  type EstimateScenario,
} from '@ngsci/contract';
import { cloudLabel, dayOf } from './credits.js';

export interface EstimateGrant {
  cloud: string;
  source: 'scenario' | 'recorded';
  amountMicros: number;
  expiresOn: string | null;
  note: string | null;
}

/** Each cloud's µ$ a month in the estimate: its instance-hour lines that name or resolve to it. */
export function monthlyByCloud(
  catalog: Catalog,
  input: EstimateScenario,
  est: Estimate,
): Map<string, number> {
  const s = Scenario.parse(input);
  const hourLines = est.lines.filter((l) => l.kind === 'instance_hours');
  const out = new Map<string, number>();
  s.instanceHours.forEach((h, i) => {
    const line = hourLines[i];
    if (!line) return;
    // a custom rate without a cloud belongs to none; a catalog price to the cloud it was read on
    const cloud =
      h.cloud ??
      (h.ratePerHourMicros === undefined && chosenSizeId(h) ? catalog.defaultCloud : null);
    if (!cloud || cloud === 'local') return;
    out.set(cloud, (out.get(cloud) ?? 0) + line.monthlyMicros);
  });
  return out;
}

/** The first day of the i-th month from `now`'s month, YYYY-MM-DD. */
const monthStartDay = (now: Date, i: number): string =>
  dayOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + i, 1)));

/** Applies grants to an estimate's months, in integers. Pure. */
export function applyCredits(
  est: Estimate,
  monthly: ReadonlyMap<string, number>,
  grants: readonly EstimateGrant[],
  now: Date,
): EstimateCredits {
  const left = grants.map((g) => g.amountMicros);
  const applied = grants.map(() => 0);
  const order = grants
    .map((g, i) => ({ g, i }))
    .sort((a, b) => (a.g.expiresOn ?? '9999').localeCompare(b.g.expiresOn ?? '9999') || a.i - b.i);
  for (let m = 0; m < est.months; m++) {
    const start = monthStartDay(now, m);
    for (const [cloud, cost] of monthly) {
      let need = cost;
      for (const { g, i } of order) {
        if (need === 0) break;
        if (g.cloud !== cloud || (g.expiresOn !== null && g.expiresOn < start)) continue;
        const take = Math.min(need, left[i]!);
        left[i] = left[i]! - take;
        applied[i] = applied[i]! + take;
        need -= take;
      }
    }
  }
  const total = applied.reduce((a, b) => a + b, 0);
  const net = est.totalMicros - total;
  const named = grants.map(
    (g) =>
      `${g.source === 'recorded' ? 'the recorded' : 'the'} ${formatMicros(g.amountMicros)} ${cloudLabel(g.cloud)} grant${g.expiresOn ? ` (until ${g.expiresOn})` : ''}`,
  );
  const list =
    named.length <= 1
      ? (named[0] ?? 'no grants')
      : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
  return {
    grants: grants.map((g, i) => ({
      cloud: g.cloud as EstimateCredits['grants'][number]['cloud'],
      source: g.source,
      amountMicros: g.amountMicros,
      expiresOn: g.expiresOn,
      note: g.note,
      appliedMicros: applied[i]!,
    })),
    appliedMicros: total,
    netTotalMicros: net,
    summary: `with ${list} this scenario costs ${formatMicros(net)} over ${est.months} month${est.months === 1 ? '' : 's'} (list ${formatMicros(est.totalMicros)})`,
  };
}
