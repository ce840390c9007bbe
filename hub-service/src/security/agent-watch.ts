/**
 * Watches the instance agents. A running instance whose agent has not reported for
 * NGSCI_AGENT_SILENT_AFTER raises an 'agent_silent' security event (admins get a notice) and, with
 * NGSCI_AGENT_SILENT_STOP, its server is stopped: killing the agent is visible, never quiet. An
 * agent heard from again raises 'agent_back'. The same loop prunes GPU samples past their
 * retention and runs the audit's retention (exported before anything is deleted).
 */
import { and, eq, isNotNull, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { gpuSamples, instanceAgents, instances } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { InstanceStore } from '../instances/store.js';
import { silentAgents } from '../agent/credentials.js';
import type { SecurityEvents } from './events.js';

export interface AgentWatchOptions {
  db: Db;
  logger: Logger;
  store: Pick<InstanceStore, 'note'>;
  security: Pick<SecurityEvents, 'raise'>;
  stopServer: (user: string, server: string) => Promise<unknown>;
  /** whether instances on this cloud run an agent at all (local ones only with an agent command) */
  expectsAgent: (cloud: string) => boolean;
  silentAfterSeconds: number;
  stopSilent: boolean;
  retentionSeconds: number;
  intervalSeconds: number;
  /** further housekeeping on the same schedule (the audit's retention) */
  housekeeping?: (now: Date) => Promise<void>;
  now?: () => Date;
}

export interface WatchReport {
  silent: string[];
  back: string[];
  stopped: string[];
  gpuSamplesPruned: number;
}

export class AgentWatch {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly o: AgentWatchOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running)
        this.running = this.check()
          .catch((err: unknown) => this.o.logger.warn({ err }, 'agent watch failed'))
          .finally(() => (this.running = null));
    }, this.o.intervalSeconds * 1000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async check(): Promise<WatchReport> {
    const now = (this.o.now ?? (() => new Date()))();
    const report: WatchReport = { silent: [], back: [], stopped: [], gpuSamplesPruned: 0 };
    const cutoff = new Date(now.getTime() - this.o.silentAfterSeconds * 1000);

    const cloudOf = new Map<string, string>();
    for (const a of await silentAgents(this.o.db, cutoff)) {
      if (a.silentSince) continue;
      const [row] = await this.o.db
        .select({ cloud: instances.cloud })
        .from(instances)
        .where(eq(instances.id, a.instanceId));
      cloudOf.set(a.instanceId, row?.cloud ?? '');
      if (!this.o.expectsAgent(row?.cloud ?? '')) continue;
      // one replica wins the row; the others see silent_since set and move on
      const claimed = await this.o.db
        .update(instanceAgents)
        .set({ silentSince: now })
        .where(
          and(
            eq(instanceAgents.instanceId, a.instanceId),
            sql`${instanceAgents.silentSince} is null`,
          ),
        )
        .returning({ id: instanceAgents.instanceId });
      if (!claimed.length) continue;
      report.silent.push(a.instanceId);
      const last = a.lastSeenAt
        ? `last heard ${a.lastSeenAt.toISOString()}`
        : 'never heard from since the start';
      await this.o.security.raise({
        kind: 'agent_silent',
        severity: 'warning',
        user: a.user,
        server: a.server,
        instanceId: a.instanceId,
        message: `the agent of ${a.user}/${a.server} has not reported for ${this.o.silentAfterSeconds} s (${last}); data reads and GPU use on it are not being recorded${this.o.stopSilent ? '; the server is being stopped' : ''}`,
        details: { lastSeenAt: a.lastSeenAt?.toISOString() ?? null },
        dedupeKey: `agent_silent:${a.instanceId}:${now.toISOString()}`,
      });
      await this.o.store.note(a.instanceId, 100, 'agent silent: reported to the admins');
      if (this.o.stopSilent) {
        await this.o.store.note(a.instanceId, 100, 'stopping: its agent went silent');
        await this.o
          .stopServer(a.user, a.server)
          .then(() => report.stopped.push(a.instanceId))
          .catch((err: unknown) =>
            this.o.logger.warn({ err, instance: a.instanceId }, 'stopping a silent agent failed'),
          );
      }
    }

    // agents heard from again after an alert
    const back = await this.o.db
      .update(instanceAgents)
      .set({ silentSince: null })
      .where(
        and(
          isNotNull(instanceAgents.silentSince),
          sql`${instanceAgents.lastSeenAt} > ${instanceAgents.silentSince}`,
        ),
      )
      .returning({ id: instanceAgents.instanceId });
    for (const { id } of back) {
      report.back.push(id);
      const [row] = await this.o.db
        .select({ user: instances.userName, server: instances.serverName })
        .from(instances)
        .where(eq(instances.id, id));
      await this.o.security.raise({
        kind: 'agent_back',
        severity: 'info',
        user: row?.user ?? null,
        server: row?.server ?? null,
        instanceId: id,
        message: `the agent of ${row?.user}/${row?.server} reports again`,
      });
    }

    const pruned = await this.o.db
      .delete(gpuSamples)
      .where(lt(gpuSamples.at, new Date(now.getTime() - this.o.retentionSeconds * 1000)))
      .returning({ id: gpuSamples.id });
    report.gpuSamplesPruned = pruned.length;
    await this.o.housekeeping?.(now);
    return report;
  }
}
