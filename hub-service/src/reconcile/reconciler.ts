/**
 * Reconciliation: at start and every NGSCI_RECONCILE_INTERVAL, compares what the service believes
 * with what JupyterHub and the provisioners have, and cleans up so nothing runs unbilled:
 *   - an instance whose hub server is gone (deleted user, a server the hub forgot) is stopped once
 *     it has been gone for NGSCI_RECONCILE_GRACE (orphans.ts, which the meter's hub listing feeds
 *     too, so running servers are checked every meter cycle as well);
 *   - an instance stuck in `stopping` with no stop job gets a new stop job, unless its stop failed:
 *     the worker retries failed stops with backoff and alerts admins (worker.ts);
 *   - a start that lost its job (no job queued or running) is failed and its machine destroyed;
 *   - a terraform workdir that may still hold cloud resources (applied or half-applied, not
 *     destroyed since) with no active instance is destroyed: through a stop job when the
 *     instance row exists, directly when it does not;
 *   - expired bootstrap tokens lose their sealed environment.
 * The hub being unreachable never counts as "server gone": then this round stops nothing.
 */
import { ACTIVE_STATES, toHubServerName, type Cloud, type InstanceState } from '@ngsci/contract';
import type { BootstrapTokens } from '../bootstrap/tokens.js';
import type { HubClient, HubUserModel } from '../hub.js';
import type { JobQueue } from '../instances/jobs.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceRow, InstanceStore } from '../instances/store.js';
import type { Logger } from '../logger.js';
import type { Provisioner } from '../provisioners/types.js';
import { Orphans } from './orphans.js';

/** A provisioner that can say which instances may still hold cloud resources (the terraform one). */
export interface LeftoverSource {
  liveInstanceIds(): Promise<string[]>;
}

const hasLeftovers = (p: Provisioner): p is Provisioner & LeftoverSource =>
  typeof (p as Partial<LeftoverSource>).liveInstanceIds === 'function';

export interface ReconcilerDeps {
  store: InstanceStore;
  queue: JobQueue;
  hub: HubClient;
  lifecycle: Pick<Lifecycle, 'bridgeStop'>;
  logger: Logger;
  /** provisioners by job tag */
  provisioners: Map<string, Provisioner>;
  jobTag: (cloud: Cloud) => string;
  bootstrap?: Pick<BootstrapTokens, 'purgeExpired'>;
  /** NGSCI_RECONCILE_GRACE: how long a server may be missing from the hub, or a start without a job */
  graceSeconds: number;
  /** the orphan clocks shared with the meter (services.ts); one of its own when absent */
  orphans?: Orphans;
  intervalSeconds: number;
  /** wakes the worker after jobs were queued */
  kick?: () => void;
  now?: () => number;
}

export interface ReconcileReport {
  /** instances stopped because their hub server was gone for the grace period */
  orphansStopped: string[];
  /** `stopping` instances that had no stop job and got one */
  stopsRequeued: string[];
  /** starts that had lost their job: failed, and their machine destroyed */
  startsFailed: string[];
  /** instances with leftover cloud resources that got a stop job */
  leftoversQueued: string[];
  /** workdirs without any instance row, destroyed directly */
  strayWorkdirsDestroyed: string[];
  expiredTokensPurged: number;
  /** a step that could not run this round (hub unreachable...) */
  skipped: string[];
}

