/**
 * A pair of packages in the sidebar's resize (a CPU package with a GPU package, the size
 * `<cpu>.<gpu>`): what the chosen cloud offers for it, at which rate, what the machine gives
 * beyond the ask, or why it is unavailable; and whether the user's quota allows it (by id, or by
 * a wildcard `any.<gpu>` / `<cpu>.any`, as the service checks it) or forbids it (a forbid wins
 * over any allow, and over whether the cloud offers the pair).
 */
import type { Catalog, Size } from '@ngsci/contract';
import { pairSizeId, type CpuPackageId, type GpuPackageId } from '@ngsci/contract';

export type PairOffer =
  | {
      size: Size;
      available: true;
      rate: number;
      machine: string;
      beyondAsk: string | null;
      /** not allowed by the user's quota: the reason */
      forbidden: string | null;
    }
  | {
      size: Size | null;
      available: false;
      reason: string;
      /** the pair is forbidden by the user's quota (the reason says whose), not missing */
      forbidden?: true;
    };

/** A forbid of the user's quotas (Budget limits.forbiddenSizes): a size id or a wildcard. */
export interface ForbiddenEntry {
  entry: string;
  reason: string;
}

/** The forbid that names a pair, as hub-service's packages.ts `forbiddingEntry`; or null. */
export function pairForbidden(
  forbidden: readonly ForbiddenEntry[],
  id: string,
): ForbiddenEntry | null {
  const [cpu, gpu] = id.split('.');
  return (
    forbidden.find((f) => f.entry === id || f.entry === `any.${gpu}` || f.entry === `${cpu}.any`) ??
    null
  );
}

/** Whether allowed sizes (null: all) admit a pair, as hub-service's packages.ts `sizeAllowed`. */
export function pairAllowed(allowed: readonly string[] | null, id: string): boolean {
  if (!allowed || allowed.includes(id)) return true;
  const [cpu, gpu] = id.split('.');
  return allowed.includes(`any.${gpu}`) || allowed.includes(`${cpu}.any`);
}

export function pairOffer(
  catalog: Catalog | null,
  choice: { cpu: CpuPackageId; gpu: GpuPackageId },
  where: { cloud: string; spot: boolean },
  allowed: readonly string[] | null,
  forbidden: readonly ForbiddenEntry[] = [],
): PairOffer {
  const id = pairSizeId(choice.cpu, choice.gpu);
  const size = catalog?.pairs?.find((s) => s.id === id) ?? null;
  const denied = pairForbidden(forbidden, id);
  if (denied)
    return {
      size,
      available: false,
      forbidden: true,
      reason: `${denied.reason} (the quota forbids ${denied.entry})`,
    };
  if (!size) return { size: null, available: false, reason: 'this hub lists no such pair' };
  const offer = size.offers.find((o) => o.cloud === where.cloud);
  if (!offer || !offer.available)
    return { size, available: false, reason: offer?.note ?? `not offered on ${where.cloud}` };
  const rate = where.spot ? offer.spotMicrosPerHour : offer.onDemandMicrosPerHour;
  if (rate === null) return { size, available: false, reason: `no spot offer on ${where.cloud}` };
  return {
    size,
    available: true,
    rate,
    machine: offer.instanceType,
    beyondAsk: offer.fit?.beyondAsk ?? null,
    forbidden: pairAllowed(allowed, id)
      ? null
      : `Not allowed: not among your allowed sizes (${allowed?.join(', ') || 'none'})`,
  };
}
