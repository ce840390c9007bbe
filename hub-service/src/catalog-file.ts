/**
 * The operator's catalog file (NGSCI_CATALOG_FILE): regions per cloud, machine types the built-in
 * table lacks, and sizes with their offers, on top of the built-in catalog. Read and checked once at
 * start; every problem names the file, the place in the document and what is wrong, so a bad file
 * stops the service instead of a launch failing later. The format is documented in docs/catalog.md.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { SizeId, type Size } from '@ngsci/contract';
import { INSTANCE_TYPES, machineTypeProblems, type InstanceTypeInfo } from '@ngsci/terraform';
import { findMachine, type MachineTable } from './provisioners/terraform/machine-types.js';

export type CloudName = 'aws' | 'gcp' | 'azure';
export const CLOUD_NAMES: readonly CloudName[] = ['aws', 'gcp', 'azure'];

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date such as 2026-11-01')
  .refine((d) => !Number.isNaN(Date.parse(d)), 'not a calendar date');
const micros = z
  .number()
  .int('integer micro-dollars (1 USD = 1000000)')
  .nonnegative()
  .max(Number.MAX_SAFE_INTEGER);
const reason = z.string().trim().min(1, 'say why');

/** How each cloud spells a region; a misspelt one would only fail at the first apply. */
const REGION: Record<CloudName, RegExp> = {
  aws: /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/,
  gcp: /^[a-z]+-[a-z]+\d+$/,
  azure: /^[a-z][a-z0-9]+$/,
};
const region = (cloud: CloudName) =>
  z
    .string()
    .regex(
      REGION[cloud],
      `not a ${cloud} region name (such as ${{ aws: 'eu-west-1', gcp: 'europe-west4', azure: 'westeurope' }[cloud]})`,
    );

const MachineTypeSpec = z.strictObject({
  cloud: z.enum(['aws', 'gcp', 'azure']),
  /** the name the cloud API takes; defaults to the key (GCP N1 keys `<machine>+<gpu>x<n>` must say it) */
  machineType: z.string().min(1).optional(),
  family: z.string().min(1).optional(),
  vcpu: z.number().int().positive(),
  memoryGiB: z.number().positive(),
  gpu: z
    .strictObject({
      model: z.string().min(1),
      count: z.number().int().positive(),
      memoryGiB: z.number().positive(),
    })
    .nullable(),
  accelerator: z
    .strictObject({ type: z.string().min(1), count: z.number().int().positive() })
    .optional(),
  // the stacks' images and boot script are built for x86_64; an ARM type would boot nothing
  arch: z
    .literal('x86_64', { error: 'only x86_64 machines are supported (the images are x86_64)' })
    .default('x86_64'),
  unavailable: reason.optional(),
});

const OfferSpec = z.strictObject({
  /** a key of the machine types (built-in or this file's), or GCP's `<n1 machine>+<accelerator>` */
  instanceType: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  onDemandMicrosPerHour: micros.optional(),
  /** null: no spot offer */
  spotMicrosPerHour: micros.nullable().default(null),
  /** when this offer's price and availability were last checked; default the file's asOf */
  checkedOn: day.optional(),
  note: z.string().min(1).optional(),
  /** makes the offer unavailable, with this reason shown to users */
  unavailable: reason.optional(),
});

const SizeSpec = z.strictObject({
  id: SizeId,
  label: z.string().min(1).optional(),
  class: z.enum(['cpu', 'gpu']).optional(),
  vcpu: z.number().int().positive().optional(),
  memoryGiB: z.number().positive().optional(),
  gpu: z
    .strictObject({
      model: z.string().min(1),
      count: z.number().int().positive(),
      memoryGiB: z.number().positive(),
    })
    .nullable()
    .optional(),
  offers: z
    .strictObject({
      aws: OfferSpec.optional(),
      gcp: OfferSpec.optional(),
      azure: OfferSpec.optional(),
    })
    .default({}),
});

const Document = z.strictObject({
  /** the date the file's prices were checked; an offer's own checkedOn overrides it */
  asOf: day,
  /** the one region per cloud every offer there uses (the placement's network lives in it) */
  regions: z
    .strictObject({
      aws: region('aws').optional(),
      gcp: region('gcp').optional(),
      azure: region('azure').optional(),
    })
    .default({}),
  machineTypes: z.record(z.string(), MachineTypeSpec).default({}),
  /** new sizes, or built-in sizes whose fields and offers this file replaces */
  sizes: z.array(SizeSpec).default([]),
  /** built-in sizes this hub does not list */
  omitSizes: z.array(SizeId).default([]),
  /** false: list no CPU × GPU package pairs (`m.t4`), only the sizes; default true */
  pairs: z.boolean().optional(),
});

export type OfferSpec = z.output<typeof OfferSpec>;
export type SizeSpec = z.output<typeof SizeSpec>;
export type CatalogFile = z.output<typeof Document>;

/** What the built-in catalog holds that the file's checks refer to. */
export interface BuiltInView {
  sizes: ReadonlyMap<string, Pick<Size, 'gpu'>>;
}

