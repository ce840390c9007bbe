/**
 * What a base stack needs to know: the network, the hub host, the managed Postgres, the DNS
 * record, the data set bucket and who may connect to what. The defaults match the sizing that
 * `estimateBase` in @ngsci/contract prices (hub-service's base-estimate test keeps them equal).
 *
 * No secret is ever an input: the database password is created by the cloud (AWS: RDS keeps it in
 * Secrets Manager) or read at plan time from a secret manager the operator filled (GCP Secret
 * Manager, Azure Key Vault), so the synthesized JSON carries only a reference.
 */
import { cidrProblem, InvalidOptionsError, type BackendSpec, type Cloud } from '../options.js';

export interface BaseAws {
  /** two availability zones for the database's subnet group; default the region's first two */
  zones?: [string, string];
}

export interface BaseGcp {
  project: string;
  /** the Secret Manager secret (name or `projects/…/secrets/…`) holding the database password */
  dbPasswordSecret: string;
}

export interface BaseAzure {
  /** the resource group the stack creates and puts everything into */
  resourceGroup: string;
  /** the Key Vault (resource id) that holds the database password */
  keyVaultId: string;
  /** the Key Vault secret's name */
  dbPasswordSecretName: string;
  /** Azure wants an admin key on Linux VMs; SSH stays closed unless sshCidr is set */
  adminSshPublicKey: string;
}

export interface BaseOptions {
  cloud: Cloud;
  region: string;
  /** prefix of every resource name; lower-case letters, digits and dashes, default `ngsci` */
  name?: string;
  /** the network, an IPv4 /16 to /20; default 10.40.0.0/16. Subnets are /24s carved from it */
  networkCidr?: string;
  /** the hub's host name in the DNS zone, e.g. `hub` for hub.example.org */
  dnsHost: string;
  /** the DNS zone's domain, e.g. example.org */
  dnsZone: string;
  /**
   * true: the stack creates the zone (you then delegate the domain to its name servers);
   * false (default): the record goes into an existing zone of that name (GCP: `dnsZoneName`)
   */
  createDnsZone?: boolean;
  /** GCP: the managed zone's resource name when it exists already (default: the domain with dashes) */
  dnsZoneName?: string;
  hubMachineType?: string;
  hubDiskGiB?: number;
  dbTier?: string;
  dbStorageGiB?: number;
  dbHighAvailability?: boolean;
  /** Postgres major version, default 16 */
  dbVersion?: string;
  /** the read-only data set bucket's name (globally unique on AWS/GCP; 3-24 lower-case letters and digits on Azure); unset: no bucket */
  datasetBucket?: string;
  /** a NAT gateway for the instances' outbound traffic (image pulls); default true */
  natGateway?: boolean;
  /** who may reach the hub's HTTPS (443, and 80 for certificate challenges); default everyone */
  webCidrs?: string[];
  /**
   * SSH: unset (default) opens port 22 nowhere. Set: the hub accepts SSH from this network, and
   * instances accept SSH from the hub only (it is the jump host). `0.0.0.0/0` is refused.
   */
  sshCidr?: string;
  /** the single-user port instances listen on, as NGSCI_TERRAFORM_SINGLEUSER_PORT; default 8888 */
  singleuserPort?: number;
  backend: BackendSpec;
  aws?: BaseAws;
  gcp?: BaseGcp;
  azure?: BaseAzure;
}

/** An options object with every default filled in. */
export type ResolvedBaseOptions = Required<
  Omit<BaseOptions, 'sshCidr' | 'datasetBucket' | 'aws' | 'gcp' | 'azure' | 'dnsZoneName'>
> &
  Pick<BaseOptions, 'sshCidr' | 'datasetBucket' | 'aws' | 'gcp' | 'azure' | 'dnsZoneName'>;

const SIZING: Record<
  Cloud,
  { hubMachineType: string; dbTier: string; dbStorageGiB: number; minDbStorageGiB: number }
> = {
  aws: {
    hubMachineType: 't3.medium',
    dbTier: 'db.t4g.small',
    dbStorageGiB: 20,
    minDbStorageGiB: 20,
  },
  gcp: {
    hubMachineType: 'e2-medium',
    dbTier: 'db-custom-1-3840',
    dbStorageGiB: 20,
    minDbStorageGiB: 10,
  },
  azure: {
    hubMachineType: 'Standard_B2s',
    dbTier: 'B_Standard_B1ms',
    dbStorageGiB: 32,
    minDbStorageGiB: 32,
  },
};

