/**
 * The terraform provisioner's settings, parsed once from the environment at the service's edge
 * (nothing else here reads process.env). Provider credentials are picked by name (AWS_*, GOOGLE_*,
 * CLOUDSDK_*, ARM_*) and handed to the executor explicitly; they are never logged.
 */
import { z } from 'zod';
import { inlineOrFile, settingFile, type IdentityTrust } from '../../bootstrap/identity.js';
import type {
  AwsPlacement,
  AzurePlacement,
  DatasetSpec,
  GcpPlacement,
  SingleuserImage,
} from '@ngsci/terraform';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const dataset = z
  .string()
  .regex(/^(disk|bucket):.+$/, 'disk:<ref> or bucket:<ref>')
  .transform((v): DatasetSpec => ({
    kind: v.startsWith('disk:') ? 'disk' : 'bucket',
    ref: v.slice(v.indexOf(':') + 1),
  }));

export const TerraformSettingsSchema = z.object({
  NGSCI_TERRAFORM_BINARY: z.string().default('terraform'),
  NGSCI_TERRAFORM_WORKDIR: z.string().optional(),
  NGSCI_TERRAFORM_PLUGIN_CACHE: z.string().optional(),
  NGSCI_TERRAFORM_STATE: z.enum(['pg', 'local']).optional(),
  NGSCI_TERRAFORM_PG_CONN_STR: z
    .string()
    .regex(/^postgres(ql)?:\/\//)
    .optional(),
  NGSCI_TERRAFORM_SERVICE_URL: z.url(),
  NGSCI_TERRAFORM_HUB_CIDR: z.string().regex(/\/\d{1,3}$/, 'a CIDR such as 10.0.0.0/24'),
  NGSCI_TERRAFORM_SINGLEUSER_PORT: z.coerce.number().int().min(1024).max(65535).default(8888),
  NGSCI_TERRAFORM_IMAGE: z
    .string()
    .regex(/^(docker|pip):.+$/, 'docker:<image> or pip:<requirements>')
    .default('docker:quay.io/jupyter/pytorch-notebook:latest')
    .transform((v): SingleuserImage =>
      v.startsWith('pip:')
        ? { kind: 'pip', spec: v.slice(4) }
        : { kind: 'docker', ref: v.slice(7) },
    ),
  NGSCI_TERRAFORM_HOME_GIB: z.coerce.number().int().min(1).max(16384).default(100),
  NGSCI_TERRAFORM_ALLOW_SSH: bool.default(false),
  NGSCI_TERRAFORM_SSH_KEYS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split('\n')
            .map((k) => k.trim())
            .filter(Boolean)
        : [],
    ),
  NGSCI_TERRAFORM_SSH_CIDR: z.string().optional(),
  NGSCI_TERRAFORM_ADDRESS: z.enum(['private', 'public']).default('private'),
  NGSCI_TERRAFORM_STEP_TIMEOUT: z.coerce.number().int().positive().default(1800),
  NGSCI_TERRAFORM_KILL_GRACE: z.coerce.number().int().positive().default(30),
  NGSCI_TERRAFORM_READY_TIMEOUT: z.coerce.number().int().positive().default(900),
  NGSCI_AWS_VPC_ID: z.string().optional(),
  NGSCI_AWS_SUBNET_ID: z.string().optional(),
  NGSCI_AWS_ZONE: z.string().optional(),
  NGSCI_AWS_AMI: z.string().optional(),
  NGSCI_AWS_DATASET: dataset.optional(),
  NGSCI_GCP_PROJECT: z.string().optional(),
  NGSCI_GCP_NETWORK: z.string().default('default'),
  NGSCI_GCP_SUBNETWORK: z.string().optional(),
  NGSCI_GCP_ZONE: z.string().optional(),
  NGSCI_GCP_IMAGE: z.string().optional(),
  NGSCI_GCP_SERVICE_ACCOUNT: z.string().optional(),
  NGSCI_GCP_DATASET: dataset.optional(),
  NGSCI_AZURE_RESOURCE_GROUP: z.string().optional(),
  NGSCI_AZURE_SUBNET_ID: z.string().optional(),
  NGSCI_AZURE_ZONE: z.string().optional(),
  NGSCI_AZURE_ADMIN_SSH_KEY: z.string().optional(),
  NGSCI_AZURE_DATASET: dataset.optional(),
  // what VMs must prove before the bootstrap exchange hands them secrets (bootstrap/identity.ts)
  /** development only: let VM-facing URLs (the service URL, the hub API URL) be plain http */
  NGSCI_ALLOW_HTTP_VM_URLS: bool.default(false),
  /** a bootstrap redemption must carry a verified cloud identity proof */
  NGSCI_IDENTITY_REQUIRED: bool.default(true),
  /** AWS's public certificate for instance identity PKCS7 signatures (PEM inline or a file path) */
  NGSCI_IDENTITY_AWS_CERT: z.string().optional(),
  /** Google's identity token keys: JWKS or oauth2/v1/certs JSON, or PEM (inline or a file path) */
  NGSCI_IDENTITY_GCP_CERTS: z.string().optional(),
  /** CA certificates the Azure attested-data signer must chain to (PEM inline or a file path) */
  NGSCI_IDENTITY_AZURE_CERT: z.string().optional(),
});

