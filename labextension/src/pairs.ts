/**
 * A pair of packages in the sidebar's resize (a CPU package with a GPU package, the size
 * `<cpu>.<gpu>`): what the chosen cloud offers for it, at which rate, what the machine gives
 * beyond the ask, or why it is unavailable; and whether the user's quota allows it (by id, or by
 * a wildcard `any.<gpu>` / `<cpu>.any`, as the service checks it).
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
  | { size: Size | null; available: false; reason: string };

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
): PairOffer {
  const id = pairSizeId(choice.cpu, choice.gpu);
  const size = catalog?.pairs?.find((s) => s.id === id) ?? null;
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
