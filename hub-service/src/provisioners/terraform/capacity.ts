/**
 * Tells a cloud's "no capacity right now" apart from every other failed apply, from the error
 * codes each cloud puts into the provider's diagnostic. Only this kind of failure may be retried
 * on other terms (spot → on-demand): a quota, a permission or a bad configuration fails the same
 * way on demand, and retrying it would only create and destroy resources for nothing.
 */
import type { Cloud } from '@ngsci/terraform';
import type { TerraformDiagnostic } from './executor.js';

/** A capacity failure: the cloud's own code for it, and the provider's words (one line). */
export interface CapacityFailure {
  code: string;
  summary: string;
}

/**
 * Per cloud, the codes (or, where a cloud has no code of its own, its words) that mean the
 * machine type has no capacity where and how it was asked for. Sources: EC2's API error codes and
 * spot request status codes; Compute Engine's resource errors (ZONE_RESOURCE_POOL_EXHAUSTED with
 * or without details, its STOCKOUT state); Azure's allocation and spot error codes.
 */
const CAPACITY_CODES: Record<Cloud, readonly (string | RegExp)[]> = {
  aws: [
    'InsufficientInstanceCapacity',
    'InsufficientCapacity',
    'UnfulfillableCapacity',
    'SpotMaxPriceTooLow',
    'MaxSpotInstanceCountExceeded',
    'capacity-not-available',
    /there is no spot capacity available/i,
  ],
  gcp: [
    'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
    'ZONE_RESOURCE_POOL_EXHAUSTED',
    'STOCKOUT',
    /does not have enough resources available to fulfill the request/i,
  ],
  azure: [
    'SkuNotAvailable',
    'ZonalAllocationFailed',
    'OverconstrainedZonalAllocationRequest',
    'OverconstrainedAllocationRequest',
    'AllocationFailed',
  ],
};

function matches(text: string, code: string | RegExp): string | null {
  if (typeof code !== 'string') return code.exec(text)?.[0] ?? null;
  // whole words only: `AllocationFailed` must not be found inside `ZonalAllocationFailed`
  return new RegExp(`(^|[^A-Za-z_-])${code}($|[^A-Za-z_-])`).test(text) ? code : null;
}

/**
 * The capacity failure among a failed apply's error diagnostics, or null when the apply failed
 * for another reason. The most specific code of the cloud wins (the list's order).
 */
export function capacityFailure(
  cloud: Cloud,
  diagnostics: readonly TerraformDiagnostic[],
): CapacityFailure | null {
  for (const d of diagnostics) {
    if (d.severity !== 'error') continue;
    const text = `${d.summary}\n${d.detail}`;
    for (const code of CAPACITY_CODES[cloud]) {
      const found = matches(text, code);
      if (found) return { code: found, summary: (d.summary.split('\n')[0] ?? '').slice(0, 300) };
    }
  }
  return null;
}
