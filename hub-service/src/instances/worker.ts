/**
 * Runs provisioning jobs: claims them from the queue, drives the provisioner, heartbeats, turns
 * progress into events, and records how each start and stop ended. At start it takes over the
 * instances a previous process left running, and a reaper cleans up after workers that died.
 * A stop that ends a resize hands on to the resize workflow (resize.ts), which the reaper resumes.
 * A stop that fails (terraform destroy refused, a cloud error) may leave a machine running and
 * billing: admins are alerted once per streak of failures, the user's progress says so, and the
 * reaper's tick queues the stop again with backoff (stopRetryDelayMs) until it succeeds.
 */
import { eq } from 'drizzle-orm';
import { instanceSecretsRow } from './lifecycle.js';
import type { Cloud } from '@ngsci/contract';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SecretBox } from '../secrets.js';
import type { Db } from '../db/client.js';
import { instanceSecrets } from '../db/schema.js';
import { resolveOffer } from '../catalog.js';
import type { ExitReport, Provisioner, ProvisionContext } from '../provisioners/types.js';
import type { JobQueue, JobRow } from './jobs.js';
import type { AgentCredentials } from '../agent/credentials.js';
import type { InstanceRow, InstanceStore, ResizeTarget } from './store.js';
import { preemptionMessage, preemptionPlan, relaunchTarget } from './preemption.js';
import type { Resizes } from './resize.js';
import type { Notifier } from '../notify/types.js';
import { noticeFailure } from './notices.js';
import type { Catalog } from '@ngsci/contract';
import type { SecurityEvents } from '../security/events.js';
import { scrub } from '../provisioners/terraform/executor.js';
import type { UnfinishedStop } from './jobs.js';
import { databaseTrouble } from '../db/unavailable.js';

/** Waits between attempts to remove a machine: 1, 2, 5, 10, 30 minutes, then every 30 minutes. */
const STOP_RETRY_MINUTES = [1, 2, 5, 10, 30];

/** How long after the `failures`-th failed stop in a row the next one is queued. */
export function stopRetryDelayMs(failures: number): number {
  if (failures <= 0) return 0;
  const i = Math.min(failures, STOP_RETRY_MINUTES.length) - 1;
  return (STOP_RETRY_MINUTES[i] as number) * 60_000;
}

export interface WorkerOptions {
  db: Db;
  store: InstanceStore;
  queue: JobQueue;
  box: SecretBox;
  logger: Logger;
  catalog: () => Catalog;
  /** provisioners by job tag */
  provisioners: Map<string, Provisioner>;
  jobTag: (cloud: Cloud) => string;
  heartbeatSeconds: number;
  staleAfterSeconds: number;
  /** tells users of failed starts and crashes */
  notifier?: Notifier;
  /** how many jobs run at once in this process */
  concurrency?: number;
  /** issues each instance's agent credential before its start */
  agents?: Pick<AgentCredentials, 'issue'>;
  /** resizes waiting on a stop: moved on when it ends, given up when it fails */
  resizes: Pick<Resizes, 'startSuccessor' | 'abandon' | 'resume' | 'close'>;
  /** alerts hub admins (and the audit trail) when a machine could not be removed */
  security?: Pick<SecurityEvents, 'raise'>;
  /** the clock the stop retries' backoff is measured with; default the system's */
  now?: () => Date;
}

