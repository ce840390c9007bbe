/**
 * The terraform provisioner: an instance is a cloud VM made by one Terraform stack.
 * start: apply the user's home-disk stack (once; a no-op afterwards), get a single-use bootstrap
 * token from the service (it seals the server's environment and the agent's credential; neither
 * enters the stack), synthesize the instance stack into its own workdir, init/plan/apply (a spot
 * machine the cloud has no capacity for starts on demand instead when its user allowed it), record
 * the cloud's id of the machine from the outputs (the machine must prove that identity to redeem
 * its token), then wait until the machine's own boot checks passed (it reached the hub, its GPU is
 * usable: its boot report, when the service keeps them) and `http://<address>:<port><baseUrl>api`
 * answers; the poll carries no credential, the service never calls a VM with one. The server's
 * environment is rewritten for the machine: every URL in it points at the hub as machines reach it
 * (NGSCI_VM_HUB_URL), never at the hub's loopback address. stop: destroy the instance stack
 * (the home disk stays). adopt: the state still has outputs. Every dependency that touches the
 * outside (executor, token store, fetch, readiness check, clock) is injected, so tests run it
 * against a test double of terraform.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '@ngsci/contract';
import { ApiError } from '../../errors.js';
import {
  homeStackKey,
  synthHome,
  synthInstance,
  SYNTH_FILE,
  INSTANCE_TYPES,
  type BackendSpec,
  type Cloud,
  type HomeOptions,
  type InstanceOptions,
} from '@ngsci/terraform';
import type {
  ExitReport,
  Provisioned,
  ProvisionContext,
  ProvisionRequest,
  Provisioner,
  ProviderRef,
} from '../types.js';
import {
  TerraformError,
  TerraformExecutor,
  type ExecutorProgress,
  type RunOptions,
  type TerraformOutputs,
} from './executor.js';
import { capacityFailure, type CapacityFailure } from './capacity.js';
import type { TerraformSettings } from './settings.js';
import { machineForOffer, machineProblem, type MachineTable } from './machine-types.js';

/** Written into an instance workdir once its stack is destroyed; removed before every apply. */
export const DESTROYED_MARKER = '.ngsci-destroyed';

/** An ApiError (status, code, safe message), so the worker records its code and the API can answer with it as is. */
export class TerraformProvisionError extends ApiError {
  constructor(status: 409 | 422 | 500 | 504, code: ErrorCode, message: string, details?: unknown) {
    super(status, code, message, details);
    this.name = 'TerraformProvisionError';
  }
}

export type ReadinessCheck = (
  url: string,
  fetchImpl: typeof fetch,
  signal: AbortSignal,
) => Promise<boolean>;

/** jupyterhub-singleuser answers GET <base>api with 200 and its version, no token needed. */
export const defaultReadiness: ReadinessCheck = async (url, fetchImpl, signal) => {
  try {
    const res = await fetchImpl(url, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
    });
    return res.ok;
  } catch {
    return false;
  }
};

/** What the machine said about its own boot checks (the service stores its boot report). */
export interface BootStatus {
  state: 'pending' | 'ready' | 'failed';
  code?: string;
  message?: string;
}

export interface TerraformProvisionerDeps {
  settings: TerraformSettings;
  /**
   * the service's token store: remembers `env` (and the agent's credential, apart from it) and
   * hands them out once for the returned token, to the machine that proves it is this instance
   */
  issueBootstrapToken(
    instanceId: string,
    env: Record<string, string>,
    opts?: { agentToken?: string },
  ): Promise<string>;
  /** records the cloud's id of the instance's machine (`terraform output instance_id`) for the token */
  recordCloudInstance?(instanceId: string, cloudInstanceId: string): Promise<void>;
  /**
   * the machine's boot report: when given, a start is ready only once the machine reported that
   * it reached the hub (and saw its GPU), and a failed report fails the start at once
   */
  bootStatus?(instanceId: string): Promise<BootStatus>;
  executor?: TerraformExecutor;
  /** the machine types launches may use: the built-in ones plus the catalog file's (catalog-file.ts) */
  machineTypes?: MachineTable;
  fetch?: typeof fetch;
  isReady?: ReadinessCheck;
  /** readiness poll while starting; default 1 s */
  pollIntervalMs?: number;
  /** health poll of running instances; default 10 s, 0 disables it */
  watchIntervalMs?: number;
  /** consecutive failed health polls before an instance counts as lost; default 3 */
  lostAfter?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: TerraformSettingsLog;
}

