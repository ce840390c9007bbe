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
import { describeProviderMirror } from './executor.js';
import { terraformPgConnString } from './pg-conn.js';
import { terraformPreflight } from './preflight.js';

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
  /** seconds terraform waits for a state lock another run holds (`-lock-timeout`) */
  NGSCI_TERRAFORM_LOCK_TIMEOUT: z.coerce.number().int().min(0).default(300),
  /** where terraform gets providers: an absolute directory or an https URL (checked at start) */
  NGSCI_TERRAFORM_PROVIDER_MIRROR: z.string().optional(),
  // the URLs and networks below are checked at start by preflight.ts, which lists every problem
  /** the hub's address as cloud machines reach it, scheme://host[:port] */
  NGSCI_VM_HUB_URL: z.string().optional(),
  /** override: hub-service's URL as machines reach it (default: NGSCI_VM_HUB_URL + the service prefix) */
  NGSCI_TERRAFORM_SERVICE_URL: z.string().optional(),
  NGSCI_TERRAFORM_HUB_CIDR: z.string().optional(),
  /** comma-separated IPv4 CIDRs machines may connect to (besides the hub); unset: anywhere */
  NGSCI_TERRAFORM_EGRESS_ALLOW: z.string().optional(),
  NGSCI_TERRAFORM_SINGLEUSER_PORT: z.coerce.number().int().min(1024).max(65535).default(8888),
  /** the single-user image of CPU sizes: docker:<image> or pip:<requirements> */
  NGSCI_TERRAFORM_IMAGE: z.string().optional(),
  /** the single-user image of GPU sizes (a CUDA build) */
  NGSCI_TERRAFORM_GPU_IMAGE: z.string().optional(),
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
  /** default `default` (applied after the checks, which must see whether it was set) */
  NGSCI_GCP_NETWORK: z.string().optional(),
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
    | 'NGSCI_VM_HUB_URL'
  >
> & { JUPYTERHUB_SERVICE_PREFIX?: string | undefined };

/** The URLs a cloud machine uses, all made from one setting (NGSCI_VM_HUB_URL). */
export interface VmUrls {
  /** the hub's origin as machines reach it, e.g. https://hub.example.org (no trailing slash) */
  hubOrigin: string;
  /** hub-service's base URL as machines reach it: the bootstrap exchange, the ngsci API, the GCP identity audience */
  serviceUrl: string;
}

/**
 * The machine-facing URLs, or null when the settings give none (a hub without the terraform
 * provisioner). The service URL is NGSCI_TERRAFORM_SERVICE_URL when set, else the hub's origin and
 * the service's prefix (the hub's proxy routes /services/<name>/ to the service); with only
 * NGSCI_TERRAFORM_SERVICE_URL (deprecated), the hub's origin is the service URL's.
 */
export function vmUrls(s: IdentitySettingsInput): VmUrls | null {
  const origin = (v: string | undefined): string | null => {
    try {
      return v ? new URL(v).origin : null;
    } catch {
      return null;
    }
  };
  const hubOrigin = origin(s.NGSCI_VM_HUB_URL) ?? origin(s.NGSCI_TERRAFORM_SERVICE_URL);
  if (!hubOrigin || hubOrigin === 'null') return null;
  const prefix = s.JUPYTERHUB_SERVICE_PREFIX ?? '/services/ngsci/';
  const serviceUrl = (s.NGSCI_TERRAFORM_SERVICE_URL ?? `${hubOrigin}${prefix}`).replace(/\/+$/, '');
  return { hubOrigin, serviceUrl };
}

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
    // bootstrap.sh asks for a token whose audience is the service URL it calls
    audience: vmUrls(s)?.serviceUrl,
  };
}

/**
 * Why the terraform provisioner must not start: a cloud it places machines on whose identity
 * proofs the service could not check (every one of those machines would be refused at boot).
 * Empty when all is well or when NGSCI_IDENTITY_REQUIRED=false.
 */
export function identityProblems(
  settings: Pick<TerraformSettings, 'placement'>,
  s: IdentitySettingsInput,
): string[] {
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
  /** seconds terraform waits for a state lock held by another run */
  lockTimeoutSeconds: number;
  /** an absolute directory or an https URL; unset: the public registries */
  providerMirror?: string;
  credentials: Record<string, string>;
  /** the hub's origin as machines reach it: their hub API and activity URLs are made from it */
  vmHubOrigin: string;
  /** hub-service's URL as machines reach it */
  serviceUrl: string;
  hubCidr: string;
  /** where machines may connect to besides the hub; undefined: anywhere */
  egressAllowCidrs?: string[];
  singleuserPort: number;
  /** the image of CPU sizes */
  image: SingleuserImage;
  /** the image of GPU sizes */
  gpuImage: SingleuserImage;
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
  /** what the start-up log should say about these settings (never a secret) */
  notices: { level: 'info' | 'warn'; message: string }[];
}

