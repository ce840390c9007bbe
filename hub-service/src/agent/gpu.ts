/**
 * GPU samples from instance agents: stored for the usage panel, and read by idle detection, which
 * should count a machine whose GPUs are busy as active even when no kernel message moved.
 */
import { and, desc, eq } from 'drizzle-orm';
import type { GpuSample, GpuStatus } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { gpuSamples } from '../db/schema.js';

export class GpuStore {
  constructor(private readonly db: Db) {}

  async record(
    user: string,
    server: string,
    instanceId: string | null,
    gpus: GpuSample[],
  ): Promise<void> {
    await this.db
      .insert(gpuSamples)
      .values({ userName: user, serverName: server, instanceId, gpus });
  }

  async latest(user: string, server: string): Promise<GpuStatus> {
    const [row] = await this.db
      .select()
      .from(gpuSamples)
      .where(and(eq(gpuSamples.userName, user), eq(gpuSamples.serverName, server)))
      .orderBy(desc(gpuSamples.id))
      .limit(1);
    return {
      server,
      instanceId: row?.instanceId ?? null,
      reportedAt: row?.at.toISOString() ?? null,
      gpus: row?.gpus ?? [],
    };
  }

  /**
   * For idle detection: the newest sample of an instance if it is younger than `maxAgeSeconds`,
   * and whether any GPU in it was at or above `busyPercent` utilisation.
   */
  async busy(
    instanceId: string,
    opts: { maxAgeSeconds: number; busyPercent: number; now?: Date },
  ): Promise<boolean | null> {
    const [row] = await this.db
      .select()
      .from(gpuSamples)
      .where(eq(gpuSamples.instanceId, instanceId))
      .orderBy(desc(gpuSamples.id))
      .limit(1);
    const now = opts.now ?? new Date();
    if (!row || now.getTime() - row.at.getTime() > opts.maxAgeSeconds * 1000) return null;
    return row.gpus.some((g) => (g.utilizationPercent ?? 0) >= opts.busyPercent);
  }
}
