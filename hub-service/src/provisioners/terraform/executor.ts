/**
 * Runs terraform (or tofu) in one instance's workdir: init, plan, apply, output, destroy. Each
 * `-json` line of Terraform's machine-readable UI becomes a progress event; error diagnostics
 * become a typed failure. The child gets a sanitized environment built from an allow-list, never
 * the service's own; every message that leaves this module has known secrets scrubbed. Steps have
 * a timeout, and a stop happens in two stages: SIGINT (Terraform's graceful stop, which saves
 * state) and SIGKILL after a grace period (the running and stopping are process.ts's; this
 * module reads what terraform says). State is never deleted, on success or on failure.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import postgres from 'postgres';
import { z } from 'zod';
import { runProcess, type ProcessResult } from './process.js';

/** `state` is `terraform state list`/`state rm`, run before an Azure instance stack's destroy. */
export type TerraformStep = 'init' | 'plan' | 'apply' | 'output' | 'state' | 'destroy';

export interface ExecutorProgress {
  /** 0..100, never decreasing within one run */
  progress: number;
  message: string;
}

export type TerraformBackendKind = 'pg' | 'local';

export interface TerraformExecutorConfig {
  /** `terraform`, `tofu`, or an absolute path to either */
  binary: string;
  /** TF_PLUGIN_CACHE_DIR: providers are downloaded once, not once per instance */
  pluginCacheDir: string;
  /** where state lives; `pg` needs pgConnString, which reaches the child as PG_CONN_STR only */
  backend: TerraformBackendKind;
  pgConnString?: string;
  /**
   * Provider credentials and Terraform settings, passed explicitly: names must start with AWS_,
   * GOOGLE_, CLOUDSDK_, ARM_ or TF_. Values are secrets: never logged, scrubbed from messages.
   */
  credentials?: Record<string, string>;
  /** PATH and HOME are taken from here (default process.env); nothing else is. */
  baseEnv?: Record<string, string | undefined>;
  /** further variables the child gets as they are (proxies, a test double's switches) */
  extraEnv?: Record<string, string>;
  /** per-step timeouts in ms; default 30 min for apply/destroy, 10 min for the others */
  timeoutsMs?: Partial<Record<TerraformStep, number>>;
  /** how long terraform may take to stop after SIGINT before it gets SIGKILL; default 30 s */
  killGraceMs?: number;
  /**
   * How long terraform waits for a state lock held by another run (`-lock-timeout`), and how long
   * a step that lost the pg backend's workspace-creation lock (which ignores `-lock-timeout`) is
   * retried; default 300 s.
   */
  lockTimeoutSeconds?: number;
  /**
   * Where terraform gets providers when the registries are out of reach: an absolute directory
   * (a `filesystem_mirror`, filled with `terraform providers mirror`) or an https URL (a
   * `network_mirror`). Unset: the public registries.
   */
  providerMirror?: string;
  /** scrubbed, value-free log lines (step, level, message) */
  log?: (entry: { step: TerraformStep; level: 'info' | 'warn' | 'error'; message: string }) => void;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (event: ExecutorProgress) => void;
  /** more values to scrub from messages (the bootstrap token, the hub token...) */
  secrets?: string[];
}

export interface DownOptions extends RunOptions {
  /**
   * After a successful destroy with the pg backend, drop the stack's state schema. For instance
   * stacks, which get a new schema per start; never for a home stack, whose state outlives it.
   */
  dropStateSchema?: boolean;
}

export interface TerraformDiagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail: string;
  address?: string;
}

export type TerraformFailure =
  'terraform_failed' | 'timeout' | 'cancelled' | 'binary_not_found' | 'bad_output';

export class TerraformError extends Error {
  override readonly name = 'TerraformError';
  constructor(
    readonly code: TerraformFailure,
    readonly step: TerraformStep,
    message: string,
    readonly diagnostics: TerraformDiagnostic[] = [],
    readonly exitCode: number | null = null,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    super(message);
  }
}