export type TerraformSettingsLog = (entry: {
  level: 'info' | 'warn' | 'error';
  message: string;
  instanceId?: string;
}) => void;

const SENSITIVE_ENV = /TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL/i;

const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

/**
 * The server's environment as the machine needs it. The hub computed it for a server on its own
 * host: JUPYTERHUB_API_URL and JUPYTERHUB_ACTIVITY_URL on the hub's internal address (often
 * 127.0.0.1:8081), NGSCI_API_URL a bare path, JUPYTERHUB_SERVICE_URL 127.0.0.1:0. On the machine
 * the hub is at its origin as machines reach it (the hub's proxy serves /hub/api there), the
 * service at its URL, and the server binds every interface on the single-user port, behind a
 * firewall that admits only the hub (the proxy reaches it at <address>:<port>, the target URL).
 */
export function machineEnv(
  env: Record<string, string>,
  s: Pick<TerraformSettings, 'vmHubOrigin' | 'serviceUrl' | 'singleuserPort'>,
  baseUrl: string,
): Record<string, string> & { JUPYTERHUB_API_URL: string } {
  const onHub = (v: string): string => {
    const u = new URL(v, 'http://placeholder');
    return `${s.vmHubOrigin}${u.pathname}${u.search}`;
  };
  const hubApi = env.JUPYTERHUB_API_URL || `${env.JUPYTERHUB_BASE_URL || '/'}hub/api`;
  return {
    ...env,
    JUPYTERHUB_API_URL: onHub(hubApi),
    ...(env.JUPYTERHUB_ACTIVITY_URL
      ? { JUPYTERHUB_ACTIVITY_URL: onHub(env.JUPYTERHUB_ACTIVITY_URL) }
      : {}),
    NGSCI_API_URL: `${s.serviceUrl}/api/v1`,
    JUPYTERHUB_SERVICE_URL: `http://0.0.0.0:${s.singleuserPort}${baseUrl}`,
  };
}

/** What the user reads when the machine's own boot checks failed (the codes are the boot report's). */
function bootFailure(
  boot: BootStatus,
  hubApiUrl: string,
  instanceId: string,
): TerraformProvisionError {
  const said = boot.message ? ` (${boot.message.slice(0, 300)})` : '';
  const what: Record<string, string> = {
    hub_unreachable: `the machine cannot reach the hub at ${hubApiUrl}${said}; check NGSCI_VM_HUB_URL and that machines' network reaches it`,
    gpu_unavailable: `the machine's GPU is not usable inside the single-user image${said}; check NGSCI_TERRAFORM_GPU_IMAGE (a CUDA build) and the machine's driver`,
    agent_missing: `the single-user image has no ngsci agent${said}; use ngsci's image (docker/singleuser.Dockerfile)`,
  };
  return new TerraformProvisionError(
    500,
    'provision_failed',
    what[boot.code ?? ''] ??
      `the machine's boot checks failed${boot.code ? ` (${boot.code})` : ''}${said}`,
    { instanceId, boot: boot.code ?? null },
  );
}

/** The cloud's "no capacity" in a failed apply; null for every other failure, a cancel or a timeout. */
function spotCapacityFailure(err: unknown, cloud: Cloud): CapacityFailure | null {
  if (!(err instanceof TerraformError) || err.code !== 'terraform_failed') return null;
  return capacityFailure(cloud, err.diagnostics);
}

interface Watched {
  targetUrl: string;
  timer?: NodeJS.Timeout;
  failures: number;
  ref: ProviderRef;
}

export class TerraformProvisioner implements Provisioner {
  readonly kind = 'terraform' as const;
  private readonly executor: TerraformExecutor;
  private readonly fetchImpl: typeof fetch;
  private readonly isReady: ReadinessCheck;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly watched = new Map<string, Watched>();
  private exitListener: ((r: ExitReport) => void) | null = null;

