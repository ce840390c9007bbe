/**
 * What instance agents report about their machine: GPU samples (for the usage panel and
 * GPU-aware idle detection). Only the newest samples matter; old ones may be pruned.
 */
import { bigserial, index, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { ts } from '../columns.js';

export const gpuSamples = pgTable(
  'gpu_samples',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userName: text('user_name').notNull(),
    serverName: text('server_name').notNull(),
    instanceId: text('instance_id'),
    gpus: jsonb('gpus')
      .$type<
        Array<{
          index: number;
          name: string;
          utilizationPercent: number | null;
          memoryUsedMiB: number | null;
          memoryTotalMiB: number | null;
        }>
      >()
      .notNull(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    index('gpu_samples_user_server').on(t.userName, t.serverName, t.id),
    index('gpu_samples_instance').on(t.instanceId, t.id),
  ],
);
