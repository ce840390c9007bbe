/** Options and helpers the terraform tests share (not part of the build). */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cloud, GpuSpec, InstanceOptions } from './options.js';
import type { TerraformJson } from './synth.js';

export const BOOTSTRAP_TOKEN = 'ngsci-bootstrap-FAKE-0123456789abcdef';
export const HUB_CIDR = '10.20.0.0/24';

export type SizeClass = 'cpu' | 'gpu' | 'multi-gpu';

const TYPES: Record<Cloud, Record<SizeClass, [string, GpuSpec | null]>> = {
  aws: {
    cpu: ['m6i.xlarge', null],
    gpu: ['g4dn.xlarge', { model: 'T4', count: 1 }],
    'multi-gpu': ['g5.12xlarge', { model: 'A10G', count: 4 }],
  },
  gcp: {
    cpu: ['e2-standard-4', null],
    gpu: ['n1-standard-4+t4x1', { model: 'T4', count: 1 }],
    'multi-gpu': ['a2-highgpu-4g', { model: 'A100-40GB', count: 4 }],
  },
  azure: {
    cpu: ['Standard_D4s_v5', null],
    gpu: ['Standard_NC4as_T4_v3', { model: 'T4', count: 1 }],
    'multi-gpu': ['Standard_NC24s_v3', { model: 'V100', count: 4 }],
  },
};

const HOME_DISK: Record<Cloud, string> = {
  aws: 'vol-0123456789abcdef0',
  gcp: 'projects/ngsci-test/zones/us-central1-a/disks/ngsci-home-alice-default-1234abcd',
  azure:
    '/subscriptions/0000/resourceGroups/ngsci/providers/Microsoft.Compute/disks/ngsci-home-alice-default-1234abcd',
};

const REGION: Record<Cloud, string> = { aws: 'us-east-1', gcp: 'us-central1', azure: 'eastus' };

export function options(
  cloud: Cloud,
  size: SizeClass,
  extra: Partial<InstanceOptions> = {},
): InstanceOptions {
  const [instanceType, gpu] = TYPES[cloud][size];
  return {
    cloud,
    region: REGION[cloud],
    instanceId: `inst-${cloud}-${size}`,
    instanceType,
    gpu,
    spot: size !== 'cpu',
    user: 'alice',
    server: 'default',
    size: size === 'cpu' ? 'cpu-medium' : size === 'gpu' ? 'gpu-t4' : 'gpu-multi',
    homeDiskGiB: 100,
    homeDiskId: HOME_DISK[cloud],
    dataset: null,
    hubCidr: HUB_CIDR,
    singleuserPort: 8888,
    allowSsh: false,
    image: { kind: 'docker', ref: 'quay.io/jupyter/pytorch-notebook:2025-06-02' },
    serviceUrl: 'https://hub.example.org/services/ngsci',
    bootstrapToken: BOOTSTRAP_TOKEN,
    backend: { kind: 'local', path: 'terraform.tfstate' },
    aws: { vpcId: 'vpc-0abc', subnetId: 'subnet-0abc' },
    gcp: { project: 'ngsci-test', network: 'default' },
    azure: {
      resourceGroup: 'ngsci',
      subnetId:
        '/subscriptions/0000/resourceGroups/ngsci/providers/Microsoft.Network/virtualNetworks/ngsci/subnets/instances',
      adminSshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests ngsci-admin',
    },
    ...extra,
  };
}

type Resources = Record<string, Record<string, unknown>>;

/** The resources of one type, as a list (names don't matter to the tests). */
export function resources(json: TerraformJson, type: string): Record<string, unknown>[] {
  return Object.values((json.resource as Record<string, Resources> | undefined)?.[type] ?? {});
}

export function only(json: TerraformJson, type: string): Record<string, any> {
  const list = resources(json, type);
  if (list.length !== 1) throw new Error(`expected one ${type}, found ${list.length}`);
  return list[0] as Record<string, any>;
}

/** Every string in the document with its JSON path, base64 user-data decoded. */
export function strings(value: unknown, path = '$'): [string, string][] {
  if (typeof value === 'string') {
    const out: [string, string][] = [[path, value]];
    if (/custom_data$/.test(path))
      out.push([`${path}(base64)`, Buffer.from(value, 'base64').toString('utf8')]);
    return out;
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${path}[${i}]`));
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${path}.${k}`));
  return [];
}

const GZIPPED = /^\$\{base64gzip\("([\s\S]*)"\)\}$/;

/**
 * The text of an HCL string literal as Terraform reads it, references (`${...}`) kept as written:
 * what the machine gets once Terraform has filled them in.
 */
export function hclStringText(literal: string): string {
  let out = '';
  for (let i = 0; i < literal.length;) {
    if (literal.startsWith('$${', i) || literal.startsWith('%%{', i)) {
      out += literal.slice(i + 1, i + 3);
      i += 3;
    } else if (literal.startsWith('${', i)) {
      const end = literal.indexOf('}', i);
      out += literal.slice(i, end + 1);
      i = end + 1;
    } else if (literal[i] === '\\') {
      const c = literal[i + 1] as string;
      out += ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[c] ?? c;
      i += 2;
    } else out += literal[i++];
  }
  return out;
}

/** The user-data text of the single machine in a stack, whatever the cloud calls it. */
export function userData(json: TerraformJson): string {
  const texts = strings(json).map(([p, v]): [string, string] => {
    const gzipped = /user_data_base64$/.test(p) ? GZIPPED.exec(v) : null;
    return [p, gzipped ? hclStringText(gzipped[1] as string) : v];
  });
  const hit = texts.find(
    ([p, v]) =>
      /(user_data|user_data_base64|user-data|custom_data\(base64\))$/.test(p) &&
      v.startsWith('#cloud-config'),
  );
  if (!hit) throw new Error('no user-data found');
  return hit[1];
}

const here = dirname(fileURLToPath(import.meta.url));

/** Compare with `__snapshots__/<name>.json`; write it when missing or when UPDATE_SNAPSHOTS=1. */
export function matchSnapshot(
  name: string,
  value: unknown,
): { expected: unknown; actual: unknown } {
  const file = join(here, '__snapshots__', `${name}.json`);
  const actual = JSON.parse(JSON.stringify(value)) as unknown;
  if (!existsSync(file) || process.env.UPDATE_SNAPSHOTS === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(actual, null, 2) + '\n');
  }
  return { expected: JSON.parse(readFileSync(file, 'utf8')) as unknown, actual };
}

/** Provider versions change with every package bump; snapshots shouldn't. */
export function scrubVolatile(json: TerraformJson): TerraformJson {
  const copy = JSON.parse(JSON.stringify(json)) as TerraformJson;
  const rp = (copy.terraform?.required_providers ?? {}) as Record<string, { version?: string }>;
  for (const p of Object.values(rp)) if (p.version) p.version = '<version>';
  return copy;
}