/** The defaults a base stack uses when an option is unset, per cloud. */
export function baseDefaults(cloud: Cloud) {
  const s = SIZING[cloud];
  return {
    name: 'ngsci',
    networkCidr: '10.40.0.0/16',
    createDnsZone: false,
    hubMachineType: s.hubMachineType,
    hubDiskGiB: 30,
    dbTier: s.dbTier,
    dbStorageGiB: s.dbStorageGiB,
    dbHighAvailability: false,
    dbVersion: '16',
    natGateway: true,
    webCidrs: ['0.0.0.0/0'],
    singleuserPort: 8888,
  };
}

const NAME = /^[a-z][a-z0-9-]{0,14}[a-z0-9]$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PLAIN = /^[A-Za-z0-9._-]{1,64}$/;

/** Checks every input and fills the defaults; throws InvalidOptionsError naming the option. */
export function resolveBaseOptions(o: BaseOptions): ResolvedBaseOptions {
  const fail = (m: string): never => {
    throw new InvalidOptionsError(m);
  };
  if (!o || typeof o !== 'object') fail('base options are required');
  if (!['aws', 'gcp', 'azure'].includes(o.cloud)) fail(`unknown cloud ${String(o.cloud)}`);
  const d = baseDefaults(o.cloud);
  const r: ResolvedBaseOptions = {
    ...d,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as ResolvedBaseOptions;
  if (!r.region || !/^[a-z]{2,}[a-z0-9-]*$/.test(r.region))
    fail(`region ${String(r.region)} is not a region name such as us-east-1`);
  if (!NAME.test(r.name))
    fail('name: 2-16 lower-case letters, digits and dashes, starting with a letter');
  const net = cidrProblem(r.networkCidr);
  if (net) fail(`networkCidr: ${net}`);
  const prefix = Number(r.networkCidr.split('/')[1]);
  if (prefix < 16 || prefix > 20) fail('networkCidr: give a /16 to /20 network (subnets are /24s)');
  if (!DOMAIN.test(r.dnsZone))
    fail(`dnsZone ${String(r.dnsZone)} is not a domain such as example.org`);
  if (!HOST.test(r.dnsHost)) fail(`dnsHost ${String(r.dnsHost)} is not a host label such as hub`);
  if (r.dnsZoneName !== undefined && !/^[a-z][a-z0-9-]{0,62}$/.test(r.dnsZoneName))
    fail('dnsZoneName: a managed zone name, lower-case letters, digits and dashes');
  for (const k of ['hubMachineType', 'dbTier', 'dbVersion'] as const)
    if (!PLAIN.test(r[k])) fail(`${k}: letters, digits, dots, dashes and underscores only`);
  if (!/^\d{2}$/.test(r.dbVersion)) fail('dbVersion: a Postgres major version such as 16');
  if (!Number.isInteger(r.hubDiskGiB) || r.hubDiskGiB < 10 || r.hubDiskGiB > 16384)
    fail('hubDiskGiB must be an integer between 10 and 16384');
  const minDb = SIZING[o.cloud].minDbStorageGiB;
  if (!Number.isInteger(r.dbStorageGiB) || r.dbStorageGiB < minDb || r.dbStorageGiB > 16384)
    fail(`dbStorageGiB must be an integer between ${minDb} and 16384 on ${o.cloud}`);
  for (const k of ['createDnsZone', 'dbHighAvailability', 'natGateway'] as const)
    if (typeof r[k] !== 'boolean') fail(`${k} must be true or false`);
  if (r.datasetBucket !== undefined) {
    const shape = o.cloud === 'azure' ? /^[a-z0-9]{3,24}$/ : /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
    if (!shape.test(r.datasetBucket))
      fail(
        o.cloud === 'azure'
          ? 'datasetBucket: the storage account name, 3-24 lower-case letters and digits'
          : 'datasetBucket: 3-63 lower-case letters, digits, dots and dashes',
      );
  }
  if (!Array.isArray(r.webCidrs) || r.webCidrs.length === 0)
    fail('webCidrs: at least one network (0.0.0.0/0 for everyone)');
  r.webCidrs.forEach((cidr, i) => {
    const problem = cidr === '0.0.0.0/0' ? null : cidrProblem(cidr);
    if (problem) fail(`webCidrs[${i}]: ${problem}`);
  });
  if (r.sshCidr !== undefined) {
    // cidrProblem refuses 0.0.0.0/0: SSH from everyone is never what was meant
    const problem = cidrProblem(r.sshCidr);
    if (problem) fail(`sshCidr: ${problem}`);
  }
  if (!Number.isInteger(r.singleuserPort) || r.singleuserPort < 1024 || r.singleuserPort > 65535)
    fail('singleuserPort must be 1024..65535');
  if (r.backend?.kind === 'pg') {
    if (r.backend.connStringEnv !== 'PG_CONN_STR')
      fail('the pg backend reads its connection string from PG_CONN_STR only');
  } else if (r.backend?.kind !== 'local' || !r.backend.path)
    fail('backend: { kind: "local", path } or { kind: "pg", connStringEnv: "PG_CONN_STR" }');

  if (o.cloud === 'aws' && r.aws?.zones !== undefined) {
    const z = r.aws.zones;
    if (!Array.isArray(z) || z.length !== 2 || z[0] === z[1])
      fail('aws.zones: two different availability zones');
    z.forEach((zone) => {
      if (!/^[a-z]{2}-[a-z]+-\d[a-z]$/.test(zone))
        fail(`aws.zones: ${zone} is not an availability zone such as us-east-1a`);
      if (!zone.startsWith(r.region)) fail(`aws.zones: ${zone} is not in ${r.region}`);
    });
  }
  if (o.cloud === 'gcp') {
    const g = r.gcp ?? fail('gcp: { project, dbPasswordSecret } is required');
    if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(g.project))
      fail('gcp.project: a project id such as my-lab-123');
    if (!/^(projects\/[a-z0-9-]+\/secrets\/)?[A-Za-z0-9_-]{1,255}$/.test(g.dbPasswordSecret ?? ''))
      fail('gcp.dbPasswordSecret: a Secret Manager secret id such as ngsci-db-password');
  }
  if (o.cloud === 'azure') {
    const a =
      r.azure ??
      fail(
        'azure: { resourceGroup, keyVaultId, dbPasswordSecretName, adminSshPublicKey } is required',
      );
    if (!/^[A-Za-z0-9._()-]{1,90}$/.test(a.resourceGroup) || a.resourceGroup.endsWith('.'))
      fail('azure.resourceGroup: 1-90 letters, digits, dots, dashes, underscores and parentheses');
    if (
      !/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[A-Za-z0-9-]{3,24}$/i.test(
        a.keyVaultId ?? '',
      )
    )
      fail(
        'azure.keyVaultId: the Key Vault resource id (/subscriptions/…/providers/Microsoft.KeyVault/vaults/<name>)',
      );
    if (!/^[A-Za-z0-9-]{1,127}$/.test(a.dbPasswordSecretName ?? ''))
      fail('azure.dbPasswordSecretName: a Key Vault secret name (letters, digits, dashes)');
    if (
      !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/.test(
        a.adminSshPublicKey ?? '',
      )
    )
      fail('azure.adminSshPublicKey: an OpenSSH public key (ssh-ed25519 AAAA…)');
  }
  return r;
}