const STARTING: InstanceState[] = ['requested', 'provisioning', 'starting'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Reconciler {
  private readonly now: () => number;
  private readonly orphanWatch: Orphans;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReconcileReport> | null = null;

  constructor(private readonly d: ReconcilerDeps) {
    this.now = d.now ?? Date.now;
    this.orphanWatch =
      d.orphans ??
      new Orphans({
        store: d.store,
        lifecycle: d.lifecycle,
        logger: d.logger,
        graceSeconds: d.graceSeconds,
      });
  }

  /** Runs once now, then every interval. */
  async start(): Promise<void> {
    await this.runOnce().catch((err: unknown) =>
      this.d.logger.warn({ err }, 'reconciliation failed'),
    );
    this.timer = setInterval(() => {
      void this.runOnce().catch((err: unknown) =>
        this.d.logger.warn({ err }, 'reconciliation failed'),
      );
    }, this.d.intervalSeconds * 1000);
    this.timer.unref?.();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One round; rounds never overlap. */
  runOnce(): Promise<ReconcileReport> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async round(): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      orphansStopped: [],
      stopsRequeued: [],
      startsFailed: [],
      leftoversQueued: [],
      strayWorkdirsDestroyed: [],
      expiredTokensPurged: 0,
      skipped: [],
    };
    const active = await this.d.store.inStates([...ACTIVE_STATES]);
    await this.orphans(active, report);
    await this.stuck(active, report);
    await this.leftovers(report);
    if (this.d.bootstrap) report.expiredTokensPurged = await this.d.bootstrap.purgeExpired();
    const acted =
      report.orphansStopped.length +
      report.stopsRequeued.length +
      report.startsFailed.length +
      report.leftoversQueued.length +
      report.strayWorkdirsDestroyed.length;
    if (acted) {
      this.d.logger.warn(
        { reconcile: { ...report, expiredTokensPurged: undefined } },
        'reconciliation cleaned up',
      );
      this.d.kick?.();
    }
    return report;
  }

  /** Instances whose hub server is gone: stopped after the grace period (orphans.ts). */
  private async orphans(active: InstanceRow[], report: ReconcileReport): Promise<void> {
    const candidates = active.filter((r) => r.state !== 'stopping');
    this.orphanWatch.keepOnly(new Set(candidates.map((r) => r.id)));
    const users = new Map<string, HubUserModel | null>();
    for (const row of candidates) {
      if (users.has(row.userName)) continue;
      let model: HubUserModel | null;
      try {
        model = await this.d.hub.getUser(row.userName);
      } catch {
        report.skipped.push('orphans: JupyterHub did not answer');
        return; // unreachable is not "gone": stop nothing this round
      }
      if (model && !model.servers) {
        // the hub answered without servers (the service's token lacks read:servers): unknown, not gone
        report.skipped.push(
          'orphans: JupyterHub does not show servers to this service (needs read:servers)',
        );
        return;
      }
      users.set(row.userName, model);
    }
    const present = (row: InstanceRow) => {
      const servers = users.get(row.userName)?.servers;
      return (
        !!servers && Object.prototype.hasOwnProperty.call(servers, toHubServerName(row.serverName))
      );
    };
    report.orphansStopped.push(
      ...(await this.orphanWatch.observe(candidates, present, this.now())),
    );
  }

  /** Stops that lost their job, and starts that lost theirs. */
  private async stuck(active: InstanceRow[], report: ReconcileReport): Promise<void> {
    const now = this.now();
    const old = (d: Date | null) => !!d && now - d.getTime() >= 60_000;
    for (const row of active) {
      const tag = this.d.jobTag(row.cloud as Cloud);
      if (!this.d.provisioners.has(tag)) continue;
      if (row.state === 'stopping') {
        if (
          !old(row.stopRequestedAt ?? row.createdAt) ||
          (await this.d.queue.pending(row.id, 'stop')) ||
          (await this.d.queue.stopFailures(row.id)) > 0
        )
          continue;
        await this.d.queue.enqueue(row.id, 'stop', tag);
        await this.d.store.note(row.id, 0, 'stopping again: the previous stop did not finish');
        report.stopsRequeued.push(row.id);
      } else if (STARTING.includes(row.state as InstanceState)) {
        if (
          now - row.createdAt.getTime() < this.d.graceSeconds * 1000 ||
          (await this.d.queue.pending(row.id, 'start'))
        )
          continue;
        const failed = await this.d.store.transition(
          row.id,
          'failed',
          100,
          'start lost: no worker is provisioning it',
          {
            errorCode: 'provision_failed',
            errorMessage:
              'the start was lost (no worker was provisioning it); start the server again',
            stoppedAt: new Date(now),
          },
        );
        if (failed && !(await this.d.queue.pending(row.id, 'stop')))
          await this.d.queue.enqueue(row.id, 'stop', tag);
        report.startsFailed.push(row.id);
      }
    }
  }

  /** Workdirs that may still hold cloud resources while no active instance uses them. */
  private async leftovers(report: ReconcileReport): Promise<void> {
    const done = new Set<Provisioner>();
    for (const [tag, p] of this.d.provisioners) {
      if (done.has(p) || !hasLeftovers(p)) continue;
      done.add(p);
      for (const id of await p.liveInstanceIds()) {
        const row = UUID.test(id) ? await this.d.store.get(id) : null;
        if (row && ACTIVE_STATES.includes(row.state as InstanceState)) continue;
        if (row) {
          // a failed stop is the worker's to retry, with its backoff
          if ((await this.d.queue.pending(id, 'stop')) || (await this.d.queue.stopFailures(id)) > 0)
            continue;
          const rowTag = this.d.jobTag(row.cloud as Cloud);
          await this.d.queue.enqueue(id, 'stop', this.d.provisioners.has(rowTag) ? rowTag : tag);
          await this.d.store.note(id, 100, 'removing cloud resources left behind');
          report.leftoversQueued.push(id);
          continue;
        }
        // no instance row at all (a database restored from backup, a copied workdir): destroy it here
        try {
          await p.stop(
            id,
            {},
            { report: async () => undefined, signal: AbortSignal.timeout(3_600_000) },
          );
          report.strayWorkdirsDestroyed.push(id);
        } catch (err) {
          this.d.logger.error(
            { instance: id, err: err instanceof Error ? err.message : String(err) },
            'could not destroy a stray terraform workdir',
          );
        }
      }
    }
  }
}
