/**
 * What a stack needs to know about one instance (or one home disk), as plain TypeScript types, plus
 * the checks and the naming rules every cloud shares. Secrets that may appear here: only the
 * single-use bootstrap token. The hub API token and the Postgres connection string never do.
 */
import { createHash } from 'node:crypto';
import type { InstanceTypeInfo } from './instance-types.js';

export type Cloud = 'aws' | 'gcp' | 'azure';

export interface GpuSpec {
  model: string;
  count: number;
}

/** A read-only data set: a disk (AWS: snapshot id; GCP: disk self link or name; Azure: snapshot or disk id) or a bucket. */
export interface DatasetSpec {
  kind: 'disk' | 'bucket';
  /**
   * disk: AWS `snap-…` (a fresh volume is made from it per instance); GCP an existing disk, attached
   * READ_ONLY (many readers may share it); Azure a snapshot or managed disk id (copied per instance).
   * bucket: AWS bucket name; GCP bucket name; Azure the container's resource id
   * (`/subscriptions/…/storageAccounts/<account>/blobServices/default/containers/<container>`).
   */
  ref: string;
}

/**
 * Where Terraform keeps the state. `pg` never carries the connection string: Terraform's pg backend
 * reads it from the `PG_CONN_STR` environment variable, which the executor fills from its own config.
 */
export type BackendSpec =
  | { kind: 'pg'; connStringEnv: 'PG_CONN_STR'; schemaName?: string }
  | { kind: 'local'; path: string };

/** How the single-user server gets onto the machine. */
export type SingleuserImage = { kind: 'docker'; ref: string } | { kind: 'pip'; spec: string };

export interface AwsPlacement {
  vpcId: string;
  subnetId: string;
  /** AMI id; default: the Deep Learning Base AMI (GPU) or Ubuntu 22.04 (CPU), looked up at plan time */
  ami?: string;
}

export interface GcpPlacement {
  project: string;
  /** network name or self link */
  network: string;
  subnetwork?: string;
  /** boot image; default: Canonical's Ubuntu 22.04 accelerator image (GPU) or Ubuntu 22.04 (CPU) */
  image?: string;
  /** service account the VM runs as; `default` = the project's compute default account */
  serviceAccountEmail?: string;
}

export interface AzureImageReference {
  publisher: string;
  offer: string;
  sku: string;
  version: string;
}

export interface AzurePlacement {
  resourceGroup: string;
  subnetId: string;
  /** Azure insists on an admin key for Linux VMs without passwords; it is only usable when allowSsh is set */
  adminSshPublicKey: string;
  image?: AzureImageReference;
}

export interface Placement {
  aws?: AwsPlacement;
  gcp?: GcpPlacement;
  azure?: AzurePlacement;
}

/** The home disk outlives every instance: it has its own stack, keyed by user and server. */
export interface HomeOptions extends Placement {
  cloud: Cloud;
  region: string;
  /**
   * AWS: the subnet's availability zone, checked (the subnet decides it, so the home disk and the
   * machine always meet); GCP: the zone, default `<region>-a`; Azure: the zone number, default none.
   */
  zone?: string;
  user: string;
  server: string;
  homeDiskGiB: number;
  backend: BackendSpec;
}

export interface InstanceOptions extends HomeOptions {
  /** ngsci's instance id (new for every start) */
  instanceId: string;
  instanceType: string;
  gpu: GpuSpec | null;
  spot: boolean;
  /** the ngsci size id, e.g. gpu-t4 */
  size: string;
  /**
   * the machine type, when it is not one of the built-in INSTANCE_TYPES (the operator's catalog
   * file defines it); checked again when the stack is built
   */
  machine?: InstanceTypeInfo;
  /** id of the home disk, as the home stack's `home_disk_id` output reports it */
  homeDiskId: string;
  dataset: DatasetSpec | null;
  /** the only network that may reach the single-user port (and SSH when allowed) */
  hubCidr: string;
  singleuserPort: number;
  allowSsh: boolean;
  /** who may SSH in when allowSsh is set; default hubCidr */
  sshCidr?: string;
  sshAuthorizedKeys?: string[];
  image: SingleuserImage;
  /** hub-service's base URL as the instance reaches it, e.g. https://hub.example.org/services/ngsci */
  serviceUrl: string;
  /** single-use, short-lived; traded at boot for the server's environment. The only secret allowed here. */
  bootstrapToken: string;
  /** which address the hub uses to reach the machine; default private */
  addressKind?: 'private' | 'public';
  /** development only (NGSCI_ALLOW_HTTP_VM_URLS): let the machine bootstrap over plain http */
  allowHttp?: boolean;
  /**
   * Where the machine may open connections: these networks and hubCidr, nothing else (the clouds'
   * metadata and DNS services are reachable regardless). Undefined: anywhere.
   */
  egressAllowCidrs?: string[];
  /**
   * How long attaching or detaching a disk may take, in minutes (default 30). A resize detaches the
   * home disk from the old machine before the new one attaches it.
   */
  diskAttachTimeoutMinutes?: number;
}

