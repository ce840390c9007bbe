/**
 * Agent credentials on the real Postgres server (the harness runs on PGlite, which binds values
 * that postgres-js refuses): the agent watch's query finds a running instance whose agent went
 * quiet and leaves one that reported after the cutoff.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Database } from '../db/client.js';
import { instances } from '../db/schema.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { AgentCredentials, silentAgents } from './credentials.js';

let pg: FreshPostgres;
let database: Database;
before(async () => {
  pg = await freshPostgres('ngsci_agents');
  database = await pg.open();
});
after(async () => pg?.drop());

async function runningInstance(user: string): Promise<string> {
  const [row] = await database.db
    .insert(instances)
    .values({
      userName: user,
      serverName: 'default',
      sizeId: 'cpu-small',
      cloud: 'aws',
      region: 'us-east-1',
      state: 'running',
      listRatePerHourMicros: 96_000,
      baseUrl: `/user/${user}/`,
    })
    .returning();
  return row!.id;
}

test('silentAgents on Postgres: a credential issued before the cutoff and never used is silent; a fresh one is not', async () => {
  const hourAgo = Date.now() - 3_600_000;
  const quiet = await runningInstance('quiet');
  const fresh = await runningInstance('fresh');
  await new AgentCredentials(database.db, { now: () => hourAgo }).issue(quiet);
  await new AgentCredentials(database.db).issue(fresh);
  const silent = await silentAgents(database.db, new Date(Date.now() - 60_000));
  assert.deepEqual(
    silent.map((a) => a.user),
    ['quiet'],
  );
});
