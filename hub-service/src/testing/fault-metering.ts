/**
 * What the fault tests share for metering: a running instance the meter bills, a meter loop with
 * the test's clock and the service's advisory lock, and the ledger recomputed row by row.
 */
import assert from 'node:assert/strict';
import type postgres from 'postgres';
import type { Database } from '../db/client.js';
import { instances } from '../db/schema.js';
import type { HubClient } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import { buildMeter } from '../metering/index.js';
import { advisoryLock, type Meter } from '../metering/meter.js';
import type { Harness } from './harness.js';

export interface LedgerRow {
  started_at: Date;
  ended_at: Date;
  billed_from: number;
  billed_to: number;
  amount_micros: number;
  final: boolean;
}

/** A running instance, ready at `readyAt`, on a cloud tag the test's worker does not serve. */
export async function meteredInstance(
  database: Database,
  user: string,
  readyAt: Date,
  ratePerHourMicros: number,
): Promise<string> {
  const [row] = await database.db
    .insert(instances)
    .values({
      userName: user,
      serverName: 'default',
      sizeId: 'cpu-small',
      cloud: 'aws',
      region: 'us-east-1',
      state: 'running',
      listRatePerHourMicros: ratePerHourMicros,
      baseUrl: `/user/${user}/`,
      readyAt,
      createdAt: readyAt,
    })
    .returning();
  return row!.id;
}

/**
 * The service's meter over the harness's parts, its loop started: every 0.25 s, accruing every
 * cycle, on the test's clock, with an advisory lock on `lockUrl` when given (the service's own
 * lock, on one connection of its own). Hub, culling and orphans are out of the way.
 */
export function startMeter(
  h: Harness,
  database: Database,
  opts: { now: () => Date; lockUrl?: string },
): Meter {
  const meter = buildMeter(h.services.metering, {
    db: database.db,
    hub: { listActiveUsers: async () => [] } as unknown as HubClient,
    logger: h.services.logger,
    store: h.services.store,
    lifecycle: { stop: async () => null } as unknown as Lifecycle,
    notifier: { send: async () => {} },
    orphans: { fromListing: async () => ({ unknownServers: [], orphansClosed: [] }) },
    kernels: async () => 'unknown' as const,
    settings: {
      ...h.services.metering.settings,
      intervalSeconds: 0.25,
      accrueEverySeconds: 0,
      homeGb: 0,
      cull: { ...h.services.metering.settings.cull, enabled: false },
    },
    ...(opts.lockUrl ? { lock: advisoryLock(opts.lockUrl) } : {}),
    now: opts.now,
  });
  meter.start();
  return meter;
}

export async function ledgerOf(direct: postgres.Sql, instanceId: string): Promise<LedgerRow[]> {
  return [
    ...(await direct<LedgerRow[]>`
      select started_at, ended_at, billed_from::int, billed_to::int, amount_micros::int, final
      from usage_intervals where meter_key = ${instanceId} order by started_at`),
  ];
}

/** The ledger recomputed: contiguous from readyAt, no row across an hour, every second once. */
export function assertContiguous(rows: LedgerRow[], readyAt: Date, upTo: Date, what: string) {
  assert.ok(rows.length > 0, `${what}: no rows`);
  assert.equal(rows[0]!.started_at.getTime(), readyAt.getTime(), `${what}: starts at readyAt`);
  assert.equal(rows[0]!.billed_from, 0);
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1]!, rows[i]!];
    assert.equal(
      b.started_at.toISOString(),
      a.ended_at.toISOString(),
      `${what}: row ${i} starts where row ${i - 1} ends (no gap, no overlap)`,
    );
    assert.equal(b.billed_from, a.billed_to, `${what}: row ${i} bills on from row ${i - 1}`);
  }
  for (const r of rows) {
    assert.equal(
      Math.floor((r.ended_at.getTime() - 1) / 3_600_000),
      Math.floor(r.started_at.getTime() / 3_600_000),
      `${what}: a row stays within its hour`,
    );
  }
  const last = rows[rows.length - 1]!;
  assert.equal(last.ended_at.toISOString(), upTo.toISOString(), `${what}: billed up to ${upTo}`);
  const seconds = rows.reduce((a, r) => a + (r.billed_to - r.billed_from), 0);
  assert.equal(seconds, (upTo.getTime() - readyAt.getTime()) / 1000, `${what}: every second once`);
}