export class Worker {
  private running = new Map<number, AbortController>();
  private timer: NodeJS.Timeout | null = null;
  private reaperTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private pumping = false;
  /** a claim failed: it may have committed, and its job be ours (see pump) */
  private claimUnanswered = false;
  private readonly concurrency: number;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: WorkerOptions) {
    this.concurrency = o.concurrency ?? 8;
    for (const p of o.provisioners.values()) p.onExit((r) => void this.onExit(r));
  }

  async start(): Promise<void> {
    await this.recover();
    this.timer = setInterval(() => this.kick(), 1000);
    this.reaperTimer = setInterval(
      () =>
        void this.reap()
          .then(() => this.resumeResizes())
          .then(() => this.retryStops()),
      Math.max(1000, (this.o.staleAfterSeconds * 1000) / 4),
    );
    this.kick();
  }

  /** Looks for work now instead of at the next tick. */
  kick(): void {
    if (this.stopped || this.pumping) return;
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
    });
  }

  private async pump(): Promise<void> {
    const tags = [...this.o.provisioners.keys()];
    if (this.claimUnanswered) {
      // the last claim failed, perhaps after it committed: a job may be ours that nobody runs
      try {
        for (const job of await this.o.queue.claimedHere())
          if (!this.running.has(job.id)) {
            this.o.logger.warn({ job: job.id }, 'took up a job whose claim went unanswered');
            this.launch(job);
          }
        this.claimUnanswered = false;
      } catch (err) {
        this.o.logger.warn({ err }, 'could not look for unanswered claims');
        return;
      }
    }
    while (!this.stopped && this.running.size < this.concurrency) {
      let job: JobRow | null;
      try {
        job = await this.o.queue.claim(tags);
      } catch (err) {
        this.claimUnanswered = true;
        this.o.logger.warn({ err }, 'could not claim a job');
        return;
      }
      if (!job) return;
      this.launch(job);
    }
  }

  private launch(job: JobRow): void {
    const controller = new AbortController();
    this.running.set(job.id, controller);
    const p = this.run(job, controller).finally(() => {
      this.running.delete(job.id);
      this.inFlight.delete(p);
      this.kick();
    });
    this.inFlight.add(p);
  }

  /**
   * Records how a job ended, waiting out a database that is away: a job left `running` would be
   * reaped as lost (a start failed, a stop run twice) though it finished.
   */
  private record(jobId: number, state: 'done' | 'failed' | 'cancelled', error?: string) {
    return this.persist(() => this.o.queue.finish(jobId, state, error));
  }

  /**
   * A write of what already happened outside (a machine started or stopped, a job ended), tried
   * again while the database is away (restarting, unreachable, its disk full) instead of being
   * lost. Any other error, or a shutdown, ends the waiting.
   */
  private async persist<T>(write: () => Promise<T>): Promise<T> {
    for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
      try {
        return await write();
      } catch (err) {
        if (this.stopped || !databaseTrouble(err)) throw err;
        this.o.logger.warn({ err }, 'the database is away; trying the write again');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async run(job: JobRow, controller: AbortController): Promise<void> {
    const log = this.o.logger.child({ job: job.id, instance: job.instanceId, kind: job.kind });
    const beat = setInterval(() => {
      void this.o.queue.heartbeat(job.id).then(
        ({ cancelRequested }) => {
          if (cancelRequested && !controller.signal.aborted)
            controller.abort(new ApiError(409, 'cancelled', 'start cancelled'));
        },
        (err: unknown) => log.warn({ err }, 'heartbeat failed'),
      );
    }, this.o.heartbeatSeconds * 1000);
    try {
      const instance = await this.o.store.get(job.instanceId);
      const provisioner = this.o.provisioners.get(job.tag);
      if (!instance || !provisioner)
        throw new Error(`no instance or provisioner for job ${job.id}`);
      if (job.kind === 'start') await this.runStart(instance, provisioner, controller.signal);
      else await this.runStop(instance, provisioner, controller.signal);
      await this.record(job.id, 'done');
    } catch (err) {
      const cancelled = controller.signal.aborted;
      log[cancelled ? 'info' : 'error'](
        { err: safeError(err) },
        cancelled ? 'job cancelled' : 'job failed',
      );
      await this.record(job.id, cancelled ? 'cancelled' : 'failed', safeError(err).message).catch(
        () => {},
      );
    } finally {
      clearInterval(beat);
    }
  }

  private context(instanceId: string, signal: AbortSignal): ProvisionContext {
    return {
      signal,
      report: async ({ state, progress, message }) => {
        try {
          if (state) {
            const row = await this.o.store.get(instanceId);
            // a stop that arrived meanwhile wins; never move a stopping instance back
            if (
              row &&
              row.state !== state &&
              !['stopping', 'stopped', 'failed'].includes(row.state)
            ) {
              await this.o.store.transition(instanceId, state, progress, message);
              return;
            }
          }
          await this.o.store.note(instanceId, progress, message);
        } catch (err) {
          // a progress line lost to a database restart must not fail a machine that is coming up
          if (!databaseTrouble(err)) throw err;
          this.o.logger.warn({ err, instance: instanceId }, 'progress not recorded');
        }
      },
    };
  }

  private async runStart(
    instance: InstanceRow,
    provisioner: Provisioner,
    signal: AbortSignal,
  ): Promise<void> {
    const secret = await this.o.db
      .select()
      .from(instanceSecrets)
      .where(eq(instanceSecrets.instanceId, instance.id));
    const env = secret[0]
      ? (JSON.parse(
          this.o.box.open(secret[0].ciphertext, instanceSecretsRow(instance.id)),
        ) as Record<string, string>)
      : null;
    try {
      if (!env)
        throw new ApiError(
          500,
          'provision_failed',
          "the server's environment is gone; start it again",
        );
      const { size, offer } = resolveOffer(this.o.catalog(), {
        size: instance.sizeId,
        cloud: instance.cloud as Cloud,
        region: instance.region,
        spot: instance.spot,
      });
      await this.o.store.transition(
        instance.id,
        'provisioning',
        5,
        `provisioning on ${offer.cloud} (${offer.instanceType})`,
      );
      const agentToken = await this.o.agents?.issue(instance.id);
      const result = await provisioner.start(
        {
          ...(agentToken ? { agentToken } : {}),
          instanceId: instance.id,
          user: instance.userName,
          server: instance.serverName,
          size,
          offer,
          spot: instance.spot,
          env,
          baseUrl: instance.baseUrl,
        },
        {
          ...this.context(instance.id, signal),
          switchToOnDemand: () => this.switchToOnDemand(instance),
        },
      );
      // the machine runs and bills from now on: that must reach the database, even one that is
      // restarting at this moment (else the machine would run on, forgotten and unbilled)
      const readyAt = new Date();
      const row = await this.persist(() =>
        this.o.store.transition(instance.id, 'running', 100, 'server is ready', {
          targetUrl: result.targetUrl,
          providerRef: result.ref,
          readyAt,
        }),
      );
      if (!row) {
        // stopped or failed while the provisioner finished: take the machine away again
        await provisioner.stop(
          instance.id,
          result.ref,
          this.context(instance.id, new AbortController().signal),
        );
      }
    } catch (err) {
      if (signal.aborted) {
        // a stop cancelled this start (its stop job finishes the instance); anything else failed it
        const now = await this.o.store.get(instance.id);
        if (now && now.state !== 'stopping') {
          await this.o.store.transition(instance.id, 'failed', 100, 'start cancelled', {
            errorCode: 'cancelled',
            errorMessage: 'the start was cancelled (the service shut down or the job was reaped)',
            stoppedAt: new Date(),
          });
          await this.destroyAfterFailedStart(instance, provisioner);
        }
        throw err;
      }
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, 'provision_failed', safeError(err).message);
      const stoppedAt = new Date();
      await this.persist(() =>
        this.o.store.transition(instance.id, 'failed', 100, `start failed: ${e.message}`, {
          errorCode: e.code,
          errorMessage: e.message,
          stoppedAt,
          exitCode: (e.details as { exitCode?: number } | undefined)?.exitCode ?? null,
        }),
      );
      await noticeFailure(this.o.notifier, this.o.logger, instance, 'start', e.message);
      await this.destroyAfterFailedStart(instance, provisioner);
      throw e;
    } finally {
      await this.o.db.delete(instanceSecrets).where(eq(instanceSecrets.instanceId, instance.id));
    }
  }

  /** A spot start without spot capacity goes on on demand: priced at its offer's on-demand rate. */
  private async switchToOnDemand(instance: InstanceRow): Promise<boolean> {
    const { ratePerHourMicros } = resolveOffer(this.o.catalog(), {
      size: instance.sizeId,
      cloud: instance.cloud as Cloud,
      region: instance.region,
      spot: false,
    });
    const switched = await this.o.store.switchToOnDemand(instance.id, ratePerHourMicros);
    if (switched)
      this.o.logger.info(
        { instance: instance.id, rate: ratePerHourMicros },
        'no spot capacity: the start goes on on demand',
      );
    return switched;
  }

  private async runStop(
    instance: InstanceRow,
    provisioner: Provisioner,
    signal: AbortSignal,
  ): Promise<void> {
    // let a start that is still running notice its cancellation first
    for (let i = 0; i < 100 && (await this.o.queue.pending(instance.id, 'start')); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const fresh = (await this.o.store.get(instance.id)) ?? instance;
    try {
      await provisioner.stop(
        instance.id,
        fresh.providerRef ?? {},
        this.context(instance.id, signal),
      );
    } catch (err) {
      // the old machine may still run: a resize waiting on it must not start a second one
      if (fresh.resizeState === 'stopping')
        await this.o.resizes.abandon(
          instance.id,
          `the old machine did not stop (${safeError(err).message})`,
        );
      if (!signal.aborted) await this.stopFailed(fresh, err);
      throw err;
    }
    const stoppedAt = new Date();
    const stopped = await this.persist(() =>
      this.o.store.transition(instance.id, 'stopped', 100, 'stopped', { stoppedAt }),
    );
    // a failed instance stays failed; its history still says its machine is gone
    if (!stopped) await this.o.store.note(instance.id, 100, 'machine removed');
    // the stop's end is the resize's next step; it runs beside the job, which is done
    else if (stopped.resizeState === 'stopping')
      this.follow(this.o.resizes.startSuccessor(instance.id));
  }

  /**
   * A stop failed: the user's progress says the removal failed and when it is tried again, and
   * the first failure of a streak alerts the admins (later ones only add to the progress and the
   * log, so a machine that refuses for hours is one alert, not dozens).
   */
  private async stopFailed(instance: InstanceRow, err: unknown): Promise<void> {
    const attempt = (await this.o.queue.stopFailures(instance.id)) + 1;
    const why = scrub(safeError(err).message, []).slice(0, 500);
    const minutes = stopRetryDelayMs(attempt) / 60_000;
    await this.o.store.note(
      instance.id,
      100,
      `removing the machine failed (attempt ${attempt}): ${why}; trying again in ${minutes} min`,
    );
    if (attempt > 1) return;
    await this.o.security
      ?.raise({
        kind: 'destroy_failed',
        severity: 'critical',
        message:
          `removing the machine of ${instance.userName}/${instance.serverName} on ${instance.cloud} ` +
          `failed; it may still be running and billing. The service keeps trying. ${why}`,
        user: instance.userName,
        server: instance.serverName,
        instanceId: instance.id,
        details: { cloud: instance.cloud, region: instance.region, attempt, error: why },
      })
      .catch((e: unknown) =>
        this.o.logger.error({ err: e, instance: instance.id }, 'could not raise destroy_failed'),
      );
  }

  /**
   * Queues the stop again for instances whose last stop failed (after its backoff) or was cut
   * short by a shutdown (at once). The jobs table is the record: nothing here lives in memory.
   */
  private async retryStops(): Promise<void> {
    if (this.stopped) return;
    let due: UnfinishedStop[];
    try {
      due = await this.o.queue.unfinishedStops();
    } catch (err) {
      this.o.logger.warn({ err }, 'could not look for failed stops');
      return;
    }
    const now = (this.o.now ?? (() => new Date()))().getTime();
    let queued = false;
    for (const s of due) {
      if (now - s.endedAt.getTime() < stopRetryDelayMs(s.failures)) continue;
      if (!(await this.o.queue.retryStop(s.instanceId, s.tag, s.jobId))) continue;
      queued = true;
      await this.o.store.note(
        s.instanceId,
        100,
        `trying again to remove the machine (attempt ${s.failures + 1})`,
      );
      this.o.logger.warn(
        { instance: s.instanceId, failures: s.failures },
        'queued the stop of an instance again',
      );
    }
    if (queued) this.kick();
  }

  /** Keeps a resize's promise so that close() waits for it. */
  private follow(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.catch(() => {}).finally(() => this.inFlight.delete(p));
  }

  private async resumeResizes(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.o.resizes.resume((p) => this.follow(p));
    } catch (err) {
      this.o.logger.warn({ err }, 'could not resume resizes');
    }
  }

  /**
   * A terraform start that fails or is interrupted leaves whatever it created, and its state, in
   * place: a stop job (durable, reaped and retried like any job) destroys it, so nothing runs
   * unbilled. Local starts clean up after themselves.
   */
  private async destroyAfterFailedStart(
    instance: InstanceRow,
    provisioner: Provisioner,
  ): Promise<void> {
    if (provisioner.kind !== 'terraform' || (await this.o.queue.pending(instance.id, 'stop')))
      return;
    await this.o.queue.enqueue(instance.id, 'stop', this.o.jobTag(instance.cloud as Cloud));
    await this.o.store.note(instance.id, 100, 'removing what the failed start created');
    this.kick();
  }

  private async onExit(report: ExitReport): Promise<void> {
    const row = await this.o.store.get(report.instanceId);
    if (!row || row.state === 'stopping' || row.state === 'stopped' || row.state === 'failed')
      return;
    const plan = preemptionPlan(row, report);
    if (plan.preempted) return this.preempted(row, plan.relaunch);
    this.o.logger.warn(
      { instance: report.instanceId, exitCode: report.exitCode, code: report.errorCode },
      'instance ended on its own',
    );
    const failed = await this.o.store.transition(report.instanceId, 'failed', 100, report.message, {
      errorCode: report.errorCode,
      errorMessage: report.message,
      exitCode: report.exitCode,
      stoppedAt: new Date(),
    });
    if (failed) await noticeFailure(this.o.notifier, this.o.logger, failed, 'run', report.message);
  }

  /**
   * The cloud took a spot machine back (preemption.ts): the instance ends `stopped` now, which
   * closes its billing where the machine ended; with a relaunch, the resize workflow starts the
   * same server again on the chosen capacity (a new instance at its own rate). A cloud machine's
   * remains (disks, addresses of the workspace) are removed by a stop job, as after a failed start.
   */
  private async preempted(row: InstanceRow, relaunch: 'on-demand' | 'spot' | null): Promise<void> {
    let target: ResizeTarget | null = null;
    if (relaunch) {
      try {
        target = relaunchTarget(this.o.catalog(), row, relaunch);
      } catch (err) {
        // the size or offer left the catalog since the launch: nothing to start again on
        this.o.logger.warn({ err, instance: row.id }, 'preempted: no offer to start again on');
        relaunch = null;
      }
    }
    const words = preemptionMessage(relaunch, row.serverName);
    const stopped = await this.persist(() =>
      this.o.store.transition(row.id, 'stopped', 100, words.event, {
        errorCode: 'preempted',
        errorMessage: words.title,
        stoppedAt: new Date(),
        ...(target ? { resizeTarget: target, resizeState: 'starting' as const } : {}),
      }),
    );
    if (!stopped) return;
    this.o.logger.warn(
      { instance: row.id, user: row.userName, relaunch: relaunch ?? 'none' },
      'spot machine preempted',
    );
    const provisioner = this.o.provisioners.get(this.o.jobTag(row.cloud as Cloud));
    if (provisioner?.kind === 'terraform' && !(await this.o.queue.pending(row.id, 'stop'))) {
      await this.o.queue.enqueue(row.id, 'stop', this.o.jobTag(row.cloud as Cloud));
      this.kick();
    }
    if (target) this.follow(this.o.resizes.startSuccessor(row.id));
    try {
      await this.o.notifier?.send({
        user: row.userName,
        kind: 'failure',
        level: 'warning',
        title: words.title,
        body: words.body,
        instanceId: row.id,
        server: row.serverName,
        dedupeKey: `preempted:${row.id}`,
      });
    } catch (err) {
      this.o.logger.warn({ err, instance: row.id }, 'could not send the preemption notice');
    }
  }

  /**
   * After a restart: running instances are adopted (or marked lost, which closes their billing),
   * jobs of dead workers are reaped, and resizes that stopped their old machine go on.
   */
  private async recover(): Promise<void> {
    for (const row of await this.o.store.inStates(['running'])) {
      const provisioner = this.o.provisioners.get(this.o.jobTag(row.cloud as Cloud));
      if (!provisioner) continue;
      const alive = await provisioner.adopt(row.id, row.providerRef ?? {}).catch(() => false);
      if (!alive) {
        await this.onExit({
          instanceId: row.id,
          exitCode: null,
          errorCode: 'process_lost',
          message: 'the server was gone when the service restarted',
        });
      }
    }
    await this.reap();
    await this.resumeResizes();
    await this.retryStops();
  }

  private async reap(): Promise<void> {
    try {
      const { requeued, failed } = await this.o.queue.reap(this.o.staleAfterSeconds);
      for (const job of failed) {
        const row = await this.o.store.transition(
          job.instanceId,
          'failed',
          100,
          'start interrupted: the service restarted while provisioning',
          {
            errorCode: 'provision_failed',
            errorMessage: 'the service restarted while provisioning; start the server again',
            stoppedAt: new Date(),
          },
        );
        if (row) await this.o.queue.enqueue(job.instanceId, 'stop', job.tag);
      }
      if (requeued.length || failed.length) {
        this.o.logger.warn(
          { requeued: requeued.length, failed: failed.length },
          'reaped jobs of lost workers',
        );
        this.kick();
      }
    } catch (err) {
      this.o.logger.warn({ err }, 'reaper failed');
    }
  }

  /** Stops taking jobs, cancels the running ones and waits for them. */
  async close(): Promise<void> {
    this.stopped = true;
    this.o.resizes.close();
    if (this.timer) clearInterval(this.timer);
    if (this.reaperTimer) clearInterval(this.reaperTimer);
    for (const c of this.running.values())
      c.abort(new ApiError(503, 'cancelled', 'service shutting down'));
    await Promise.allSettled([...this.inFlight]);
  }
}

function safeError(err: unknown): { message: string } {
  return { message: err instanceof Error ? err.message : String(err) };
}
