/**
 * The one place where the service catalog's machine names meet the terraform package's.
 * The catalog names a GCP N1 machine with an attached GPU `<machine>+<accelerator type>`
 * (`n1-standard-4+nvidia-tesla-t4`: what a user reads in GCP's price list), and the size says how
 * many; @ngsci/terraform keys it `<machine>+<short gpu>x<count>` (`n1-standard-4+t4x1`). Every
 * other name is the cloud's own and the same on both sides.
 *
 * The table searched is @ngsci/terraform's INSTANCE_TYPES unless the caller passes another: the
 * built-in types plus those of the operator's catalog file (`machineTable` in catalog-file.ts).
 */
import type { Offer, Size } from '@ngsci/contract';
import {
  INSTANCE_TYPES,
  machineTypeProblems,
  gcpCustomN1,
  gcpCustomN1Key,
  type InstanceTypeInfo,
} from '@ngsci/terraform';

export type MachineTable = Readonly<Record<string, InstanceTypeInfo>>;

export interface ResolvedMachine {
  /** the key of the table, as the stacks take it */
  key: string;
  info: InstanceTypeInfo;
}

/** The table's machine an offer names, retired or not; null when it names none of this cloud. */
export function findMachine(
  offer: Pick<Offer, 'cloud' | 'instanceType'>,
  size: Pick<Size, 'gpu'>,
  table: MachineTable = INSTANCE_TYPES,
): ResolvedMachine | null {
  const direct = table[offer.instanceType];
  if (direct)
    return direct.cloud === offer.cloud ? { key: offer.instanceType, info: direct } : null;
  if (offer.cloud !== 'gcp') return null;
  // an N1 custom machine (a pair's offer): `custom-<vCPUs>-<MiB>`, with `+<accelerator>` for GPUs
  const custom = /^custom-(\d+)-(\d+)(?:\+([a-z0-9-]+))?$/.exec(offer.instanceType);
  if (custom) {
    const [, vcpu, mib, accelerator] = custom;
    const info = gcpCustomN1(
      Number(vcpu),
      Number(mib),
      accelerator && size.gpu ? { type: accelerator, gpu: size.gpu } : undefined,
    );
    return { key: gcpCustomN1Key(info), info };
  }
  const attached = /^(n1-[a-z]+-\d+)\+([a-z0-9-]+)$/.exec(offer.instanceType);
  if (!attached) return null;
  const [, machineType, accelerator] = attached;
  const count = size.gpu?.count ?? 0;
  for (const [key, info] of Object.entries(table)) {
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

/**
 * Why no machine may be started for this offer and size, or null when one may: the name is not a
 * machine of the offer's cloud, the machine does not have the GPUs the size promises, or the type
 * is unavailable (retired by the cloud, or without a driver in the default image). Asked before
 * anything is applied, so none of these ever reaches terraform.
 */
export function machineProblem(
  offer: Pick<Offer, 'cloud' | 'instanceType'>,
  size: Pick<Size, 'gpu' | 'id'>,
  table: MachineTable = INSTANCE_TYPES,
): string | null {
  const found = findMachine(offer, size, table);
  if (!found) return `${offer.instanceType} is not a known ${offer.cloud} machine type`;
  if (found.info.unavailable) return `${offer.instanceType}: ${found.info.unavailable}`;
  const problems = /^custom-/.test(found.key) ? machineTypeProblems(found.info) : [];
  if (problems.length) return `${offer.instanceType}: ${problems.join('; ')}`;
  const has = found.info.gpu?.count ?? 0;
  const wanted = size.gpu?.count ?? 0;
  if (has !== wanted)
    return `${offer.instanceType} has ${has} GPU(s), size ${size.id} promises ${wanted}`;
  return null;
}

/** The terraform package's machine for a catalog offer, or null when none may be started. */
export function machineForOffer(
  offer: Pick<Offer, 'cloud' | 'instanceType'>,
  size: Pick<Size, 'gpu'> & Partial<Pick<Size, 'id'>>,
  table: MachineTable = INSTANCE_TYPES,
): ResolvedMachine | null {
  const found = findMachine(offer, size, table);
  if (!found || found.info.unavailable) return null;
  return found;
}
