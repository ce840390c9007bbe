/**
 * Boot reports: after the bootstrap exchange and before its single-user server starts, a cloud
 * machine checks what a user would otherwise find out the hard way (the hub's API answers from the
 * machine, the GPU is visible inside the container, the image has the agent, the notebook's user
 * cannot become root) and posts the outcome with its agent credential. The newest report of each
 * instance is kept on its agent row, in Postgres, so any replica's readiness wait can read it.
 *
 * A failed report while the instance is still starting only stores the report: the terraform
 * provisioner's readiness wait reads `status()` and fails the start, and the worker destroys what
 * the failed start made. A failed report for an instance already running (a reboot: its
 * environment lived in tmpfs and its bootstrap token is spent) takes the lost-machine path the
 * health watch takes: failed with `process_lost` (billing ends), the user told, a stop job
 * destroys the machine.
 */
import { eq } from 'drizzle-orm';
import type { BootFailureCode, BootReport, BootStatus, Cloud } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instanceAgents } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { JobQueue } from '../instances/jobs.js';
import { noticeFailure } from '../instances/notices.js';
import type { InstanceStore } from '../instances/store.js';
import type { Notifier } from '../notify/types.js';

export interface BootReportsDeps {
  db: Db;
  store: Pick<InstanceStore, 'get' | 'transition' | 'note'>;
  queue: Pick<JobQueue, 'enqueue'>;
  logger: Logger;
  jobTag: (cloud: Cloud) => string;
  notifier?: Notifier;
  now?: () => Date;
}

const WHAT: Record<BootFailureCode, string> = {
  hub_unreachable: 'the machine cannot reach the hub',
  gpu_unavailable: 'the GPU is not usable on the machine',
  agent_missing: 'the image has no ngsci agent',
  user_privileged: "the notebook's user could become root on the machine",
  rebooted: 'the machine restarted and its server cannot come back',
};

export class BootReports {
  constructor(private readonly d: BootReportsDeps) {}

  /** Stores the machine's report; a failure of a running instance ends it (see the top). */
  async record(instanceId: string, report: BootReport): Promise<void> {
    const failed = report.stage === 'failed' ? report : null;
    await this.d.db
      .update(instanceAgents)
      .set({
        bootStage: report.stage,
        bootCode: failed?.code ?? null,
        bootMessage: failed?.message ?? null,
        bootAt: (this.d.now ?? (() => new Date()))(),
      })
      .where(eq(instanceAgents.instanceId, instanceId));
    if (!failed) {
      await this.d.store.note(instanceId, 90, 'machine checks passed: starting the server');
      return;
    }
    const what = WHAT[failed.code];
    const row = await this.d.store.get(instanceId);
    if (row?.state !== 'running') {
      // still starting: the provisioner's readiness wait reads this and fails the start
      await this.d.store.note(instanceId, 90, `${what}: ${failed.message}`);
      return;
    }
    const ended = await this.d.store.transition(instanceId, 'failed', 100, what, {
      errorCode: 'process_lost',
      errorMessage: `${what}: ${failed.message}`,
      stoppedAt: new Date(),
    });
    if (!ended) return;
    this.d.logger.warn(
      { instance: instanceId, code: failed.code },
      'running machine reported a failed boot; stopping it',
    );
    await noticeFailure(
      this.d.notifier,
      this.d.logger,
      ended,
      'run',
      `${what}; it was stopped and its machine removed (your home disk is kept). Start the server again.`,
    );
    await this.d.queue.enqueue(instanceId, 'stop', this.d.jobTag(ended.cloud as Cloud));
  }

  /** The newest report of the instance's machine; `pending` until it has posted one. */
  async status(instanceId: string): Promise<BootStatus> {
    const [row] = await this.d.db
      .select({
        stage: instanceAgents.bootStage,
        code: instanceAgents.bootCode,
        message: instanceAgents.bootMessage,
      })
      .from(instanceAgents)
      .where(eq(instanceAgents.instanceId, instanceId));
    if (!row?.stage) return { state: 'pending' };
    if (row.stage === 'ready') return { state: 'ready' };
    return {
      state: 'failed',
      ...(row.code ? { code: row.code } : {}),
      ...(row.message ? { message: row.message } : {}),
    };
  }
}
