/**
 * The one place where the service catalog's machine names meet the terraform package's.
 * The catalog names a GCP N1 machine with an attached GPU `<machine>+<accelerator type>`
 * (`n1-standard-4+nvidia-tesla-t4`: what a user reads in GCP's price list), and the size says how
 * many; @ngsci/terraform keys it `<machine>+<short gpu>x<count>` (`n1-standard-4+t4x1`). Every
 * other name is the cloud's own and the same on both sides.
 */
import type { Offer, Size } from '@ngsci/contract';
import { INSTANCE_TYPES, type InstanceTypeInfo } from '@ngsci/terraform';

export interface ResolvedMachine {
  /** the key of INSTANCE_TYPES, as the stacks take it */
  key: string;
  info: InstanceTypeInfo;
}

/** The terraform package's machine for a catalog offer, or null when it has none. */
export function machineForOffer(
  offer: Pick<Offer, 'cloud' | 'instanceType'>,
  size: Pick<Size, 'gpu'>,
): ResolvedMachine | null {
  const direct = INSTANCE_TYPES[offer.instanceType];
  if (direct)
    return direct.cloud === offer.cloud ? { key: offer.instanceType, info: direct } : null;
  const attached = /^(n1-[a-z]+-\d+)\+([a-z0-9-]+)$/.exec(offer.instanceType);
  if (offer.cloud !== 'gcp' || !attached) return null;
  const [, machineType, accelerator] = attached;
  const count = size.gpu?.count ?? 0;
  for (const [key, info] of Object.entries(INSTANCE_TYPES)) {
    if (
      info.cloud === 'gcp' &&
      info.machineType === machineType &&
      info.accelerator?.type === accelerator &&
      info.accelerator?.count === count
    ) {
      return { key, info };
    }
  }
  return null;
}