  constructor(private readonly deps: TerraformProvisionerDeps) {
    const s = deps.settings;
    this.executor =
      deps.executor ??
      new TerraformExecutor({
        binary: s.binary,
        pluginCacheDir: s.pluginCacheDir,
        backend: s.backend,
        pgConnString: s.pgConnString,
        credentials: s.credentials,
        timeoutsMs: {
          init: s.stepTimeoutMs,
          plan: s.stepTimeoutMs,
          apply: s.stepTimeoutMs,
          destroy: s.stepTimeoutMs,
        },
        killGraceMs: s.killGraceMs,
        lockTimeoutSeconds: s.lockTimeoutSeconds,
        providerMirror: s.providerMirror,
        log: deps.log
          ? (e) => deps.log?.({ level: e.level, message: `${e.step}: ${e.message}` })
          : undefined,
      });
    this.fetchImpl = deps.fetch ?? fetch;
    this.isReady = deps.isReady ?? defaultReadiness;
    this.sleep = deps.sleep ?? abortableSleep;
  }

  onExit(listener: (report: ExitReport) => void): void {
    this.exitListener = listener;
  }

  instanceWorkdir(instanceId: string): string {
    return join(
      this.deps.settings.workRoot,
      'instances',
      instanceId.replace(/[^A-Za-z0-9._-]/g, '_'),
    );
  }

  private stateBackend(): BackendSpec {
    return this.deps.settings.backend === 'pg'
      ? { kind: 'pg', connStringEnv: 'PG_CONN_STR' }
      : { kind: 'local', path: 'terraform.tfstate' };
  }

  private homeOptions(req: ProvisionRequest): HomeOptions {
    const s = this.deps.settings;
    const cloud = req.offer.cloud;
    if (cloud === 'local')
      throw new TerraformProvisionError(
        422,
        'size_unavailable',
        'the terraform provisioner does not run local offers',
      );
    const place = s.placement[cloud];
    if (!place)
      throw new TerraformProvisionError(
        422,
        'size_unavailable',
        `${cloud} is not configured on this hub (see docs/clouds.md)`,
      );
    const { zone, dataset: _dataset, ...placement } = place;
    return {
      cloud,
      region: req.offer.region,
      zone,
      user: req.user,
      server: req.server,
      homeDiskGiB: s.homeDiskGiB,
      backend: this.stateBackend(),
      [cloud]: placement,
    };
  }