/** `terraform output -json`: `{ name: { sensitive, type, value } }` */
export const TerraformOutputs = z.record(
  z.string(),
  z.object({ sensitive: z.boolean(), type: z.unknown(), value: z.unknown() }),
);
export type TerraformOutputs = z.infer<typeof TerraformOutputs>;

/** The machine-readable UI lines this module reads; other fields and types are ignored. */
const UiLine = z
  .object({
    '@level': z.string().optional(),
    '@message': z.string().optional(),
    '@module': z.string().optional(),
    '@timestamp': z.string().optional(),
    type: z.string(),
    changes: z
      .object({
        add: z.number(),
        change: z.number(),
        remove: z.number(),
        import: z.number().optional(),
      })
      .partial()
      .optional(),
    diagnostic: z
      .object({
        severity: z.string(),
        summary: z.string(),
        detail: z.string().optional(),
        address: z.string().optional(),
      })
      .optional(),
    hook: z
      .object({
        resource: z.object({ addr: z.string() }).partial().optional(),
        action: z.string().optional(),
      })
      .partial()
      .optional(),
    change: z.object({ action: z.string().optional() }).partial().optional(),
  })
  .loose();
type UiLine = z.infer<typeof UiLine>;

const CREDENTIAL_NAME = /^(AWS_|GOOGLE_|CLOUDSDK_|ARM_|TF_)[A-Z0-9_]*$/;
const RESERVED = new Set([
  'PATH',
  'HOME',
  'PG_CONN_STR',
  'TF_PLUGIN_CACHE_DIR',
  'TF_CLI_CONFIG_FILE',
  'TF_IN_AUTOMATION',
  'TF_INPUT',
]);
const DEFAULT_TIMEOUTS: Record<TerraformStep, number> = {
  init: 10 * 60_000,
  plan: 10 * 60_000,
  apply: 30 * 60_000,
  output: 2 * 60_000,
  state: 10 * 60_000,
  destroy: 30 * 60_000,
};

export const PLAN_FILE = 'plan.tfplan';
/** The CLI configuration the executor writes into each workdir (TF_CLI_CONFIG_FILE). */
export const CLI_CONFIG_FILE = 'ngsci.tfrc';
const DEFAULT_LOCK_TIMEOUT_SECONDS = 300;
/**
 * A lock held by another terraform run. Terraform's pg backend says "Already locked for workspace
 * creation" (or "Cannot lock workspace; already locked for workspace creation") when two first
 * runs meet on its database-wide creation lock, and "Error acquiring the state lock" when a
 * `-lock-timeout` ran out.
 */
const LOCK_ERROR = /already locked|Error acquiring the state lock/i;
/**
 * Resource types a destroy forgets (`terraform state rm`) instead of deleting. Deleting an azurerm
 * data disk attachment updates the running VM without the disk: a hot detach, with the guest still
 * writing to it. Forgotten, the disks stay attached until the VM itself is deleted; Azure then
 * detaches them, never deletes them (a data disk's delete option defaults to Detach, and the
 * attachment sets none). Only instance stacks declare these: home stacks hold the disk itself.
 */
const FORGET_BEFORE_DESTROY = ['azurerm_virtual_machine_data_disk_attachment'];
/** Schemas never dropped: Postgres's own, and the pg backend's default, shared by every stack using it. */
const KEPT_SCHEMAS = new Set(['public', 'terraform_remote_state', 'information_schema']);

/**
 * The provider mirror in one line for the start-up log; throws on a value that is neither an
 * absolute directory nor an https URL.
 */
export function describeProviderMirror(mirror: string | undefined): string {
  const m = providerMirrorKind(mirror);
  if (!m) return 'terraform providers: from the public registries (no provider mirror)';
  return m.kind === 'filesystem'
    ? `terraform providers: only from the filesystem mirror ${m.location} (no registry access)`
    : `terraform providers: only from the network mirror ${m.location} (no registry access)`;
}

