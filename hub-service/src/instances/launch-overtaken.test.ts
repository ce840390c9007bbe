/**
 * A launch overtaken by a stop (found by API fuzzing): the hub cancels the spawn it was waiting
 * on and answers the launch with a bare 500. The launch then answers 409 `instance_busy`, not a
 * 502 that reads as a hub fault; a hub 500 without such a stop stays a 502.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BridgeStartRequest } from '@ngsci/contract';
import { buildCatalog } from '../catalog.js';
import { openMemoryDatabase, seed, type Database } from '../db/client.js';
import { ApiError } from '../errors.js';
import { createLogger } from '../logger.js';
import { SecretBox } from '../secrets.js';
import { JobQueue } from './jobs.js';
import { Lifecycle } from './lifecycle.js';
import { InstanceStore } from './store.js';

let db: Database;
before(async () => {
  db = await openMemoryDatabase();
  await db.migrate();
  await seed(db.db);
});
after(() => db?.close());

const catalog = buildCatalog({ clouds: ['local'], defaultCloud: 'local' });
const hubCancelled = () =>
  new ApiError(502, 'hub_refused', 'JupyterHub refused to start the server: Internal Server Error');

/** A Lifecycle whose hub starts the server through the bridge half, then does `then`. */
function lifecycleWith(
  then: (lifecycle: Lifecycle, store: InstanceStore, hubServer: string) => Promise<void>,
) {
  const store = new InstanceStore(db.db);
  const lifecycle: Lifecycle = new Lifecycle({
    db: db.db,
    store,
    queue: new JobQueue(db.db),
    hub: {
      groupsOf: async () => [],
      async startServer(user: string, server: string, options: object) {
        await lifecycle.bridgeStart({
          user,
          server,
          options,
          env: {},
          baseUrl: `/user/${user}/${server}/`,
        } as BridgeStartRequest);
        await then(lifecycle, store, server);
        return 'pending' as const;
      },
      stopServer: async () => 'pending' as const,
    },
    box: new SecretBox('overtaken-test-secret-0123456789'),
    logger: createLogger('silent'),
    catalog: () => catalog,
    jobTag: () => 'local',
    kick: () => {},
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 10))),
    resizes: { abandon: async () => {} },
  });
  return lifecycle;
}

describe('a launch overtaken by a stop', () => {
  test('answers 409 instance_busy when the instance it made was stopped meanwhile', async () => {
    const lifecycle = lifecycleWith(async (_l, store) => {
      // the stop that came while the hub waited: the bridge stopped the new instance
      const row = (await store.active('olga', 'default'))!;
      await store.transition(row.id, 'stopping', 100, 'stopping: asked by the user');
      throw hubCancelled();
    });
    await assert.rejects(
      lifecycle.launch('olga', { server: 'default', size: 'cpu-small', spot: false }),
      (err: unknown) =>
        err instanceof ApiError &&
        err.status === 409 &&
        err.code === 'instance_busy' &&
        /stopped while it was starting/.test(err.message),
    );
  });

  test('also when the hub answers first and the stop reaches the service after', async () => {
    // as JupyterHub does it: it cancels the spawn, answers the launch 500, then stops the server
    const lifecycle = lifecycleWith(async (l, _s, hubServer) => {
      setTimeout(() => void l.bridgeStop('rosa', hubServer), 30);
      throw hubCancelled();
    });
    await assert.rejects(
      lifecycle.launch('rosa', { server: 'default', size: 'cpu-small', spot: false }),
      (err: unknown) => err instanceof ApiError && err.status === 409,
    );
  });

  test('a hub 500 with the instance still starting stays a 502 hub_refused', async () => {
    const lifecycle = lifecycleWith(async () => {
      throw hubCancelled();
    });
    await assert.rejects(
      lifecycle.launch('piotr', { server: 'default', size: 'cpu-small', spot: false }),
      (err: unknown) => err instanceof ApiError && err.status === 502 && err.code === 'hub_refused',
    );
  });

  test("an instance stopped before this launch is not this launch's", async () => {
    const first = lifecycleWith(async () => {});
    const row = await first.launch('quinn', { server: 'default', size: 'cpu-small', spot: false });
    const store = new InstanceStore(db.db);
    await store.transition(row.id, 'stopped', 100, 'stopped');
    const again = lifecycleWith(async (_l, s) => {
      // this launch's own row is starting; the stopped one is older
      assert.ok(await s.active('quinn', 'default'));
      throw hubCancelled();
    });
    await assert.rejects(
      again.launch('quinn', { server: 'default', size: 'cpu-small', spot: false }),
      (err: unknown) => err instanceof ApiError && err.status === 502,
    );
  });
});