/** The settings cannot work: every problem, each naming its variable and never its value. */
export class TerraformSettingsError extends Error {
  override readonly name = 'TerraformSettingsError';
  readonly code = 'invalid_configuration';
  constructor(readonly problems: string[]) {
    super(`invalid terraform settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
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
    throw new TerraformSettingsError(
      r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    );
  return terraformSettings(r.data, {
    env,
    dataDir,
    databaseUrl: env.DATABASE_URL,
    servicePrefix: env.JUPYTERHUB_SERVICE_PREFIX,
  });
}

function image(v: string): SingleuserImage {
  return v.startsWith('pip:')
    ? { kind: 'pip', spec: v.slice(4).trim() }
    : { kind: 'docker', ref: v.slice(7) };
}

/**
 * Builds the settings from values already parsed (the service's config holds them) plus the
 * environment, from which provider credentials are picked by name. Runs every start-up check
 * first (preflight.ts) and throws one TerraformSettingsError that lists all the problems.
 */
export function terraformSettings(
  s: TerraformSettingsInput,
  where: {
    env: Record<string, string | undefined>;
    dataDir: string;
    databaseUrl?: string | undefined;
    /** JUPYTERHUB_SERVICE_PREFIX: where the hub's proxy routes the service */
    servicePrefix?: string | undefined;
    /** also require the identity certificate of every placed cloud (identityProblems) */
    checkIdentity?: boolean;
  },
): TerraformSettings {
  const { env, dataDir } = where;
  const { problems, warnings } = terraformPreflight(s);
  const notices: TerraformSettings['notices'] = warnings.map((message) => ({
    level: 'warn',
    message,
  }));

  const backend =
    s.NGSCI_TERRAFORM_STATE ??
    (s.NGSCI_TERRAFORM_PG_CONN_STR || where.databaseUrl ? 'pg' : 'local');
  let pgConnString: string | undefined;
  if (backend === 'pg') {
    if (s.NGSCI_TERRAFORM_PG_CONN_STR) pgConnString = s.NGSCI_TERRAFORM_PG_CONN_STR;
    else if (where.databaseUrl) {
      // the service's own URL, with the sslmode its client uses made explicit for lib/pq
      try {
        const derived = terraformPgConnString(where.databaseUrl);
        pgConnString = derived.connString;
        if (derived.note) notices.push({ level: 'warn', message: derived.note });
      } catch (err) {
        problems.push(
          `DATABASE_URL: ${err instanceof Error ? err.message : 'not usable for terraform state'}`,
        );
      }
    } else
      problems.push('NGSCI_TERRAFORM_STATE: pg needs NGSCI_TERRAFORM_PG_CONN_STR or DATABASE_URL');
  }
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
      network: s.NGSCI_GCP_NETWORK ?? 'default',
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
  if (where.checkIdentity) problems.push(...identityProblems({ placement }, s));
  const urls = vmUrls({ ...s, JUPYTERHUB_SERVICE_PREFIX: where.servicePrefix });
  if (
    problems.length ||
    !urls ||
    !s.NGSCI_TERRAFORM_HUB_CIDR ||
    !s.NGSCI_TERRAFORM_IMAGE ||
    !s.NGSCI_TERRAFORM_GPU_IMAGE
  )
    throw new TerraformSettingsError(problems);

  notices.push({
    level: 'info',
    message: describeProviderMirror(s.NGSCI_TERRAFORM_PROVIDER_MIRROR),
  });
  const workRoot = s.NGSCI_TERRAFORM_WORKDIR ?? `${dataDir}/terraform`;
  const credentials = Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] =>
        CREDENTIAL.test(e[0]) && typeof e[1] === 'string' && e[1] !== '',
    ),
  );
  return {
    binary: s.NGSCI_TERRAFORM_BINARY,
    workRoot,
    pluginCacheDir: s.NGSCI_TERRAFORM_PLUGIN_CACHE ?? `${workRoot}/plugin-cache`,
    backend,
    pgConnString,
    lockTimeoutSeconds: s.NGSCI_TERRAFORM_LOCK_TIMEOUT,
    providerMirror: s.NGSCI_TERRAFORM_PROVIDER_MIRROR,
    credentials,
    vmHubOrigin: urls.hubOrigin,
    serviceUrl: urls.serviceUrl,
    hubCidr: s.NGSCI_TERRAFORM_HUB_CIDR,
    egressAllowCidrs: s.NGSCI_TERRAFORM_EGRESS_ALLOW?.split(',').map((c) => c.trim()),
    singleuserPort: s.NGSCI_TERRAFORM_SINGLEUSER_PORT,
    image: image(s.NGSCI_TERRAFORM_IMAGE),
    gpuImage: image(s.NGSCI_TERRAFORM_GPU_IMAGE),
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
    notices,
  };
}