function providerMirrorKind(
  mirror: string | undefined,
): { kind: 'filesystem' | 'network'; location: string } | null {
  if (mirror === undefined || mirror === '') return null;
  // the value lands in an HCL string: nothing that could end it or interpolate
  if (/["\\\n\r]|\$\{|%\{/.test(mirror))
    throw new Error('the provider mirror must not contain quotes, backslashes, newlines, ${ or %{');
  if (isAbsolute(mirror)) return { kind: 'filesystem', location: mirror };
  let url: URL | null = null;
  try {
    url = new URL(mirror);
  } catch {
    url = null;
  }
  if (url?.protocol !== 'https:' || url.username || url.password)
    throw new Error(
      'the provider mirror must be an absolute directory or an https URL without credentials',
    );
  // terraform requires a network mirror's URL to end with a slash
  return { kind: 'network', location: url.toString().replace(/\/?$/, '/') };
}

/**
 * The CLI configuration written when there is a provider mirror (TF_CLI_CONFIG_FILE), or null.
 * It has no `direct` block: a site with a mirror has no registry to fall back to.
 */
export function cliConfig(providerMirror: string | undefined): string | null {
  const m = providerMirrorKind(providerMirror);
  if (!m) return null;
  const [block, key] =
    m.kind === 'filesystem' ? ['filesystem_mirror', 'path'] : ['network_mirror', 'url'];
  return [
    'provider_installation {',
    `  ${block} {`,
    `    ${key} = ${JSON.stringify(m.location)}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Replaces known secrets and secret-shaped strings in text meant for logs and error messages. */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  const list = [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  for (const s of list) out = out.split(s).join('[redacted]');
  return out
    .replace(/(postgres(?:ql)?:\/\/)[^\s"'@]+@/gi, '$1[redacted]@')
    .replace(/\b(Bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]');
}

/**
 * Progress across init/plan/apply in one number: init 0-5, plan 5-15, apply 15-100 by
 * completed resources against the planned changes.
 */
class Progress {
  private last = 0;
  private planned = 0;
  private done = 0;
  constructor(
    private readonly emit: ((e: ExecutorProgress) => void) | undefined,
    private readonly scrubber: (s: string) => string,
  ) {}

  report(progress: number, message: string): void {
    this.last = Math.min(100, Math.max(this.last, Math.round(progress)));
    this.emit?.({ progress: this.last, message: this.scrubber(message) });
  }

  line(step: TerraformStep, l: UiLine): void {
    const message = l['@message'] ?? l.type;
    switch (l.type) {
      case 'planned_change':
        if (step === 'plan') this.planned += 1;
        this.report(step === 'plan' ? 5 + Math.min(9, this.planned) : this.last, message);
        return;
      case 'change_summary': {
        const c = l.changes ?? {};
        const total = (c.add ?? 0) + (c.change ?? 0) + (c.remove ?? 0);
        // a replacement counts once in add and once in remove, and completes twice: the summary is the truth
        if (step === 'plan' || step === 'destroy' || this.planned === 0) this.planned = total;
        this.report(step === 'plan' ? 15 : this.last, message);
        return;
      }
      case 'apply_complete':
        this.done += 1;
        this.report(15 + (85 * this.done) / Math.max(this.planned, this.done, 1), message);
        return;
      case 'apply_start':
      case 'apply_progress':
      case 'refresh_start':
      case 'refresh_complete':
      case 'resource_drift':
      case 'provision_start':
      case 'provision_progress':
      case 'provision_complete':
      case 'outputs':
        this.report(this.last, message);
        return;
      default:
        return;
    }
  }
}

export class TerraformExecutor {
  private readonly credentials: Record<string, string>;
  private readonly lockTimeoutSeconds: number;
  private readonly cliConfigText: string | null;

  constructor(private readonly config: TerraformExecutorConfig) {
    const bad = Object.keys(config.credentials ?? {}).filter(
      (k) => !CREDENTIAL_NAME.test(k) || RESERVED.has(k),
    );
    if (bad.length)
      throw new Error(
        `not credential variables: ${bad.join(', ')} (allowed: AWS_*, GOOGLE_*, CLOUDSDK_*, ARM_*, TF_*)`,
      );
    if (config.backend === 'pg' && !config.pgConnString)
      throw new Error('the pg backend needs pgConnString');
    const lockTimeout = config.lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS;
    if (!Number.isInteger(lockTimeout) || lockTimeout < 0)
      throw new Error('lockTimeoutSeconds must be a whole number of seconds, 0 or more');
    this.lockTimeoutSeconds = lockTimeout;
    this.cliConfigText = cliConfig(config.providerMirror);
    this.credentials = { ...config.credentials };
  }

  /**
   * The child's whole environment: an allow-list, never the service's env wholesale. With a
   * provider mirror, TF_CLI_CONFIG_FILE points at the CLI configuration written in `workdir`.
   */
  childEnv(workdir?: string): Record<string, string> {
    const base = this.config.baseEnv ?? process.env;
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'HOME'] as const) {
      const v = base[k];
      if (v) env[k] = v;
    }
    Object.assign(env, this.config.extraEnv ?? {}, this.credentials);
    env.TF_IN_AUTOMATION = '1';
    env.TF_INPUT = '0';
    env.CHECKPOINT_DISABLE = '1';
    env.TF_PLUGIN_CACHE_DIR = this.config.pluginCacheDir;
    if (this.config.backend === 'pg' && this.config.pgConnString)
      env.PG_CONN_STR = this.config.pgConnString;
    if (this.cliConfigText && workdir) env.TF_CLI_CONFIG_FILE = join(workdir, CLI_CONFIG_FILE);
    return env;
  }

  private secrets(extra: string[] = []): string[] {
    return [...Object.values(this.credentials), this.config.pgConnString ?? '', ...extra].filter(
      Boolean,
    );
  }

  async init(workdir: string, opts: RunOptions = {}): Promise<void> {
    mkdirSync(this.config.pluginCacheDir, { recursive: true });
    const progress = this.progress(opts);
    progress.report(1, 'terraform init');
    await this.initStep(workdir, opts, progress);
    progress.report(5, 'terraform initialized');
  }

  async plan(workdir: string, opts: RunOptions = {}): Promise<{ changes: number }> {
    const r = await this.planStep(workdir, opts, this.progress(opts));
    return { changes: r.planned };
  }

  async apply(workdir: string, opts: RunOptions = {}): Promise<void> {
    await this.applyStep(workdir, opts, this.progress(opts));
  }

  async output(workdir: string, opts: RunOptions = {}): Promise<TerraformOutputs> {
    const r = await this.run('output', workdir, ['output', '-json'], opts, undefined, false);
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.stdout || '{}');
    } catch {
      throw new TerraformError('bad_output', 'output', 'terraform output -json did not print JSON');
    }
    const result = TerraformOutputs.safeParse(parsed);
    if (!result.success)
      throw new TerraformError(
        'bad_output',
        'output',
        'terraform output -json has an unexpected shape',
      );
    return result.data;
  }

  async destroy(workdir: string, opts: RunOptions = {}): Promise<void> {
    await this.destroyStep(workdir, opts, this.progress(opts));
  }

  /**
   * init + plan + apply + output with one progress bar (0..100). A progress callback from a
   * caller that maps it into a wider range is welcome.
   */
  async up(workdir: string, opts: RunOptions = {}): Promise<TerraformOutputs> {
    const progress = this.progress(opts);
    progress.report(0, 'terraform init');
    await this.initStep(workdir, opts, progress);
    progress.report(5, 'planning');
    await this.planStep(workdir, opts, progress);
    await this.applyStep(workdir, opts, progress);
    const outputs = await this.output(workdir, opts);
    progress.report(100, 'applied');
    return outputs;
  }

  /**
   * init + destroy; succeeds when there is nothing to destroy. A stack that declares resources of
   * FORGET_BEFORE_DESTROY types (an Azure instance stack's disk attachments) has them removed from
   * its state first (see forgetBeforeDestroy()). With `dropStateSchema` and the pg backend, the
   * stack's state schema is dropped afterwards (see dropStateSchema()).
   */
  async down(workdir: string, opts: DownOptions = {}): Promise<void> {
    const progress = this.progress(opts);
    progress.report(0, 'terraform init');
    await this.initStep(workdir, opts, progress);
    await this.forgetBeforeDestroy(workdir, opts, progress);
    progress.report(15, 'destroying');
    await this.destroyStep(workdir, opts, progress);
    if (opts.dropStateSchema && this.config.backend === 'pg')
      await this.dropStateSchema(workdir, opts);
    progress.report(100, 'destroyed');
  }

  /**
   * Removes from the state, never from the cloud, every resource of a FORGET_BEFORE_DESTROY type
   * the workdir's configuration declares, so that the destroy deletes the VM with its disks still
   * attached. A failure is a warning, not an error: the plain destroy that follows still removes
   * the machine, only with the hot detach this avoids. A cancel is passed on.
   */
  private async forgetBeforeDestroy(
    workdir: string,
    opts: RunOptions,
    progress: Progress,
  ): Promise<void> {
    const types = declaredResourceTypes(workdir).filter((t) => FORGET_BEFORE_DESTROY.includes(t));
    if (!types.length) return;
    const log = this.config.log;
    try {
      progress.report(5, 'forgetting the disk attachments, so the disks detach with the VM');
      const listed = await this.run('state', workdir, ['state', 'list'], opts, progress, false);
      const addresses = listed.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((a) => types.some((t) => a.startsWith(`${t}.`)));
      if (!addresses.length) return;
      const args = ['state', 'rm', this.lockTimeoutArg(), ...addresses];
      await this.run('state', workdir, args, opts, progress, false);
      log?.({
        step: 'state',
        level: 'info',
        message: `forgot ${addresses.join(', ')}: the disks detach when the VM is deleted`,
      });
    } catch (err) {
      if (err instanceof TerraformError && err.code === 'cancelled') throw err;
      const why = err instanceof Error ? err.message : String(err);
      log?.({
        step: 'state',
        level: 'warn',
        message: scrub(
          `could not remove the disk attachments from the state (${why}); destroying with them, so Azure detaches the disks from the running VM`,
          this.secrets(opts.secrets),
        ),
      });
    }
  }

  /**
   * Drops the schema that held a destroyed stack's state: the pg backend never removes one, and
   * an instance stack gets a new one per start. Only a schema named in the workdir's backend
   * block, holding nothing but the backend's `states` table, whose states have no resources left,
   * is dropped. A failure is logged, never thrown: the machine is gone, which is what counts.
   */
  private async dropStateSchema(workdir: string, opts: RunOptions): Promise<void> {
    const log = this.config.log;
    const schema = stateSchemaOf(workdir);
    if (!schema || KEPT_SCHEMAS.has(schema) || schema.startsWith('pg_')) {
      log?.({ step: 'destroy', level: 'warn', message: 'no state schema of its own to drop' });
      return;
    }
    const sql = postgres(this.config.pgConnString ?? '', {
      max: 1,
      connect_timeout: 10,
      onnotice: () => {},
    });
    try {
      const others = await sql`
        select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = ${schema} and c.relkind in ('r', 'v', 'm', 'p', 'f') and c.relname <> 'states'`;
      const ident = sql(schema);
      const states = others[0]?.n === 0 ? await sql`select data from ${ident}.states` : null;
      if (!states || states.some((r) => !emptyState(r.data))) {
        log?.({
          step: 'destroy',
          level: 'warn',
          message: `state schema ${schema} kept: it holds more than an empty terraform state`,
        });
        return;
      }
      await sql`drop schema if exists ${ident} cascade`;
      log?.({ step: 'destroy', level: 'info', message: `state schema ${schema} dropped` });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log?.({
        step: 'destroy',
        level: 'warn',
        message: scrub(
          `could not drop state schema ${schema}: ${message}`,
          this.secrets(opts.secrets),
        ),
      });
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
    }
  }

  // ---- the steps, shared by the single-step methods and by up()/down()

  private progress(opts: RunOptions): Progress {
    return new Progress(opts.onProgress, (s) => scrub(s, this.secrets(opts.secrets)));
  }

  private async initStep(workdir: string, opts: RunOptions, progress: Progress): Promise<void> {
    if (this.config.backend === 'pg') await this.prepareSharedState(opts);
    await this.run('init', workdir, ['init', '-input=false', '-no-color'], opts, progress, false);
  }

  /** once per executor: the pg backend's one object shared by every stack's schema exists */
  private sharedState: Promise<void> | null = null;

  /**
   * Terraform's pg backend creates `public.global_states_id_seq` (shared by every state schema)
   * with CREATE SEQUENCE IF NOT EXISTS when it configures, and two first inits at once on a new
   * database race on it: one fails with a unique violation in the catalog. Created here first,
   * the same way, under an advisory lock that every replica takes, so no init ever creates it.
   * A failure is logged, not thrown: terraform's own init then says what is wrong.
   */
  private prepareSharedState(opts: RunOptions): Promise<void> {
    this.sharedState ??= (async () => {
      const sql = postgres(this.config.pgConnString ?? '', {
        max: 1,
        connect_timeout: 10,
        onnotice: () => {},
      });
      try {
        await sql.begin(async (tx) => {
          await tx`select pg_advisory_xact_lock(hashtext('ngsci: terraform pg backend sequence'))`;
          await tx`create sequence if not exists public.global_states_id_seq as bigint`;
        });
      } catch (err) {
        this.sharedState = null;
        const message = err instanceof Error ? err.message : String(err);
        this.config.log?.({
          step: 'init',
          level: 'warn',
          message: scrub(
            `could not prepare the pg backend's shared sequence: ${message}`,
            this.secrets(opts.secrets),
          ),
        });
      } finally {
        await sql.end({ timeout: 5 }).catch(() => {});
      }
    })();
    return this.sharedState;
  }

  private lockTimeoutArg(): string {
    return `-lock-timeout=${this.lockTimeoutSeconds}s`;
  }

  private planStep(workdir: string, opts: RunOptions, progress: Progress): Promise<StepResult> {
    const args = ['plan', '-json', '-input=false', this.lockTimeoutArg(), `-out=${PLAN_FILE}`];
    return this.run('plan', workdir, args, opts, progress, true);
  }

  private async applyStep(workdir: string, opts: RunOptions, progress: Progress): Promise<void> {
    try {
      const args = ['apply', '-json', '-input=false', this.lockTimeoutArg(), PLAN_FILE];
      await this.run('apply', workdir, args, opts, progress, true);
    } finally {
      // the saved plan holds the configuration's values; the state, which is the record, stays
      rmSync(join(workdir, PLAN_FILE), { force: true });
    }
  }

  private async destroyStep(workdir: string, opts: RunOptions, progress: Progress): Promise<void> {
    const args = ['destroy', '-json', '-auto-approve', '-input=false', this.lockTimeoutArg()];
    await this.run('destroy', workdir, args, opts, progress, true);
  }

  /**
   * One terraform command: the process runner does the running, StepOutput reads what it says.
   * A step other than apply that lost a state lock to another run is run again, with backoff, for
   * up to the lock timeout: the pg backend's workspace-creation lock is one for the whole
   * database and ignores `-lock-timeout`, so two first starts at once would otherwise fail.
   * (An apply runs a saved plan, whose state exists: `-lock-timeout` covers it.)
   */
  private async run(
    step: TerraformStep,
    workdir: string,
    args: string[],
    opts: RunOptions,
    progress: Progress | undefined,
    json: boolean,
  ): Promise<StepResult> {
    const secrets = this.secrets(opts.secrets);
    const clean = (s: string): string => scrub(s, secrets);
    const log = this.config.log;
    if (!existsSync(workdir))
      throw new TerraformError('terraform_failed', step, `workdir ${workdir} does not exist`);
    if (opts.signal?.aborted)
      throw new TerraformError('cancelled', step, `terraform ${step} cancelled before it started`);

    if (this.cliConfigText) writeFileSync(join(workdir, CLI_CONFIG_FILE), this.cliConfigText);
    const timeoutMs = this.config.timeoutsMs?.[step] ?? DEFAULT_TIMEOUTS[step];
    const lockDeadline = Date.now() + this.lockTimeoutSeconds * 1000;
    for (let attempt = 1; ; attempt++) {
      const output = new StepOutput(step, clean, log, progress);
      const result = await runProcess({
        command: this.config.binary,
        args,
        cwd: workdir,
        env: this.childEnv(workdir),
        timeoutMs,
        killGraceMs: this.config.killGraceMs ?? 30_000,
        signal: opts.signal,
        onStdoutLine: (line) => (json ? output.jsonLine(line) : output.textLine(line)),
        onStderrLine: (line) => output.keepTail(line),
        onStop: (stage, reason) =>
          log?.({
            step,
            level: 'warn',
            message:
              stage === 'interrupt'
                ? `stopping terraform ${step} (${reason}): SIGINT`
                : `terraform ${step} ignored SIGINT: SIGKILL`,
          }),
      });
      const failure = this.failure(step, result, output, clean, timeoutMs);
      if (!failure) {
        log?.({ step, level: 'info', message: `terraform ${step} done` });
        return { stdout: output.stdout, planned: output.planned };
      }
      const wait = lockRetryDelayMs(attempt);
      if (step === 'apply' || !isLockError(failure) || Date.now() + wait > lockDeadline)
        throw failure;
      log?.({
        step,
        level: 'warn',
        message: `terraform ${step}: the state is locked by another terraform run; trying again in ${Math.round(wait / 100) / 10} s`,
      });
      progress?.report(0, 'waiting for another terraform run to release the state lock');
      if (!(await sleep(wait, opts.signal)))
        throw new TerraformError(
          'cancelled',
          step,
          `terraform ${step} cancelled while waiting for a state lock`,
        );
    }
  }

  /** How a finished process becomes a TerraformError, or null when the step succeeded. */
  private failure(
    step: TerraformStep,
    r: ProcessResult,
    output: StepOutput,
    clean: (s: string) => string,
    timeoutMs: number,
  ): TerraformError | null {
    if (!r.started)
      return new TerraformError('cancelled', step, `terraform ${step} cancelled before it started`);
    if (r.spawnError) {
      const missing = r.spawnError.code === 'ENOENT';
      return new TerraformError(
        missing ? 'binary_not_found' : 'terraform_failed',
        step,
        missing
          ? `${this.config.binary} not found; set NGSCI_TERRAFORM_BINARY`
          : clean(`could not run ${this.config.binary}: ${r.spawnError.message}`),
      );
    }
    if (r.stopReason) {
      const how = r.signal === 'SIGKILL' ? 'killed after it ignored SIGINT' : 'stopped';
      return new TerraformError(
        r.stopReason,
        step,
        r.stopReason === 'timeout'
          ? `terraform ${step} timed out after ${Math.round(timeoutMs / 1000)} s and was ${how}`
          : `terraform ${step} cancelled and ${how}`,
        output.diagnostics,
        r.exitCode,
        r.signal,
      );
    }
    if (r.exitCode === 0) return null;
    const first = output.diagnostics.find((d) => d.severity === 'error');
    const why = first
      ? `${first.summary}${first.detail ? `: ${first.detail}` : ''}`
      : clean(
          output.tail
            .filter((l) => l.trim())
            .slice(-5)
            .join(' ')
            .slice(0, 800),
        ) || `exit code ${r.exitCode ?? r.signal}`;
    return new TerraformError(
      'terraform_failed',
      step,
      clean(`terraform ${step} failed: ${why}`),
      output.diagnostics,
      r.exitCode,
      r.signal,
    );
  }
}