/** Used when `diskAttachTimeoutMinutes` is not set: the azurerm default, well above AWS's 5. */
export const DEFAULT_DISK_ATTACH_TIMEOUT_MINUTES = 30;

export const TAG_MANAGED_BY = 'ngsci';

export class InvalidOptionsError extends Error {
  override readonly name = 'InvalidOptionsError';
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/**
 * Why `cidr` is not a network every cloud's firewall accepts, or null when it is. The AWS provider
 * refuses IPv6 in `cidr_blocks` and non-canonical networks (host bits set) at plan time, long after
 * the user pressed start, so the rule is the strictest of the three clouds: a canonical IPv4 network
 * in dotted decimal without leading zeros. `0.0.0.0/0` is refused because every caller uses a CIDR to
 * narrow who may connect (or where a machine may connect to); "everyone" is never what was meant.
 */
export function cidrProblem(cidr: string): string | null {
  if (typeof cidr !== 'string' || cidr.trim() === '')
    return 'a CIDR such as 10.0.0.0/24 is required';
  if (cidr.includes(':')) return `${cidr} is IPv6; give an IPv4 network such as 10.0.0.0/24`;
  const m = IPV4_CIDR.exec(cidr);
  if (!m) return `${cidr} is not an IPv4 CIDR such as 10.0.0.0/24`;
  const parts = m.slice(1).map((p) => ({ text: p, value: Number(p) }));
  if (parts.some((p) => p.text.length > 1 && p.text.startsWith('0')))
    return `${cidr} has leading zeros; write each number without them`;
  const octets = parts.slice(0, 4).map((p) => p.value);
  const prefix = parts[4]!.value;
  if (octets.some((o) => o > 255)) return `${cidr} has a number above 255`;
  if (prefix > 32) return `${cidr} has a prefix length above 32`;
  if (prefix === 0) return `${cidr} is the whole internet; name the networks meant`;
  const address = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (network !== address) {
    const canonical = [24, 16, 8, 0]
      .map((shift) => Math.floor(network / 2 ** shift) % 256)
      .join('.');
    return `${cidr} has host bits set; the network is ${canonical}/${prefix}`;
  }
  return null;
}

/** The GCP zone for both the home disk and the machine: one value, so they always meet. */
export function gcpZone(o: Pick<HomeOptions, 'region' | 'zone'>): string {
  return o.zone ?? `${o.region}-a`;
}

/** The zone in a GCP disk's self link or id (`projects/p/zones/<zone>/disks/d`), if it names one. */
export function gcpDiskZone(disk: string): string | undefined {
  return /(?:^|\/)zones\/([^/]+)\/disks\//.exec(disk)?.[1];
}

/**
 * A value Terraform reads as written. Terraform takes `${` and `%{` in every string of a
 * configuration as the start of a template, so a user called `${x}` would break the plan (or
 * worse, be evaluated); `$${` and `%%{` are its escapes for the literal text.
 */
export function terraformLiteral(value: string): string {
  return value.replace(/([$%])\{/g, '$1$1{');
}

/** At most `max` characters, counting what a person sees as one (code points, not UTF-16 units). */
function truncate(value: string, max: number): string {
  const chars = Array.from(value);
  return chars.length > max ? chars.slice(0, max).join('') : value;
}

/** Tag values for AWS EC2 and Azure: any character, at most 256 of them, escaped for Terraform. */
export function tagValues(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tags).map(([k, v]) => [k, terraformLiteral(truncate(v, 256))]),
  );
}

/** IAM tag values accept letters, digits, spaces and `_.:/=+-@` only; anything else becomes `_`. */
export function iamTagValues(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tags).map(([k, v]) => [
      k,
      truncate(v.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_'), 256),
    ]),
  );
}

/** EC2 security group descriptions allow ASCII letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*`. */
export function awsDescription(text: string): string {
  return terraformLiteral(text.replace(/[^a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]/g, '_').slice(0, 255));
}

