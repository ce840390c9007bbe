/**
 * Cost estimates from a usage scenario (POST /api/v1/estimate, `ngsci estimate scenario.json`).
 * Quantities may be fractional (hours, GB); they are taken in thousandths and every product is
 * rounded half up to a whole micro-dollar, in integers.
 */
import type { Catalog, Estimate, EstimateScenario } from '@ngsci/contract';
import { EstimateScenario as Scenario, chosenSizeId } from '@ngsci/contract';
import { resolveOffer } from '../catalog.js';

/** hours in a billing month, as the clouds count them */
export const HOURS_PER_MONTH = 730;

const milli = (q: number): bigint => BigInt(Math.round(q * 1000));
/** unit µ$ × quantity, rounded half up */
const times = (unitMicros: number, quantity: number): number =>
  Number((BigInt(unitMicros) * milli(quantity) + 500n) / 1000n);

export function estimate(catalog: Catalog, input: EstimateScenario): Estimate {
  const s = Scenario.parse(input);
  const lines: Estimate['lines'] = [];
  for (const a of s.alwaysOn) {
    lines.push({
      kind: 'always_on',
      name: a.name,
      quantity: a.count * HOURS_PER_MONTH,
      unit: 'machine-hour',
      unitMicros: a.ratePerHourMicros,
      monthlyMicros: times(a.ratePerHourMicros, a.count * HOURS_PER_MONTH),
    });
  }
  for (const f of s.fixedMonthly) {
    lines.push({
      kind: 'fixed',
      name: f.name,
      quantity: 1,
      unit: 'month',
      unitMicros: f.monthlyMicros,
      monthlyMicros: f.monthlyMicros,
    });
  }
  for (const h of s.instanceHours) {
    let rate = h.ratePerHourMicros;
    // a pair (cpu, gpu) is priced as its size, `m.t4`
    const sizeId = chosenSizeId(h) ?? '';
    let name = `${sizeId}${h.spot ? ' spot' : ''}`;
    if (rate === undefined) {
      const { offer, ratePerHourMicros } = resolveOffer(catalog, {
        size: sizeId,
        cloud: h.cloud,
        spot: h.spot,
      });
      rate = ratePerHourMicros;
      name = `${sizeId} on ${offer.cloud} ${offer.region}${h.spot ? ' (spot)' : ''}`;
    } else {
      name = `${name} (custom rate)`;
    }
    lines.push({
      kind: 'instance_hours',
      name,
      quantity: h.hoursPerMonth,
      unit: 'hour',
      unitMicros: rate,
      monthlyMicros: times(rate, h.hoursPerMonth),
    });
  }
  for (const st of s.storage) {
    lines.push({
      kind: 'storage',
      name: st.class,
      quantity: st.gb,
      unit: 'GB-month',
      unitMicros: st.gbMonthMicros,
      monthlyMicros: times(st.gbMonthMicros, st.gb),
    });
  }
  const monthly = lines.reduce((sum, l) => sum + l.monthlyMicros, 0);
  return {
    asOf: catalog.asOf,
    months: s.months,
    lines,
    monthlyMicros: monthly,
    annualMicros: monthly * 12,
    totalMicros: monthly * s.months,
  };
}
