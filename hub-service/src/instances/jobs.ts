/**
 * The provisioning job queue, in Postgres. Any replica may run jobs: a job is claimed with
 * FOR UPDATE SKIP LOCKED, its worker heartbeats while it runs, and a reaper hands back or fails
 * jobs whose worker stopped heartbeating (a crash, a kill -9, a lost node).
 */
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { jobs } from '../db/schema.js';

export type JobRow = typeof jobs.$inferSelect;
export type JobKind = JobRow['kind'];

export class JobQueue {
  readonly workerId = `worker-${randomUUID().slice(0, 8)}`;

  constructor(private readonly db: Db) {}

  async enqueue(instanceId: string, kind: JobKind, tag: string): Promise<JobRow> {
    const rows = await this.db
      .insert(jobs)
      .values({ instanceId, kind, tag, state: 'queued' })
      .returning();
    return rows[0] as JobRow;
  }

  /** Claims the oldest queued job with one of the tags, or null. */
  async claim(tags: string[]): Promise<JobRow | null> {
    const tagList = sql.join(
      tags.map((t) => sql`${t}`),
      sql`, `,
    );
    const result = await this.db.execute(sql`
      update jobs set state = 'running', claimed_by = ${this.workerId}, heartbeat_at = now(),
                      attempts = attempts + 1
      where id = (
        select id from jobs where state = 'queued' and tag in (${tagList})
        order by id for update skip locked limit 1
      )
      returning id`);
    const id = rowsOf(result)[0]?.id;
    if (id === undefined) return null;
    const rows = await this.db
      .select()
      .from(jobs)
      .where(eq(jobs.id, Number(id)));
    return rows[0] ?? null;
  }

  async heartbeat(jobId: number): Promise<{ cancelRequested: boolean }> {
    const rows = await this.db
      .update(jobs)
      .set({ heartbeatAt: sql`now()` })
      .where(and(eq(jobs.id, jobId), eq(jobs.claimedBy, this.workerId)))
      .returning({ cancelRequested: jobs.cancelRequested });
    return { cancelRequested: rows[0]?.cancelRequested ?? true };
  }

  async finish(
    jobId: number,
    state: 'done' | 'failed' | 'cancelled',
    error?: string,
  ): Promise<void> {
    await this.db
      .update(jobs)
      .set({ state, error: error ?? null, finishedAt: sql`now()` })
      .where(eq(jobs.id, jobId));
  }

  /** Asks whoever runs the instance's start job to give up; queued starts are cancelled at once. */
  async cancelStarts(instanceId: string): Promise<void> {
    await this.db
      .update(jobs)
      .set({ cancelRequested: true })
      .where(
        and(eq(jobs.instanceId, instanceId), eq(jobs.kind, 'start'), eq(jobs.state, 'running')),
      );
    await this.db
      .update(jobs)
      .set({ state: 'cancelled', finishedAt: sql`now()` })
      .where(
        and(eq(jobs.instanceId, instanceId), eq(jobs.kind, 'start'), eq(jobs.state, 'queued')),
      );
  }

  async pending(instanceId: string, kind: JobKind): Promise<boolean> {
    const rows = await this.db
      .select({ id: jobs.id })
      .from(jobs)
      .where(
        and(
          eq(jobs.instanceId, instanceId),
          eq(jobs.kind, kind),
          inArray(jobs.state, ['queued', 'running']),
        ),
      )
      .limit(1);
    return rows.length > 0;
  }

  /**
   * Running jobs whose heartbeat is older than `staleSeconds`: their worker is gone. Stop jobs go
   * back to the queue (stopping twice is safe); start jobs are failed, since the server's
   * environment may be half-applied, and the caller cleans up.
   */
  async reap(staleSeconds: number): Promise<{ requeued: JobRow[]; failed: JobRow[] }> {
    const stale = sql`state = 'running' and heartbeat_at < now() - make_interval(secs => ${staleSeconds})`;
    const requeued = await this.db
      .update(jobs)
      .set({ state: 'queued', claimedBy: null })
      .where(and(sql`${stale}`, eq(jobs.kind, 'stop')))
      .returning();
    const failed = await this.db
      .update(jobs)
      .set({ state: 'failed', error: 'worker lost', finishedAt: sql`now()` })
      .where(and(sql`${stale}`, eq(jobs.kind, 'start')))
      .returning();
    return { requeued, failed };
  }
}

/** postgres.js returns an array, PGlite an object with `rows`. */
export function rowsOf(result: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(result)) return result as Array<Record<string, unknown>>;
  return ((result as { rows?: unknown[] }).rows ?? []) as Array<Record<string, unknown>>;
}