  async start(req: ProvisionRequest, ctx: ProvisionContext): Promise<Provisioned> {
    const s = this.deps.settings;
    const home = this.homeOptions(req);
    const cloud = home.cloud as Cloud;
    // a retired type, one without the size's GPUs, or an unknown one never reaches terraform
    const table = this.deps.machineTypes;
    const problem = machineProblem(req.offer, req.size, table);
    const machine = problem ? null : machineForOffer(req.offer, req.size, table);
    if (!machine || machine.info.cloud !== cloud)
      throw new TerraformProvisionError(
        422,
        'size_unavailable',
        problem ?? `${req.offer.instanceType} is not a known ${cloud} machine type`,
      );
    const type = machine.info;

    // reports arrive synchronously from terraform's output; keep them in order, never block on them
    let reports = Promise.resolve();
    const report =
      (state: 'provisioning' | 'starting', from: number, to: number) => (e: ExecutorProgress) => {
        const progress = Math.round(from + ((to - from) * e.progress) / 100);
        reports = reports
          .then(() => ctx.report({ state, progress, message: e.message }))
          .catch(() => undefined);
      };
    const secrets = Object.entries(req.env)
      .filter(([k]) => SENSITIVE_ENV.test(k))
      .map(([, v]) => v);
    if (req.agentToken) secrets.push(req.agentToken);

    const homeDir = join(s.workRoot, 'homes', homeStackKey(home));
    const instanceDir = this.instanceWorkdir(req.instanceId);
    try {
      synthHome(home, homeDir);
      const homeOut = await this.executor.up(homeDir, {
        signal: ctx.signal,
        onProgress: report('provisioning', 5, 15),
        secrets,
      });
      const homeDiskId = homeOut.home_disk_id?.value;
      if (typeof homeDiskId !== 'string')
        throw new TerraformProvisionError(
          500,
          'provision_failed',
          'the home stack has no home_disk_id output',
        );

      const env = machineEnv(req.env, s, req.baseUrl);
      const bootstrapToken = await this.deps.issueBootstrapToken(
        req.instanceId,
        env,
        req.agentToken ? { agentToken: req.agentToken } : {},
      );
      secrets.push(bootstrapToken);
      const place = s.placement[cloud];
      const firstOptions: InstanceOptions = {
        ...home,
        instanceId: req.instanceId,
        instanceType: machine.key,
        gpu: type.gpu ? { model: type.gpu.model, count: type.gpu.count } : null,
        // a type of the operator's catalog file travels with the stack; built-in ones by name
        ...(INSTANCE_TYPES[machine.key] === type ? {} : { machine: type }),
        spot: req.spot,
        size: req.size.id,
        homeDiskId,
        dataset: place?.dataset ?? null,
        hubCidr: s.hubCidr,
        singleuserPort: s.singleuserPort,
        allowSsh: s.allowSsh,
        sshCidr: s.sshCidr,
        sshAuthorizedKeys: s.sshAuthorizedKeys,
        image: type.gpu ? s.gpuImage : s.image,
        serviceUrl: s.serviceUrl,
        egressAllowCidrs: s.egressAllowCidrs,
        allowHttp: s.allowHttpVmUrls,
        bootstrapToken,
        addressKind: s.addressKind,
      };
      synthInstance(firstOptions, instanceDir);
      rmSync(join(instanceDir, DESTROYED_MARKER), { force: true });
      const run = (from: number, to: number): RunOptions => ({
        signal: ctx.signal,
        onProgress: report('provisioning', from, to),
        secrets,
      });
      const { out, options } = await this.applyInstance(
        firstOptions,
        instanceDir,
        ctx,
        run,
        () => reports,
      );
      const address = out.address?.value;
      if (typeof address !== 'string' || !address)
        throw new TerraformProvisionError(
          500,
          'provision_failed',
          'the instance stack has no address output',
        );

      const cloudInstanceId =
        typeof out.instance_id?.value === 'string' && out.instance_id.value
          ? out.instance_id.value
          : null;
      if (this.deps.recordCloudInstance) {
        // until this is recorded the machine's bootstrap answers 503 and the machine retries
        if (!cloudInstanceId)
          throw new TerraformProvisionError(
            500,
            'provision_failed',
            'the instance stack has no instance_id output; the machine could not prove its identity',
          );
        await this.deps.recordCloudInstance(req.instanceId, cloudInstanceId);
      }

      const targetUrl = `http://${address}:${s.singleuserPort}${req.baseUrl}`;
      const ref: ProviderRef = {
        cloud,
        workdir: instanceDir,
        homeWorkdir: homeDir,
        address,
        cloudInstanceId,
        homeDiskId,
        targetUrl,
        // enough to synthesize the stack again for a destroy on another replica; no token in it
        stack: JSON.stringify({ ...options, bootstrapToken: 'spent' }),
      };
      await this.waitReady(req.instanceId, targetUrl, env.JUPYTERHUB_API_URL, ctx, (p, m) =>
        report('starting', 85, 99)({ progress: p, message: m }),
      );
      await reports;
      this.watch(req.instanceId, targetUrl, ref);
      return { targetUrl, ref };
    } catch (err) {
      await reports;
      throw this.translate(err, secrets);
    }
  }