export class CatalogFileError extends Error {
  override readonly name = 'CatalogFileError';
}

/** The machine types a launch may use: the built-in table and the file's, the file's winning. */
export function machineTable(file?: CatalogFile): MachineTable {
  if (!file || Object.keys(file.machineTypes).length === 0) return INSTANCE_TYPES;
  const extra = Object.fromEntries(
    Object.entries(file.machineTypes).map(([key, m]) => [key, toInstanceType(key, m)]),
  );
  return Object.freeze({ ...INSTANCE_TYPES, ...extra });
}

function toInstanceType(key: string, m: z.output<typeof MachineTypeSpec>): InstanceTypeInfo {
  return {
    cloud: m.cloud,
    family: m.family ?? key.split(/[._-]/)[0]!,
    machineType: m.machineType ?? key,
    vcpu: m.vcpu,
    memoryGiB: m.memoryGiB,
    gpu: m.gpu,
    ...(m.accelerator ? { accelerator: m.accelerator } : {}),
    ...(m.unavailable ? { unavailable: m.unavailable } : {}),
  };
}

/** The checks that need the whole document, and the built-in catalog, to answer. */
function checkDocument(doc: CatalogFile, builtIn: BuiltInView, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  for (const [key, m] of Object.entries(doc.machineTypes)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(key))
      issue(['machineTypes', key], 'a key is a machine type name: letters, digits, . _ + -');
    const problems = machineTypeProblems(toInstanceType(key, m));
    for (const p of problems) issue(['machineTypes', key], p);
    if (/\+/.test(key) && !m.machineType)
      issue(['machineTypes', key, 'machineType'], 'required when the key is not the cloud’s name');
  }
  const table = machineTable(doc);
  const seen = new Set<string>();
  doc.sizes.forEach((size, i) => {
    if (seen.has(size.id)) issue(['sizes', i, 'id'], `size ${size.id} is listed twice`);
    if (doc.omitSizes.includes(size.id))
      issue(['sizes', i, 'id'], `size ${size.id} is also in omitSizes`);
    seen.add(size.id);
    const base = builtIn.sizes.get(size.id);
    if (!base) {
      for (const field of ['label', 'class', 'vcpu', 'memoryGiB', 'gpu'] as const)
        if (size[field] === undefined)
          issue(['sizes', i, field], `required for a new size (${size.id} is not built in)`);
    }
    // undefined: a new size without its gpu, reported above; its offers' GPUs cannot be compared
    const gpu = size.gpu !== undefined ? size.gpu : base?.gpu;
    if (size.class === 'gpu' && size.gpu === null)
      issue(['sizes', i, 'gpu'], 'a gpu size needs its gpu');
    if (size.class === 'cpu' && size.gpu) issue(['sizes', i, 'gpu'], 'a cpu size has no gpu');
    for (const cloud of CLOUD_NAMES) {
      const offer = size.offers[cloud];
      if (!offer) continue;
      const at = ['sizes', i, 'offers', cloud];
      if (offer.region !== undefined && !REGION[cloud].test(offer.region))
        issue([...at, 'region'], `${offer.region} is not a ${cloud} region name`);
      if (offer.unavailable) continue;
      if (offer.instanceType === undefined)
        issue([...at, 'instanceType'], 'required unless the offer is unavailable');
      if (offer.onDemandMicrosPerHour === undefined)
        issue([...at, 'onDemandMicrosPerHour'], 'required unless the offer is unavailable');
      if (offer.instanceType === undefined || gpu === undefined) continue;
      const found = findMachine({ cloud, instanceType: offer.instanceType }, { gpu }, table);
      if (!found) {
        issue(
          [...at, 'instanceType'],
          `${offer.instanceType} is not a ${cloud} machine type ngsci knows: add it under machineTypes`,
        );
      } else if ((found.info.gpu?.count ?? 0) !== (gpu?.count ?? 0)) {
        issue(
          [...at, 'instanceType'],
          `${offer.instanceType} has ${found.info.gpu?.count ?? 0} GPU(s), size ${size.id} promises ${gpu?.count ?? 0}`,
        );
      }
    }
  });
  doc.omitSizes.forEach((id, i) => {
    if (!builtIn.sizes.has(id)) issue(['omitSizes', i], `${id} is not a built-in size`);
  });
}

const pathText = (path: readonly PropertyKey[]): string =>
  path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('') || '(the document)';

/** Checks a parsed document; the error lists every problem as `<file>: <path>: <problem>`. */
export function parseCatalogFile(value: unknown, file: string, builtIn: BuiltInView): CatalogFile {
  const result = Document.superRefine((doc, ctx) => checkDocument(doc, builtIn, ctx)).safeParse(
    value,
  );
  if (result.success) return result.data;
  throw new CatalogFileError(
    result.error.issues.map((i) => `${file}: ${pathText(i.path)}: ${i.message}`).join('\n'),
  );
}

/** Reads and checks the catalog file at `path` (JSON). */
export function loadCatalogFile(path: string, builtIn: BuiltInView): CatalogFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CatalogFileError(
      `${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CatalogFileError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseCatalogFile(value, path, builtIn);
}
