/**
 * Watches running servers: every NGSCI_RUNNING_POLL_INTERVAL seconds each running instance is
 * asked `GET <target>api`. One that stops answering for `failuresBeforeLost` checks in a row is
 * recorded as failed (process_lost), which closes its billing, and a stop job takes the machine
 * away. Provisioners report crashes they see sooner (a process exit); this catches the rest:
 * a hung server, a VM that vanished.
 */
import type { Cloud } from '@ngsci/contract';
import type { Logger } from '../logger.js';
import type { JobQueue } from './jobs.js';
import type { InstanceStore } from './store.js';
import type { Notifier } from '../notify/types.js';
import { noticeFailure } from './notices.js';

export interface HealthOptions {
  store: InstanceStore;
  queue: JobQueue;
  logger: Logger;
  jobTag: (cloud: Cloud) => string;
  intervalSeconds: number;
  failuresBeforeLost?: number;
  notifier?: Notifier;
  fetch?: typeof fetch;
}

export class HealthWatch {
  private timer: NodeJS.Timeout | null = null;
  private readonly failures = new Map<string, number>();
  private readonly limit: number;
  private readonly fetchImpl: typeof fetch;
  private running = false;

  constructor(private readonly o: HealthOptions) {
    this.limit = o.failuresBeforeLost ?? 3;
    this.fetchImpl = o.fetch ?? fetch;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.o.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One round over every running instance; exposed for tests. */
  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const rows = await this.o.store.inStates(['running']);
      const seen = new Set<string>();
      await Promise.all(
        rows.map(async (row) => {
          seen.add(row.id);
          if (!row.targetUrl) return;
          if (await this.answers(row.targetUrl)) {
            this.failures.delete(row.id);
            return;
          }
          const n = (this.failures.get(row.id) ?? 0) + 1;
          this.failures.set(row.id, n);
          if (n < this.limit) return;
          this.failures.delete(row.id);
          const failed = await this.o.store.transition(
            row.id,
            'failed',
            100,
            `the server stopped answering (${n} checks in a row)`,
            {
              errorCode: 'process_lost',
              errorMessage: 'the server stopped answering',
              stoppedAt: new Date(),
            },
          );
          if (failed) {
            this.o.logger.warn(
              { instance: row.id },
              'running server stopped answering; stopping it',
            );
            await noticeFailure(
              this.o.notifier,
              this.o.logger,
              failed,
              'run',
              'the server stopped answering; it was stopped',
            );
            await this.o.queue.enqueue(row.id, 'stop', this.o.jobTag(row.cloud as Cloud));
          }
        }),
      );
      for (const id of this.failures.keys()) if (!seen.has(id)) this.failures.delete(id);
    } catch (err) {
      this.o.logger.warn({ err }, 'health check round failed');
    } finally {
      this.running = false;
    }
  }

  private async answers(targetUrl: string): Promise<boolean> {
    try {
      const res = await this.fetchImpl(`${targetUrl}api`, { signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      return res.status < 500;
    } catch {
      return false;
    }
  }
}
