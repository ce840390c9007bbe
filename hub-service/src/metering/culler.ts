/**
 * Idle culling. `decideIdle` is the rule, kept pure so it can be tested without a hub: when a
 * server is warned and when it is stopped. `Culler` is the pass the meter runs over its cycle's
 * snapshot and acts on those decisions. Whether kernels are busy comes from the instance agent's
 * reports, never from a request to the server. Comparable to jupyterhub-idle-culler, with
 * per-size-class timeouts and a warning first.
 */
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceStore } from '../instances/store.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { CycleReport, MeterSnapshot } from './cycle.js';
import type { IdleStateStore } from './idle-state.js';

export interface IdleInput {
  now: Date;
  readyAt: Date;
  lastActivity: Date | null;
  keepRunningAt: Date | null;
  warnedAt: Date | null;
  /** 0: never idle-culled */
  timeoutSeconds: number;
  warningSeconds: number;
  maxAgeSeconds: number | null;
}

export type IdleDecision =
  | { action: 'none'; idleSeconds: number }
  | { action: 'warn'; idleSeconds: number; idleSince: Date; stopAt: Date }
  | { action: 'stop'; idleSeconds: number; reason: 'idle' | 'max_age' };

/** The latest of the dates given (nulls ignored); one call per running server per cycle. */
function max(...ds: (Date | null)[]): Date {
  let t = -Infinity;
  for (const d of ds) if (d && d.getTime() > t) t = d.getTime();
  return new Date(t);
}

export function decideIdle(i: IdleInput): IdleDecision {
  const idleSince = max(i.readyAt, i.lastActivity, i.keepRunningAt);
  const idleSeconds = Math.max(0, Math.floor((i.now.getTime() - idleSince.getTime()) / 1000));
  if (i.maxAgeSeconds && i.now.getTime() - i.readyAt.getTime() >= i.maxAgeSeconds * 1000) {
    return { action: 'stop', idleSeconds, reason: 'max_age' };
  }
  if (!i.timeoutSeconds) return { action: 'none', idleSeconds };
  const warnedThisIdle = i.warnedAt !== null && i.warnedAt.getTime() >= idleSince.getTime();
  if (
    idleSeconds >= i.timeoutSeconds &&
    warnedThisIdle &&
    i.now.getTime() - i.warnedAt!.getTime() >= i.warningSeconds * 1000
  ) {
    return { action: 'stop', idleSeconds, reason: 'idle' };
  }
  if (!warnedThisIdle && idleSeconds >= Math.max(0, i.timeoutSeconds - i.warningSeconds)) {
    const stopAt = new Date(
      Math.max(
        idleSince.getTime() + i.timeoutSeconds * 1000,
        i.now.getTime() + i.warningSeconds * 1000,
      ),
    );
    return { action: 'warn', idleSeconds, idleSince, stopAt };
  }
  return { action: 'none', idleSeconds };
}

/**
 * Whether an instance's kernels are executing, as its agent last reported (agent/credentials.ts):
 * 'unknown' when no fresh report exists. The service never asks a user's server itself: any
 * credential it sent there would belong to whoever controls that server's code.
 */
export type KernelActivity = (instanceId: string) => Promise<'busy' | 'idle' | 'unknown'>;

export interface CullerDeps {
  idle: IdleStateStore;
  /** busy kernels as the instance's agent reported them (no fresh report: 'unknown') */
  kernels: KernelActivity;
  /**
   * GPU-aware idleness: whether the instance's agent saw a GPU at work lately (null: no fresh
   * sample). A training loop that never touches a kernel message still counts as work.
   */
  gpuBusy?: (instanceId: string) => Promise<boolean | null>;
  notifier: Notifier;
  store: Pick<InstanceStore, 'note'>;
  lifecycle: Pick<Lifecycle, 'stop'>;
  logger: Logger;
  /** seconds between the idle warning and the stop */
  warningSeconds: number;
}

export class Culler {
  constructor(private readonly d: CullerDeps) {}

  /**
   * Warns and stops the idle (or too old) running servers of the snapshot. `exhausted`: users
   * whose budget is spent, whose busy kernels keep nothing running.
   */
  async pass(snap: MeterSnapshot, exhausted: Set<string>, report: CycleReport): Promise<void> {
    const { now, running } = snap;
    if (!running.length) return;
    const states = await this.d.idle.ofRunning();
    const { warningSeconds } = this.d;
    for (const r of running) {
      if (!r.readyAt || !r.targetUrl) continue;
      const limits = snap.limitsOf(r.userName);
      const gpu = snap.classOf(r.sizeId) === 'gpu';
      const st = states.get(r.id);
      const decision = decideIdle({
        now,
        readyAt: r.readyAt,
        lastActivity: snap.lastActivity(r.userName, r.serverName),
        keepRunningAt: st?.keepRunningAt ?? null,
        warnedAt: st?.warnedAt ?? null,
        timeoutSeconds: gpu ? limits.idleTimeoutGpuSeconds : limits.idleTimeoutCpuSeconds,
        warningSeconds,
        maxAgeSeconds: limits.maxAgeSeconds,
      });
      if (decision.action === 'none') continue;
      if (decision.action !== 'stop' || decision.reason === 'idle') {
        // a busy kernel or GPU, as the agent reports it, keeps its server unless the money is
        // gone. A silent agent proves nothing: the hub's activity decides (and the silence is a
        // security event of its own, security/agent-watch.ts), so killing the agent cannot keep
        // a machine running forever.
        if (!exhausted.has(r.userName)) {
          const kernels = await this.d.kernels(r.id);
          const gpuAtWork = gpu && kernels !== 'busy' && (await this.d.gpuBusy?.(r.id)) === true;
          if (kernels === 'busy' || gpuAtWork) {
            report.keptBusy.push(r.id);
            this.d.logger.debug(
              { instance: r.id, kernels, gpuAtWork },
              'meter: idle by the hub, but its agent reports kernels or GPUs at work; not culled',
            );
            continue;
          }
        }
      }
      if (decision.action === 'warn') {
        report.warned.push(r.id);
        const minutes = Math.max(
          1,
          Math.round((decision.stopAt.getTime() - now.getTime()) / 60_000),
        );
        await this.d.idle.warned(r.id, now);
        await this.d.store.note(
          r.id,
          100,
          `idle for ${Math.round(decision.idleSeconds / 60)} min; stops at ${decision.stopAt.toISOString()} unless kept running`,
        );
        await this.d.notifier.send({
          user: r.userName,
          kind: 'idle_stop',
          level: 'warning',
          instanceId: r.id,
          server: r.serverName,
          title: `${r.serverName} is idle and stops in about ${minutes} min`,
          body: `No activity for ${Math.round(decision.idleSeconds / 60)} min on ${r.sizeId}. Choose "Keep running" to keep it.`,
          actions: [{ id: 'keep_running', label: 'Keep running' }],
          dedupeKey: `idle:${r.id}:${decision.idleSince.toISOString()}`,
        });
        continue;
      }
      report.culled.push(r.id);
      const why =
        decision.reason === 'max_age'
          ? `it reached its maximum age of ${Math.round((limits.maxAgeSeconds ?? 0) / 3600)} h`
          : `it was idle for ${Math.round(decision.idleSeconds / 60)} min`;
      this.d.logger.info(
        { instance: r.id, user: r.userName, reason: decision.reason },
        'meter: culling',
      );
      await this.d.store.note(r.id, 100, `stopping: ${why}`);
      await this.d.lifecycle
        .stop(r.userName, r.serverName)
        .catch((err: unknown) => this.d.logger.warn({ err, instance: r.id }, 'cull failed'));
    }
  }
}
