/**
 * The idle_state table: per running instance, when "Keep running" last reset its idle clock and
 * when it was last warned. The culler reads it once per pass and writes only what it decides.
 */
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { idleState, instances } from '../db/schema.js';

export type IdleStateRow = typeof idleState.$inferSelect;

export class IdleStateStore {
  constructor(private readonly db: Db) {}

  /** The idle state of every running instance that has one, by instance id. */
  async ofRunning(): Promise<Map<string, IdleStateRow>> {
    const rows = await this.db
      .select({ s: idleState })
      .from(idleState)
      .innerJoin(instances, eq(instances.id, idleState.instanceId))
      .where(eq(instances.state, 'running'));
    return new Map(rows.map(({ s }) => [s.instanceId, s]));
  }

  /** The idle warning went out at `at`: the stop may follow once the warning period has passed. */
  async warned(instanceId: string, at: Date): Promise<void> {
    await this.db
      .insert(idleState)
      .values({ instanceId, warnedAt: at })
      .onConflictDoUpdate({ target: idleState.instanceId, set: { warnedAt: at } });
  }

  /** "Keep running": the idle clock starts again at `at`, and any warning is forgotten. */
  async keepRunning(instanceId: string, at: Date): Promise<void> {
    await this.db
      .insert(idleState)
      .values({ instanceId, keepRunningAt: at, warnedAt: null })
      .onConflictDoUpdate({
        target: idleState.instanceId,
        set: { keepRunningAt: at, warnedAt: null },
      });
  }
}