/** The identity settings of TerraformSettingsSchema (config.ts carries them too). */
export type IdentitySettingsInput = Partial<
  Pick<
    z.output<typeof TerraformSettingsSchema>,
    | 'NGSCI_IDENTITY_REQUIRED'
    | 'NGSCI_IDENTITY_AWS_CERT'
    | 'NGSCI_IDENTITY_GCP_CERTS'
    | 'NGSCI_IDENTITY_AZURE_CERT'
    | 'NGSCI_TERRAFORM_SERVICE_URL'
  >
>;

const TRUST_SETTING = {
  aws: 'NGSCI_IDENTITY_AWS_CERT',
  gcp: 'NGSCI_IDENTITY_GCP_CERTS',
  azure: 'NGSCI_IDENTITY_AZURE_CERT',
} as const;

/** How the service checks VM identity proofs, from the settings (files are read here, once). */
export function identityTrust(s: IdentitySettingsInput): IdentityTrust {
  return {
    aws: inlineOrFile(s.NGSCI_IDENTITY_AWS_CERT, 'NGSCI_IDENTITY_AWS_CERT'),
    gcp: inlineOrFile(s.NGSCI_IDENTITY_GCP_CERTS, 'NGSCI_IDENTITY_GCP_CERTS'),
    gcpFile: settingFile(s.NGSCI_IDENTITY_GCP_CERTS),
    azure: inlineOrFile(s.NGSCI_IDENTITY_AZURE_CERT, 'NGSCI_IDENTITY_AZURE_CERT'),
    audience: s.NGSCI_TERRAFORM_SERVICE_URL,
  };
}

/**
 * Why the terraform provisioner must not start: a cloud it places machines on whose identity
 * proofs the service could not check (every one of those machines would be refused at boot).
 * Empty when all is well or when NGSCI_IDENTITY_REQUIRED=false.
 */
export function identityProblems(settings: TerraformSettings, s: IdentitySettingsInput): string[] {
  if (s.NGSCI_IDENTITY_REQUIRED === false) return [];
  return (Object.keys(settings.placement) as (keyof typeof TRUST_SETTING)[])
    .filter((cloud) => !s[TRUST_SETTING[cloud]])
    .map(
      (cloud) =>
        `${TRUST_SETTING[cloud]}: required to place machines on ${cloud} (VMs prove their identity before they get secrets; see docs/clouds.md for where the certificate comes from)`,
    );
}

export interface TerraformSettings {
  binary: string;
  workRoot: string;
  pluginCacheDir: string;
  backend: 'pg' | 'local';
  pgConnString?: string;
  credentials: Record<string, string>;
  serviceUrl: string;
  hubCidr: string;
  singleuserPort: number;
  image: SingleuserImage;
  homeDiskGiB: number;
  allowSsh: boolean;
  sshAuthorizedKeys: string[];
  sshCidr?: string;
  addressKind: 'private' | 'public';
  stepTimeoutMs: number;
  killGraceMs: number;
  readyTimeoutMs: number;
  /** development only: VM-facing URLs may be http */
  allowHttpVmUrls: boolean;
  placement: {
    aws?: AwsPlacement & { zone?: string; dataset?: DatasetSpec };
    gcp?: GcpPlacement & { zone?: string; dataset?: DatasetSpec };
    azure?: AzurePlacement & { zone?: string; dataset?: DatasetSpec };
  };
}

const CREDENTIAL = /^(AWS_|GOOGLE_|CLOUDSDK_|ARM_)[A-Z0-9_]*$/;

export type TerraformSettingsInput = z.output<typeof TerraformSettingsSchema>;

