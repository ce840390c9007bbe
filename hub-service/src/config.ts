/**
 * Configuration, parsed once from the environment at the edge. Nothing else reads process.env.
 * JupyterHub passes the JUPYTERHUB_* variables to a managed service; NGSCI_* and DATABASE_URL come
 * from the service's `environment` in the hub config. See docs/configuration.md for each setting.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { Cloud } from '@ngsci/contract';
import { TerraformSettingsSchema } from './provisioners/terraform/settings.js';
import { WebhookAllowSetting } from './notify/webhook-guard.js';
import { NotifySettingsSchema } from './notify/settings.js';
import { SseSettingsSchema } from './instances/event-feed.js';
import { LimitSettingsSchema } from './limits/settings.js';
import { builtInView, type CatalogOptions } from './catalog.js';
import { CatalogFileError, loadCatalogFile } from './catalog-file.js';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const absolutePath = z
  .string()
  .refine(
    (p) => isAbsolute(p),
    "must be an absolute path such as /srv/ngsci (a relative one would be resolved again in each instance's working directory)",
  );

const seconds = (def: number) => z.coerce.number().positive().default(def);

const scopeList = z.string().transform((raw, ctx) => {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string'))
      return parsed as string[];
  } catch {
    // fall through to the issue below
  }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON list of scope strings' });
  return z.NEVER;
});

export const ConfigSchema = z.object({
  JUPYTERHUB_API_URL: z.url().default('http://127.0.0.1:8081/hub/api'),
  JUPYTERHUB_API_TOKEN: z.string().min(8),
  JUPYTERHUB_SERVICE_NAME: z.string().default('ngsci'),
  JUPYTERHUB_SERVICE_URL: z.url().default('http://127.0.0.1:10101'),
  JUPYTERHUB_SERVICE_PREFIX: z
    .string()
    .regex(/^\/.*\/$/, 'must start and end with /')
    .default('/services/ngsci/'),
  JUPYTERHUB_BASE_URL: z.string().default('/'),
  JUPYTERHUB_OAUTH_ACCESS_SCOPES: scopeList.optional(),
  // the service's own hub OAuth login (admin panel sign-in, docs/admin-panel.md); the hub sets these
  /** the service's OAuth client id (the hub names it service-<name>) */
  JUPYTERHUB_CLIENT_ID: z.string().min(1).optional(),
  /** where the hub sends the browser back with a code: <prefix>oauth_callback */
  JUPYTERHUB_OAUTH_CALLBACK_URL: z.string().min(1).optional(),
  /** the hub's public origin ('' when the browser reaches it on the page's own origin) */
  JUPYTERHUB_HOST: z.string().default(''),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  /**
   * where the service keeps its data (homes, run dir, PGlite): an absolute path. Unset: `.ngsci`
   * in the service's working directory, resolved once at start. A relative value is refused,
   * since instances run in other directories and would resolve it again under their own home.
   */
  NGSCI_DATA_DIR: absolutePath.default(() => resolve('.ngsci')),
  NGSCI_BRIDGE_SECRET: z.string().min(16, 'must be at least 16 characters'),
  /** the key of the secrets kept at rest; no fallback (npm start generates one) */
  NGSCI_SECRET_KEY: z
    .string()
    .min(
      16,
      'required, at least 16 characters (`openssl rand -base64 32`; npm start generates one)',
    ),
  NGSCI_PROVISIONER: z.enum(['local', 'terraform']).default('local'),
  NGSCI_DEFAULT_CLOUD: Cloud.default('local'),
  NGSCI_CLOUDS: z
    .string()
    .optional()
    .transform((s) =>
      s === undefined
        ? undefined
        : s
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean),
    )
    .pipe(z.array(Cloud).min(1).optional()),
  /**
   * a JSON file of regions, machine types and sizes on top of the built-in catalog
   * (docs/catalog.md); read and checked here, once, so a bad file stops the service at start
   */
  NGSCI_CATALOG_FILE: z
    .string()
    .transform((path, ctx) => {
      try {
        return { path, catalog: loadCatalogFile(path, builtInView()) };
      } catch (err) {
        if (!(err instanceof CatalogFileError)) throw err;
        for (const line of err.message.split('\n')) ctx.addIssue({ code: 'custom', message: line });
        return z.NEVER;
      }
    })
    .optional(),
  NGSCI_DEFAULT_PLAN: z.string().default('private'),
  NGSCI_ADMIN_SCOPE: z.string().default('custom:ngsci:admin'),
  NGSCI_AUTH_CACHE_SECONDS: z.coerce.number().min(0).max(60).default(30),
  /** how long an admin's sign-in to the service (its session cookie) lasts, in seconds */
  NGSCI_ADMIN_SESSION_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(3600),
  NGSCI_LOCAL_COMMAND: z.string().default('jupyterhub-singleuser'),
  NGSCI_LOCAL_ARGS: z.string().default(''),
  NGSCI_LOCAL_HOMES: absolutePath.optional(),
  NGSCI_LOCAL_STOP_ON_SHUTDOWN: bool.default(false),
  // local instances' isolation (provisioners/local-policy.ts, docs/security.md)
  /** users: each hub user's local server runs as its own system account (service as root); shared: one uid, one user */
  NGSCI_LOCAL_ISOLATION: z.enum(['users', 'shared']).default('shared'),
  /** prefix of the system accounts `users` isolation creates (ngsci-alice) */
  NGSCI_LOCAL_USER_PREFIX: z
    .string()
    .regex(
      /^[a-z_][a-z0-9_-]{0,15}$/,
      'must start with a lower-case letter or _, then lower-case letters, digits, _ or -, at most 16 characters',
    )
    .default('ngsci-'),
  /** shared isolation only: let any number of users share the one account (demos, `npm start`) */
  NGSCI_LOCAL_SHARED_DEMO: bool.default(false),
  /** list GPU sizes on `local` as simulations (a process without a GPU, billed at the size's price) */
  NGSCI_LOCAL_SIMULATE_GPUS: bool.default(false),
  NGSCI_AGENT_COMMAND: z.string().optional(),
  /** test hook: the `nvidia-smi` the agent beside each local instance runs (a recorded sequence) */
  NGSCI_AGENT_NVIDIA_SMI: absolutePath.optional(),
  /** seconds between the local agents' GPU readings (the agent's own default: 30) */
  NGSCI_AGENT_GPU_INTERVAL: z.coerce.number().int().min(1).max(3600).optional(),
  NGSCI_CULL_GPU_BUSY_PERCENT: z.coerce.number().min(1).max(100).default(10),
  /** a GPU below this utilisation (percent) is idle: GPU money wasted (contract/src/gpu-waste.ts) */
  NGSCI_GPU_IDLE_PERCENT: z.coerce.number().int().min(1).max(100).default(5),
  /** an agent's GPU sample stands for at most this many seconds before it (3 × its 30 s interval) */
  NGSCI_GPU_SAMPLE_SPAN: z.coerce.number().int().min(1).max(3600).default(90),
  NGSCI_LOCAL_DATASET_PATH: z.string().optional(),
  NGSCI_READY_TIMEOUT: seconds(120),
  NGSCI_RUNNING_POLL_INTERVAL: seconds(10),
  NGSCI_JOB_HEARTBEAT: seconds(5),
  NGSCI_JOB_STALE_AFTER: seconds(60),
  // notifications (docs/notifications.md)
  NGSCI_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional(),
  NGSCI_SMTP_FROM: z.string().min(3).default('ngsci <ngsci@localhost>'),
  NGSCI_NOTIFY_TIMEOUT: seconds(10),
  NGSCI_WEBHOOK_ALLOW: WebhookAllowSetting,
  ...NotifySettingsSchema.shape,
  // event streams per user (instances/event-feed.ts)
  ...SseSettingsSchema.shape,
  NGSCI_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
  /** a Server-Timing header on every answer: where its time went (timing.ts, docs/performance.md) */
  NGSCI_SERVER_TIMING: bool.default(false),
  /**
   * the read routes' cache of settled figures (routes/read-cache.ts): `on` (default) or `off`,
   * every read asking the database
   */
  NGSCI_READ_CACHE: z.enum(['on', 'off']).default('on'),
  // metering, budgets and idle culling (docs/configuration.md, docs/billing.md)
  NGSCI_METER_ENABLED: bool.default(true),
  NGSCI_METER_INTERVAL: seconds(15),
  NGSCI_METER_ACCRUE_EVERY: z.coerce.number().min(0).default(60),
  /** deprecated: NGSCI_RECONCILE_GRACE (read in its place when that is not set; a warning at start) */
  NGSCI_METER_ORPHAN_GRACE: z.coerce.number().min(0).optional(),
  NGSCI_BUDGET_GRACE: z.coerce.number().min(0).default(300),
  NGSCI_ACTIVITY_WINDOW: z.coerce.number().min(0).default(300),
  NGSCI_HOME_GB: z.coerce.number().int().min(0).default(10),
  NGSCI_HOME_GB_MONTH_MICROS: z.coerce.number().int().min(0).default(80_000),
  NGSCI_HOME_ACCRUE_EVERY: seconds(300),
  NGSCI_CULL_ENABLED: bool.default(true),
  NGSCI_CULL_TIMEOUT: z.coerce.number().int().min(0).default(3600),
  NGSCI_CULL_TIMEOUT_GPU: z.coerce.number().int().min(0).default(1800),
  NGSCI_CULL_EVERY: seconds(600),
  NGSCI_CULL_WARNING: z.coerce.number().int().min(0).default(300),
  NGSCI_CULL_MAX_AGE: z.coerce.number().int().min(0).default(0),
  /** what a spot instance does when the cloud takes it back, unless its launch says (instances/preemption.ts) */
  NGSCI_PREEMPTION_DEFAULT: z.enum(['on-demand', 'spot', 'stop']).default('spot'),
  // cloud provisioning (NGSCI_PROVISIONER=terraform): NGSCI_TERRAFORM_*, NGSCI_AWS_*, NGSCI_GCP_*, NGSCI_AZURE_*,
  // and what VMs must prove before they get secrets: NGSCI_IDENTITY_*, NGSCI_ALLOW_HTTP_VM_URLS
  ...TerraformSettingsSchema.partial().shape,
  // limits on abuse: body sizes, rate limits, the token cache (docs/limits.md)
  ...LimitSettingsSchema.shape,
  /** how long a cloud machine's single-use bootstrap token stays valid, in seconds */
  NGSCI_BOOTSTRAP_TTL: seconds(900),
  /** how long after its first redemption the same proven machine may fetch its environment again, in seconds */
  NGSCI_BOOTSTRAP_REPEAT_WINDOW: z.coerce.number().int().min(0).default(300),
  /** how often reconciliation looks for machines nobody uses or pays for, in seconds */
  NGSCI_RECONCILE_INTERVAL: seconds(300),
  /**
   * how long an instance whose hub server is gone may live before it is stopped (and its billing
   * closed), in seconds; also how long a start may go without a job before it counts as lost
   */
  NGSCI_RECONCILE_GRACE: z.coerce.number().min(0).default(120),
  // the instance agent (docs/security.md)
  /** a running instance whose agent has not reported for this long raises a security event */
  NGSCI_AGENT_SILENT_AFTER: seconds(120),
  /** also stop the server of a silent agent */
  NGSCI_AGENT_SILENT_STOP: bool.default(false),
  /** at most this many agent requests per instance per minute; 0: no limit */
  NGSCI_AGENT_RATE_PER_MINUTE: z.coerce.number().int().min(0).default(120),
  /** GPU samples older than this many seconds are pruned */
  NGSCI_AGENT_RETENTION: seconds(7 * 86_400),
  // the data-access audit (docs/audit.md)
  /** where the audit stream and security events are shipped: file:/path.jsonl or an http(s) URL */
  NGSCI_AUDIT_SINK: z
    .string()
    .refine(
      (v) =>
        /^file:\/{1,3}[^/]/.test(v) ||
        /^https:\/\/[^/]/.test(v) ||
        /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(\/|$)/.test(v),
      'must be file:/absolute/path.jsonl, an https:// URL, or http:// on this machine (127.0.0.1)',
    )
    .optional(),
  /** audit events older than this many seconds are archived, then deleted; 0: kept forever */
  NGSCI_AUDIT_RETENTION: z.coerce.number().int().min(0).default(0),
  /** the folder pruned audit events are archived to (JSONL); required with a retention */
  NGSCI_AUDIT_ARCHIVE_DIR: z.string().optional(),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Settings that were renamed: the old name → the one that replaced it. */