export function validateHomeOptions(o: HomeOptions): void {
  const fail = (m: string): never => {
    throw new InvalidOptionsError(m);
  };
  if (!['aws', 'gcp', 'azure'].includes(o.cloud)) fail(`unknown cloud ${String(o.cloud)}`);
  if (!o.region) fail('region is required');
  if (!o.user || !o.server) fail('user and server are required');
  if (o.zone !== undefined) {
    // the zone is written into a Terraform expression (the AWS subnet check), so keep it plain
    const zoneShape = o.cloud === 'azure' ? /^[1-9]$/ : /^[a-z]{2,}-[a-z0-9-]+$/;
    if (!zoneShape.test(o.zone))
      fail(
        o.cloud === 'azure'
          ? `zone ${o.zone} is not an Azure zone number such as 1`
          : `zone ${o.zone} is not ${o.cloud === 'aws' ? 'an AWS zone such as us-east-1a' : 'a GCP zone such as us-central1-a'}`,
      );
  }
  if (!Number.isInteger(o.homeDiskGiB) || o.homeDiskGiB < 1 || o.homeDiskGiB > 16384)
    fail('homeDiskGiB must be an integer between 1 and 16384');
  if (!o[o.cloud]) fail(`placement for ${o.cloud} is required (options.${o.cloud})`);
  if (o.backend.kind === 'pg') {
    if (o.backend.connStringEnv !== 'PG_CONN_STR')
      fail('the pg backend reads its connection string from PG_CONN_STR only');
    if ('connStr' in o.backend || 'connString' in o.backend)
      fail('the pg backend must not carry a connection string; the executor sets PG_CONN_STR');
  } else if (!o.backend.path) fail('local backend needs a path');
}

export function validateInstanceOptions(o: InstanceOptions): void {
  validateHomeOptions(o);
  const fail = (m: string): never => {
    throw new InvalidOptionsError(m);
  };
  if (!o.instanceId) fail('instanceId is required');
  if (!o.instanceType) fail('instanceType is required');
  if (!o.homeDiskId) fail('homeDiskId is required (apply the home stack first)');
  const hubProblem = cidrProblem(o.hubCidr);
  if (hubProblem) fail(`hubCidr: ${hubProblem}`);
  const sshProblem = o.sshCidr === undefined ? null : cidrProblem(o.sshCidr);
  if (sshProblem) fail(`sshCidr: ${sshProblem}`);
  if (o.egressAllowCidrs !== undefined) {
    if (!Array.isArray(o.egressAllowCidrs)) fail('egressAllowCidrs must be a list of CIDRs');
    o.egressAllowCidrs.forEach((cidr, i) => {
      const problem = cidrProblem(cidr);
      if (problem) fail(`egressAllowCidrs[${i}]: ${problem}`);
    });
  }
  const attach = o.diskAttachTimeoutMinutes;
  if (attach !== undefined && (!Number.isInteger(attach) || attach < 1 || attach > 240))
    fail('diskAttachTimeoutMinutes must be an integer between 1 and 240');
  if (!Number.isInteger(o.singleuserPort) || o.singleuserPort < 1024 || o.singleuserPort > 65535)
    fail('singleuserPort must be 1024..65535');
  if (o.singleuserPort === 22) fail('singleuserPort must not be 22');
  if (o.gpu && (!Number.isInteger(o.gpu.count) || o.gpu.count < 1)) fail('gpu.count must be >= 1');
  if (!/^https?:\/\//.test(o.serviceUrl)) fail('serviceUrl must be an http(s) URL');
  if (!o.bootstrapToken) fail('bootstrapToken is required');
  if (o.image.kind === 'docker' ? !o.image.ref : !o.image.spec) fail('image is required');
}

/** A short stable hash, so names stay unique after the lossy slugging below. */
export function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 8);
}

/** Lower-case letters, digits and dashes; what GCP and Azure accept in resource names. */
export function slug(value: string, max = 20): string {
  const s = value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.slice(0, max).replace(/-+$/, '') || 'x';
}

/** GCP label values: lower-case letters, digits, `_` and `-`, at most 63 characters. */
export function labelValue(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_')
    .slice(0, 63);
}

/** The home disk's name, the same for every instance of one (user, server). */
export function homeDiskName(user: string, server: string): string {
  return `ngsci-home-${slug(user, 24)}-${slug(server, 16)}-${shortHash(user, server)}`;
}

/** The instance's machine name; starts with a letter as GCP wants. */
export function instanceName(instanceId: string): string {
  return `ngsci-${slug(instanceId, 40)}-${shortHash(instanceId)}`;
}

export function instanceTags(o: InstanceOptions): Record<string, string> {
  return {
    'managed-by': TAG_MANAGED_BY,
    user: o.user,
    server: o.server,
    size: o.size,
    'ngsci-instance': o.instanceId,
  };
}

export function homeTags(o: HomeOptions): Record<string, string> {
  return { 'managed-by': TAG_MANAGED_BY, user: o.user, server: o.server, role: 'home' };
}

export function gcpLabels(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, labelValue(v)]));
}

/** Postgres schema for one stack's state: one schema per stack keeps states apart. */
export function pgSchemaName(stackKey: string): string {
  const readable = stackKey
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 40)
    .replace(/_+$/, '');
  return `ngsci_tf_${readable}_${shortHash(stackKey)}`;
}