function isLockError(e: TerraformError): boolean {
  if (e.code !== 'terraform_failed') return false;
  return [e.message, ...e.diagnostics.map((d) => `${d.summary} ${d.detail}`)].some((t) =>
    LOCK_ERROR.test(t),
  );
}

/** 0.5 s, 1 s, 2 s... up to 10 s, each ±25 % so that runs that collided once do not again. */
function lockRetryDelayMs(attempt: number): number {
  const base = Math.min(10_000, 500 * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The pg backend's `schema_name` in the workdir's synthesized configuration, if any. */
function stateSchemaOf(workdir: string): string | null {
  try {
    const cfg = JSON.parse(readFileSync(join(workdir, 'cdk.tf.json'), 'utf8')) as {
      terraform?: { backend?: { pg?: { schema_name?: unknown } } };
    };
    const name = cfg.terraform?.backend?.pg?.schema_name;
    return typeof name === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) ? name : null;
  } catch {
    return null;
  }
}

/** The resource types the workdir's synthesized configuration declares; none when unreadable. */
function declaredResourceTypes(workdir: string): string[] {
  try {
    const cfg = JSON.parse(readFileSync(join(workdir, 'cdk.tf.json'), 'utf8')) as {
      resource?: unknown;
    };
    const r = cfg.resource;
    return r && typeof r === 'object' && !Array.isArray(r) ? Object.keys(r) : [];
  } catch {
    return [];
  }
}

/** A terraform state (JSON text) that manages nothing. */
function emptyState(data: unknown): boolean {
  try {
    const state = JSON.parse(String(data ?? '')) as { resources?: unknown[] };
    return Array.isArray(state.resources) ? state.resources.length === 0 : true;
  } catch {
    return false;
  }
}

interface StepResult {
  /** the whole stdout of a step run without -json (`output -json` prints one document) */
  stdout: string;
  /** changes in the last change_summary */
  planned: number;
}

/**
 * What one terraform command said: `-json` lines become progress, diagnostics (scrubbed) and the
 * planned change count; other lines are kept as a short tail for the error message.
 */
class StepOutput {
  readonly diagnostics: TerraformDiagnostic[] = [];
  readonly tail: string[] = [];
  stdout = '';
  planned = 0;

  constructor(
    private readonly step: TerraformStep,
    private readonly clean: (s: string) => string,
    private readonly log: TerraformExecutorConfig['log'],
    private readonly progress: Progress | undefined,
  ) {}

  keepTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 40) this.tail.shift();
  }

  textLine(line: string): void {
    this.stdout += line + '\n';
    // output's stdout holds the values, which may be secret: never in an error message
    if (this.step !== 'output') this.keepTail(line);
  }

  jsonLine(line: string): void {
    let parsed: UiLine | null = null;
    try {
      const r = UiLine.safeParse(JSON.parse(line));
      parsed = r.success ? r.data : null;
    } catch {
      parsed = null;
    }
    if (!parsed) {
      this.keepTail(line);
      return;
    }
    const { step, clean, log } = this;
    if (parsed.type === 'diagnostic' && parsed.diagnostic) {
      const d = parsed.diagnostic;
      this.diagnostics.push({
        severity: d.severity === 'error' ? 'error' : 'warning',
        summary: clean(d.summary),
        detail: clean(d.detail ?? ''),
        address: d.address,
      });
      log?.({
        step,
        level: d.severity === 'error' ? 'error' : 'warn',
        message: clean(`${d.summary}${d.detail ? `: ${d.detail}` : ''}`),
      });
    }
    if (parsed.type === 'change_summary') {
      const c = parsed.changes ?? {};
      this.planned = (c.add ?? 0) + (c.change ?? 0) + (c.remove ?? 0);
    }
    if (parsed.type === 'apply_errored')
      log?.({ step, level: 'error', message: clean(parsed['@message'] ?? 'apply errored') });
    this.progress?.line(step, parsed);
  }
}