const RENAMED: Record<string, keyof Config> = {
  NGSCI_METER_ORPHAN_GRACE: 'NGSCI_RECONCILE_GRACE',
};

/** One line per deprecated setting in use, for the log at start. */
export function deprecations(config: Config): string[] {
  return Object.entries(RENAMED)
    .filter(([old]) => config[old as keyof Config] !== undefined)
    .map(
      ([old, current]) =>
        `${old} is deprecated: use ${current} (${old} is read only when ${current} is not set)`,
    );
}

export class ConfigError extends Error {}

/** Parses the environment; the error names every bad variable and why, never its value. */
/**
 * The environment with the secrets of NGSCI_SECRETS_FILE added: a JSON object of settings
 * (the hub writes it, 0600, because JupyterHub stores a service's `environment` in its own
 * database; spawner-bridge's configure_hub). The real environment wins over the file. A file that
 * others may read, or that is not an object of strings, is refused.
 */
export function withSecretsFile(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const path = env.NGSCI_SECRETS_FILE;
  if (!path) return env;
  const fail = (why: string): never => {
    throw new ConfigError(`invalid configuration:\n  NGSCI_SECRETS_FILE: ${why}`);
  };
  let text = '';
  try {
    if ((statSync(path).mode & 0o077) !== 0)
      fail(`${path} may be read by others: make it 0600 (it holds secrets)`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    fail(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail(`${path} is not JSON`);
  }
  const values = z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/), z.string()).safeParse(parsed);
  if (!values.success) return fail(`${path} must be a JSON object of setting names to strings`);
  return { ...values.data, ...env };
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  // old names still work where the new one is not set (deprecations() names them at start)
  for (const [old, current] of Object.entries(RENAMED))
    if (picked[old] !== undefined && picked[current] === undefined) picked[current] = picked[old];
  const result = ConfigSchema.safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  // the terraform settings (VM-facing URLs, CIDRs, placements) are checked by
  // provisioners/terraform/preflight.ts when the service starts, every problem at once
  if (result.data.NGSCI_AUDIT_RETENTION > 0 && !result.data.NGSCI_AUDIT_ARCHIVE_DIR)
    throw new ConfigError(
      'invalid configuration:\n  NGSCI_AUDIT_ARCHIVE_DIR: required when NGSCI_AUDIT_RETENTION is set (audit events are archived before they are deleted; see docs/audit.md)',
    );
  const config = result.data;
  // with terraform, a launch that names no cloud goes to the first configured one, not to `local`
  if (picked.NGSCI_DEFAULT_CLOUD === undefined)
    config.NGSCI_DEFAULT_CLOUD = enabledClouds(config)[0] ?? config.NGSCI_DEFAULT_CLOUD;
  const cloudProblems = offeredCloudProblems(config);
  if (cloudProblems.length)
    throw new ConfigError(
      `invalid configuration:\n${cloudProblems.map((p) => `  ${p}`).join('\n')}`,
    );
  return config;
}