/** Reads the settings; errors name the variable, never its value. */
export function loadTerraformSettings(
  env: Record<string, string | undefined>,
  dataDir = '.ngsci',
): TerraformSettings {
  const picked: Record<string, string> = {};
  for (const k of Object.keys(TerraformSettingsSchema.shape)) {
    const v = env[k];
    if (v !== undefined && v !== '') picked[k] = v;
  }
  const r = TerraformSettingsSchema.safeParse(picked);
  if (!r.success)
    throw new Error(
      `invalid terraform settings:\n${r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
    );
  return terraformSettings(r.data, { env, dataDir, databaseUrl: env.DATABASE_URL });
}

/**
 * Builds the settings from values already parsed (the service's config holds them) plus the
 * environment, from which provider credentials are picked by name.
 */
export function terraformSettings(
  s: TerraformSettingsInput,
  where: {
    env: Record<string, string | undefined>;
    dataDir: string;
    databaseUrl?: string | undefined;
  },
): TerraformSettings {
  const { env, dataDir } = where;
  const pgConnString = s.NGSCI_TERRAFORM_PG_CONN_STR ?? where.databaseUrl;
  const backend = s.NGSCI_TERRAFORM_STATE ?? (pgConnString ? 'pg' : 'local');
  if (backend === 'pg' && !pgConnString)
    throw new Error('NGSCI_TERRAFORM_STATE=pg needs NGSCI_TERRAFORM_PG_CONN_STR or DATABASE_URL');
  // the VM sends its identity proof and receives the server's hub token over this URL
  if (!s.NGSCI_ALLOW_HTTP_VM_URLS && !/^https:\/\//i.test(s.NGSCI_TERRAFORM_SERVICE_URL))
    throw new Error(
      'NGSCI_TERRAFORM_SERVICE_URL must be an https:// URL: machines fetch their secrets from it (NGSCI_ALLOW_HTTP_VM_URLS=true allows http, for development only)',
    );
  const workRoot = s.NGSCI_TERRAFORM_WORKDIR ?? `${dataDir}/terraform`;
  const credentials = Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] =>
        CREDENTIAL.test(e[0]) && typeof e[1] === 'string' && e[1] !== '',
    ),
  );
  const placement: TerraformSettings['placement'] = {};
  if (s.NGSCI_AWS_VPC_ID && s.NGSCI_AWS_SUBNET_ID) {
    placement.aws = {
      vpcId: s.NGSCI_AWS_VPC_ID,
      subnetId: s.NGSCI_AWS_SUBNET_ID,
      ami: s.NGSCI_AWS_AMI,
      zone: s.NGSCI_AWS_ZONE,
      dataset: s.NGSCI_AWS_DATASET,
    };
  }
  if (s.NGSCI_GCP_PROJECT) {
    placement.gcp = {
      project: s.NGSCI_GCP_PROJECT,
      network: s.NGSCI_GCP_NETWORK,
      subnetwork: s.NGSCI_GCP_SUBNETWORK,
      image: s.NGSCI_GCP_IMAGE,
      serviceAccountEmail: s.NGSCI_GCP_SERVICE_ACCOUNT,
      zone: s.NGSCI_GCP_ZONE,
      dataset: s.NGSCI_GCP_DATASET,
    };
  }
  if (s.NGSCI_AZURE_RESOURCE_GROUP && s.NGSCI_AZURE_SUBNET_ID && s.NGSCI_AZURE_ADMIN_SSH_KEY) {
    placement.azure = {
      resourceGroup: s.NGSCI_AZURE_RESOURCE_GROUP,
      subnetId: s.NGSCI_AZURE_SUBNET_ID,
      adminSshPublicKey: s.NGSCI_AZURE_ADMIN_SSH_KEY,
      zone: s.NGSCI_AZURE_ZONE,
      dataset: s.NGSCI_AZURE_DATASET,
    };
  }
  return {
    binary: s.NGSCI_TERRAFORM_BINARY,
    workRoot,
    pluginCacheDir: s.NGSCI_TERRAFORM_PLUGIN_CACHE ?? `${workRoot}/plugin-cache`,
    backend,
    pgConnString: backend === 'pg' ? pgConnString : undefined,
    credentials,
    serviceUrl: s.NGSCI_TERRAFORM_SERVICE_URL,
    hubCidr: s.NGSCI_TERRAFORM_HUB_CIDR,
    singleuserPort: s.NGSCI_TERRAFORM_SINGLEUSER_PORT,
    image: s.NGSCI_TERRAFORM_IMAGE,
    homeDiskGiB: s.NGSCI_TERRAFORM_HOME_GIB,
    allowSsh: s.NGSCI_TERRAFORM_ALLOW_SSH,
    sshAuthorizedKeys: s.NGSCI_TERRAFORM_SSH_KEYS,
    sshCidr: s.NGSCI_TERRAFORM_SSH_CIDR,
    addressKind: s.NGSCI_TERRAFORM_ADDRESS,
    stepTimeoutMs: s.NGSCI_TERRAFORM_STEP_TIMEOUT * 1000,
    killGraceMs: s.NGSCI_TERRAFORM_KILL_GRACE * 1000,
    readyTimeoutMs: s.NGSCI_TERRAFORM_READY_TIMEOUT * 1000,
    allowHttpVmUrls: s.NGSCI_ALLOW_HTTP_VM_URLS ?? false,
    placement,
  };
}
