/** What the meter benches seed by the thousand: rows of running local instances. */
import type { instances } from '../../hub-service/src/db/schema.js';

/** User `name`'s default server, running on a local cpu-small instance since `readyAt`. */
export function runningInstance(name: string, readyAt: Date): typeof instances.$inferInsert {
  return {
    userName: name,
    serverName: 'default',
    sizeId: 'cpu-small',
    cloud: 'local',
    region: 'localhost',
    spot: false,
    state: 'running',
    listRatePerHourMicros: 96_000,
    baseUrl: `/user/${name}/`,
    targetUrl: `http://127.0.0.1:1/user/${name}/`,
    createdAt: readyAt,
    readyAt,
  };
}