const CLOUD_PLACEMENT = {
  aws: ['NGSCI_AWS_VPC_ID', 'NGSCI_AWS_SUBNET_ID'],
  gcp: ['NGSCI_GCP_PROJECT'],
  azure: ['NGSCI_AZURE_RESOURCE_GROUP', 'NGSCI_AZURE_SUBNET_ID', 'NGSCI_AZURE_ADMIN_SSH_KEY'],
} as const satisfies Record<Exclude<Cloud, 'local'>, readonly (keyof Config)[]>;
type CloudName = keyof typeof CLOUD_PLACEMENT;

/** The settings a cloud's placement still lacks (empty: the terraform provisioner can place there). */
function missingPlacement(config: Config, cloud: CloudName): string[] {
  return CLOUD_PLACEMENT[cloud].filter((k) => !config[k]);
}

/** Clouds with a complete placement, in the order aws, gcp, azure. */
function placedClouds(config: Config): CloudName[] {
  return (Object.keys(CLOUD_PLACEMENT) as CloudName[]).filter(
    (c) => missingPlacement(config, c).length === 0,
  );
}

/** Why NGSCI_CLOUDS / NGSCI_DEFAULT_CLOUD cannot be served, one line per problem. */
function offeredCloudProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.NGSCI_PROVISIONER === 'terraform') {
    for (const cloud of config.NGSCI_CLOUDS ?? []) {
      if (cloud === 'local') continue;
      const missing = missingPlacement(config, cloud);
      if (missing.length)
        problems.push(
          `NGSCI_CLOUDS: names ${cloud}, which has no placement (set ${missing.join(', ')}; see docs/clouds.md)`,
        );
    }
    if (!config.NGSCI_CLOUDS && placedClouds(config).length === 0)
      problems.push(
        'NGSCI_PROVISIONER: terraform places machines on no cloud: give at least one placement (NGSCI_AWS_VPC_ID and NGSCI_AWS_SUBNET_ID, NGSCI_GCP_PROJECT, or the NGSCI_AZURE_* settings; see docs/clouds.md)',
      );
  }
  const offered = problems.length ? [] : enabledClouds(config);
  if (offered.length && !offered.includes(config.NGSCI_DEFAULT_CLOUD))
    problems.push(
      `NGSCI_DEFAULT_CLOUD: ${config.NGSCI_DEFAULT_CLOUD} is not among the clouds this hub offers (${offered.join(', ')})`,
    );
  return problems;
}