/** The n-th /24 inside the network (the network is /16../20, checked above). */
export function subnet24(networkCidr: string, n: number): string {
  const [addr, bits] = networkCidr.split('/') as [string, string];
  const count = 2 ** (24 - Number(bits));
  if (n < 0 || n >= count) throw new InvalidOptionsError(`networkCidr has no room for subnet ${n}`);
  const base = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0) + n * 256;
  return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.')}/24`;
}

/**
 * The subnets every cloud carves: the hub's (public on AWS, where the NAT gateway sits too), the
 * instances' (private: no public address, outbound through NAT), and the database's (private).
 * A /20 network has 16 /24s; these use 0..5.
 */
export function baseSubnets(networkCidr: string) {
  return {
    hub: [subnet24(networkCidr, 0), subnet24(networkCidr, 1)] as const,
    instances: subnet24(networkCidr, 2),
    db: [subnet24(networkCidr, 4), subnet24(networkCidr, 5)] as const,
  };
}

/** The hub's fully qualified name, e.g. hub.example.org. */
export const hubFqdn = (o: Pick<BaseOptions, 'dnsHost' | 'dnsZone'>): string =>
  `${o.dnsHost}.${o.dnsZone}`;

/** What the instance stacks' settings become once the base stack is applied (docs/clouds.md). */
export const BASE_OUTPUTS = [
  'hub_fqdn',
  'hub_public_ip',
  'hub_cidr',
  'instance_subnet',
  'network',
  'database_host',
  'database_password_ref',
  'dataset',
  'terraform_identity',
] as const;
