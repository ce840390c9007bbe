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

  /** Queues a job; `db` is a transaction when the job stands or falls with other writes. */
  async enqueue(instanceId: string, kind: JobKind, tag: string, db: Db = this.db): Promise<JobRow> {
    const rows = await db
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

  /**
   * Jobs running in this worker's name. A claim whose answer was lost (the database restarted
   * between its commit and its reply) leaves one that nobody runs: the worker takes it up.
   */
  async claimedHere(): Promise<JobRow[]> {
    return this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.state, 'running'), eq(jobs.claimedBy, this.workerId)));
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

  /** How many stop jobs of the instance failed since its last successful stop (its failure streak). */
  async stopFailures(instanceId: string): Promise<number> {
    const result = await this.db.execute(sql`
      select count(*)::int as n from jobs
      where instance_id = ${instanceId} and kind = 'stop' and state = 'failed'
        and id > coalesce((select max(id) from jobs where instance_id = ${instanceId}
                           and kind = 'stop' and state = 'done'), 0)`);
    return Number(rowsOf(result)[0]?.n ?? 0);
  }

  /**
   * Instances still `stopping` (or `failed`) whose newest stop job did not finish — it failed, or
   * was cancelled by a shutdown — and nothing is queued for them: their machine may still run.
   * With each, its failure streak and when that newest stop ended.
   */
  async unfinishedStops(): Promise<UnfinishedStop[]> {
    const result = await this.db.execute(sql`
      select j.id, j.instance_id, j.tag, j.finished_at,
        (select count(*)::int from jobs f where f.instance_id = j.instance_id and f.kind = 'stop'
           and f.state = 'failed' and f.id > coalesce((select max(d.id) from jobs d
             where d.instance_id = j.instance_id and d.kind = 'stop' and d.state = 'done'), 0)
        ) as failures
      from jobs j join instances i on i.id = j.instance_id
      where i.state in ('stopping', 'failed') and j.kind = 'stop' and j.state in ('failed', 'cancelled')
        and j.id = (select max(x.id) from jobs x where x.instance_id = j.instance_id and x.kind = 'stop')`);
    return rowsOf(result).map((r) => ({
      jobId: Number(r.id),
      instanceId: String(r.instance_id),
      tag: String(r.tag),
      failures: Number(r.failures),
      endedAt: r.finished_at ? new Date(r.finished_at as string | Date) : new Date(0),
    }));
  }

  /**
   * Queues another stop after `afterJobId`, unless one already was (another replica got there
   * first). Returns whether this call queued it.
   */
  async retryStop(instanceId: string, tag: string, afterJobId: number): Promise<boolean> {
    const result = await this.db.execute(sql`
      insert into jobs (instance_id, kind, tag, state)
      select ${instanceId}, 'stop', ${tag}, 'queued'
      where not exists (select 1 from jobs where instance_id = ${instanceId} and kind = 'stop'
                        and id > ${afterJobId})
      returning id`);
    return rowsOf(result).length > 0;
  }
}

export interface UnfinishedStop {
  /** the newest stop job, which failed or was cancelled */
  jobId: number;
  instanceId: string;
  tag: string;
  /** failed stops since the last successful one */
  failures: number;
  endedAt: Date;
}

/** postgres.js returns an array, PGlite an object with `rows`. */
export function rowsOf(result: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(result)) return result as Array<Record<string, unknown>>;
  return ((result as { rows?: unknown[] }).rows ?? []) as Array<Record<string, unknown>>;
}
