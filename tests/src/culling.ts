/** What the idle culler leaves in an instance's history, checked the same way by every test. */
import assert from 'node:assert/strict';
import type postgres from 'postgres';

/**
 * Asserts that the culler warned about the idle server before it stopped it, from the instance's
 * own event history (what the researcher reads in the sidebar's progress and in the hub).
 */
export async function assertWarnedThenCulled(sql: postgres.Sql, instanceId: string): Promise<void> {
  const events = (
    await sql<
      Array<{ message: string }>
    >`select message from instance_events where instance_id = ${instanceId} order by id`
  ).map((e) => e.message);
  const warned = events.findIndex((m) => /^idle for .* stops at/.test(m));
  const stopped = events.findIndex((m) => /^stopping: it was idle/.test(m));
  assert.ok(warned >= 0, `warned first: ${events.join(' | ')}`);
  assert.ok(stopped > warned, `then stopped: ${events.join(' | ')}`);
}