/**
 * The clouds this hub provisions: NGSCI_CLOUDS, else what the provisioner can reach. With the
 * terraform provisioner that is the clouds with a complete placement; `local` (processes on the
 * hub's own machine) only when NGSCI_CLOUDS names it, since a cloud hub rarely means to run
 * researchers' servers beside itself.
 */
export function enabledClouds(config: Config): Cloud[] {
  if (config.NGSCI_CLOUDS) return config.NGSCI_CLOUDS;
  return config.NGSCI_PROVISIONER === 'terraform' ? placedClouds(config) : ['local'];
}

/** Why each cloud the hub does not offer is not offered, for its offers' notes. */
function unofferedReasons(config: Config): Partial<Record<Cloud, string>> {
  const offered = enabledClouds(config);
  const reasons: Partial<Record<Cloud, string>> = {};
  for (const cloud of ['local', 'aws', 'gcp', 'azure'] as const) {
    if (offered.includes(cloud)) continue;
    if (cloud === 'local') {
      reasons[cloud] = 'this hub does not offer local (NGSCI_CLOUDS)';
      continue;
    }
    if (config.NGSCI_PROVISIONER !== 'terraform') {
      reasons[cloud] = 'this hub runs no cloud machines (NGSCI_PROVISIONER=local)';
      continue;
    }
    const missing = missingPlacement(config, cloud);
    reasons[cloud] = missing.length
      ? `this hub is not set up to place machines on ${cloud} (no ${missing.join(', ')})`
      : `this hub does not offer ${cloud} (NGSCI_CLOUDS)`;
  }
  return reasons;
}

/** What the catalog is built from: offered clouds, why others are not, and the catalog file. */
export function catalogOptions(config: Config): CatalogOptions {
  return {
    clouds: enabledClouds(config),
    defaultCloud: config.NGSCI_DEFAULT_CLOUD,
    file: config.NGSCI_CATALOG_FILE?.catalog,
    unoffered: unofferedReasons(config),
    simulateGpus: config.NGSCI_LOCAL_SIMULATE_GPUS,
  };
}

/** The scopes that grant access to this service, from the hub or derived from the name. */
export function accessScopes(config: Config): string[] {
  return (
    config.JUPYTERHUB_OAUTH_ACCESS_SCOPES ?? [
      `access:services!service=${config.JUPYTERHUB_SERVICE_NAME}`,
    ]
  );
}