  /**
   * Applies the synthesized instance stack. A spot machine the cloud has no capacity for starts
   * on demand instead when its user allowed it (ctx.switchToOnDemand, which also moves its price):
   * the progress says so, what the spot apply created is destroyed, and the stack is applied again
   * without spot. Zones are never changed: the home disk lives in the zone it was created in.
   * Answers the outputs and the options that were applied.
   */
  private async applyInstance(
    options: InstanceOptions,
    instanceDir: string,
    ctx: ProvisionContext,
    run: (from: number, to: number) => RunOptions,
    pending: () => Promise<void>,
  ): Promise<{ out: TerraformOutputs; options: InstanceOptions }> {
    try {
      return { out: await this.executor.up(instanceDir, run(15, 85)), options };
    } catch (err) {
      const capacity = options.spot ? spotCapacityFailure(err, options.cloud) : null;
      if (!capacity) throw err;
      const where = `${options.instanceType} in ${options.zone ?? options.region}`;
      if (!(await ctx.switchToOnDemand?.()))
        throw new TerraformProvisionError(
          500,
          'provision_failed',
          `no spot capacity for ${where} (${capacity.code}); start again, or allow on-demand`,
          { capacity: capacity.code },
        );
      await pending();
      await ctx.report({
        state: 'provisioning',
        progress: 20,
        message: `no spot capacity for ${where}: starting on demand instead (you allowed it)`,
      });
      await this.executor.down(instanceDir, run(20, 25));
      const onDemand = { ...options, spot: false };
      synthInstance(onDemand, instanceDir);
      return { out: await this.executor.up(instanceDir, run(25, 85)), options: onDemand };
    }
  }

  private async waitReady(
    instanceId: string,
    targetUrl: string,
    hubApiUrl: string,
    ctx: ProvisionContext,
    progress: (p: number, m: string) => void,
  ): Promise<void> {
    const timeoutMs = this.deps.settings.readyTimeoutMs;
    const interval = this.deps.pollIntervalMs ?? 1000;
    const started = Date.now();
    const url = `${targetUrl}api`;
    const bootStatus = this.deps.bootStatus;
    progress(0, 'waiting for the machine to boot');
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal.aborted)
        throw new TerraformProvisionError(409, 'cancelled', 'start cancelled');
      // the boot report first: a machine that cannot reach the hub may still answer /api
      const boot = bootStatus ? await bootStatus(instanceId) : { state: 'ready' as const };
      if (boot.state === 'failed') throw bootFailure(boot, hubApiUrl, instanceId);
      if (boot.state === 'ready' && (await this.isReady(url, this.fetchImpl, ctx.signal))) {
        progress(100, 'server is ready');
        return;
      }
      const elapsed = Date.now() - started;
      if (elapsed >= timeoutMs) {
        throw new TerraformProvisionError(
          504,
          'ready_timeout',
          boot.state === 'pending'
            ? `the machine was created but did not report its boot checks within ${Math.round(timeoutMs / 1000)} s (it may not reach the service at its URL; see docs/clouds.md)`
            : `the machine was created but its server did not answer within ${Math.round(timeoutMs / 1000)} s`,
          { instanceId },
        );
      }
      progress(
        Math.min(95, (100 * elapsed) / timeoutMs),
        boot.state === 'pending'
          ? `waiting for the machine's boot checks (attempt ${attempt})`
          : `waiting for the server to answer (attempt ${attempt})`,
      );
      try {
        await this.sleep(interval, ctx.signal);
      } catch {
        throw new TerraformProvisionError(409, 'cancelled', 'start cancelled');
      }
    }
  }

  private translate(err: unknown, secrets: string[]): Error {
    if (err instanceof TerraformProvisionError) return err;
    if (err instanceof TerraformError) {
      if (err.code === 'cancelled')
        return new TerraformProvisionError(
          409,
          'cancelled',
          'start cancelled; terraform state kept for the stop',
        );
      return new TerraformProvisionError(500, 'provision_failed', err.message, {
        step: err.step,
        diagnostics: err.diagnostics.map((d) => ({ summary: d.summary, address: d.address })),
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    let safe = message;
    for (const s of secrets) if (s.length >= 4) safe = safe.split(s).join('[redacted]');
    return new TerraformProvisionError(500, 'provision_failed', safe);
  }

  /** Makes sure the workdir holds a configuration; synthesizes it again from the ref when it doesn't. */
  private ensureWorkdir(instanceId: string, ref: ProviderRef): string | null {
    const workdir =
      typeof ref.workdir === 'string' ? ref.workdir : this.instanceWorkdir(instanceId);
    if (existsSync(join(workdir, SYNTH_FILE))) return workdir;
    if (typeof ref.stack !== 'string') return null;
    const options = JSON.parse(ref.stack) as InstanceOptions;
    mkdirSync(workdir, { recursive: true });
    synthInstance({ ...options, backend: this.stateBackend() }, workdir);
    return workdir;
  }

  async stop(instanceId: string, ref: ProviderRef, ctx: ProvisionContext): Promise<void> {
    this.unwatch(instanceId);
    const workdir = this.ensureWorkdir(instanceId, ref);
    if (!workdir) return; // never got as far as a configuration: nothing was created
    let reports = Promise.resolve();
    const run: RunOptions = {
      signal: ctx.signal,
      onProgress: (e) => {
        reports = reports
          .then(() => ctx.report({ progress: e.progress, message: e.message }))
          .catch(() => undefined);
      },
    };
    try {
      // an instance stack gets a new state schema per start: drop it once nothing is left in it
      await this.executor.down(workdir, { ...run, dropStateSchema: true });
      writeFileSync(join(workdir, DESTROYED_MARKER), `${new Date().toISOString()}\n`);
    } catch (err) {
      throw this.translate(err, []);
    } finally {
      await reports;
    }
  }

  /**
   * Instances whose workdir holds a configuration that may still have cloud resources: applied or
   * half-applied, and not destroyed since. Reconciliation destroys those nobody uses.
   */
  async liveInstanceIds(): Promise<string[]> {
    const root = join(this.deps.settings.workRoot, 'instances');
    if (!existsSync(root)) return [];
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .filter(
        (e) =>
          existsSync(join(root, e.name, SYNTH_FILE)) &&
          !existsSync(join(root, e.name, DESTROYED_MARKER)),
      )
      .map((e) => e.name);
  }

  async adopt(instanceId: string, ref: ProviderRef): Promise<boolean> {
    const workdir = this.ensureWorkdir(instanceId, ref);
    if (!workdir) return false;
    try {
      if (!existsSync(join(workdir, '.terraform'))) await this.executor.init(workdir);
      const out = await this.executor.output(workdir);
      const address = out.address?.value;
      if (typeof address !== 'string' || !address) return false;
      const targetUrl =
        typeof ref.targetUrl === 'string'
          ? ref.targetUrl
          : `http://${address}:${this.deps.settings.singleuserPort}/`;
      this.watch(instanceId, targetUrl, ref);
      return true;
    } catch (err) {
      this.deps.log?.({
        level: 'warn',
        instanceId,
        message: `adopt failed: ${err instanceof Error ? err.message : 'unknown error'}`,
      });
      return false;
    }
  }

  private watch(instanceId: string, targetUrl: string, ref: ProviderRef): void {
    const interval = this.deps.watchIntervalMs ?? 10_000;
    this.unwatch(instanceId);
    const w: Watched = { targetUrl, failures: 0, ref };
    this.watched.set(instanceId, w);
    if (interval <= 0) return;
    const lostAfter = this.deps.lostAfter ?? 3;
    w.timer = setInterval(() => {
      void (async () => {
        const ok = await this.isReady(
          `${targetUrl}api`,
          this.fetchImpl,
          AbortSignal.timeout(interval),
        );
        if (this.watched.get(instanceId) !== w) return;
        w.failures = ok ? 0 : w.failures + 1;
        if (w.failures >= lostAfter) {
          this.unwatch(instanceId);
          this.exitListener?.({
            instanceId,
            exitCode: null,
            errorCode: 'process_lost',
            message: `the machine stopped answering ${lostAfter} health checks in a row (spot eviction, crash or network)`,
          });
        }
      })();
    }, interval);
    w.timer.unref?.();
  }

  private unwatch(instanceId: string): void {
    const w = this.watched.get(instanceId);
    if (w?.timer) clearInterval(w.timer);
    this.watched.delete(instanceId);
  }

  async close(options: { stopInstances: boolean }): Promise<void> {
    const all = [...this.watched.entries()];
    for (const [id] of all) this.unwatch(id);
    if (!options.stopInstances) return;
    const ctx: ProvisionContext = {
      report: async () => undefined,
      signal: new AbortController().signal,
    };
    await Promise.allSettled(all.map(([id, w]) => this.stop(id, w.ref, ctx)));
  }
}
