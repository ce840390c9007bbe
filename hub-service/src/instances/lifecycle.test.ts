/**
 * Launch limits under concurrency and with the hub failing: ten launches at once against a
 * concurrency limit of 1 start exactly one instance, on the real Postgres server at 127.0.0.1:5432
 * (two pools: two service replicas; a fresh database dropped afterwards) and on PGlite; and a hub
 * that cannot tell a user's groups refuses the launch instead of skipping the group budgets.
 * The hub here is a test double that, like JupyterHub, calls the bridge half on a start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { and, eq, inArray } from 'drizzle-orm';
import { ACTIVE_STATES, type BridgeStartRequest } from '@ngsci/contract';
import { buildCatalog } from '../catalog.js';
import { openMemoryDatabase, seed, type Database } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { instances, instanceSecrets, quotas } from '../db/schema.js';
import { ApiError } from '../errors.js';
import { HubClient } from '../hub.js';
import { createLogger } from '../logger.js';
import { Ledger } from '../metering/ledger.js';
import { Quotas } from '../metering/quotas.js';
import { SecretBox } from '../secrets.js';
import { JobQueue } from './jobs.js';
import { instanceSecretsRow, Lifecycle } from './lifecycle.js';
import { InstanceStore } from './store.js';

let pg: FreshPostgres;
let pgA: Database;
let pgB: Database;
let lite: Database;

before(async () => {
  pg = await freshPostgres('ngsci_lifecycle');
  pgA = await pg.open();
  await seed(pgA.db);
  pgB = await pg.open();
  lite = await openMemoryDatabase();
  await lite.migrate();
  await seed(lite.db);
});

after(async () => {
  await pg?.drop();
  await lite?.close();
});

const catalog = buildCatalog({ clouds: ['local'], defaultCloud: 'local' });
const box = new SecretBox('lifecycle-test-secret-0123456789');

type GroupsOf = (user: string) => Promise<string[]>;

/** One service replica's Lifecycle over `db`, with a hub double that calls its bridge half. */
function replica(db: Database, groupsOf: GroupsOf = async () => []): Lifecycle {
  const hub = {
    groupsOf,
    async startServer(user: string, hubServer: string, options: object) {
      const req = {
        user,
        server: hubServer,
        options,
        env: { JUPYTERHUB_API_TOKEN: `server-token-of-${hubServer}` },
        baseUrl: `/user/${user}/${hubServer}/`,
      } as BridgeStartRequest;
      await lifecycle.bridgeStart(req);
      return 'pending' as const;
    },
    async stopServer() {
      return 'pending' as const;
    },
  };
  const quotaGuard = new Quotas({
    db: db.db,
    ledger: new Ledger(db.db),
    hub: hub as unknown as HubClient,
    catalog: () => catalog,
    defaults: { idleTimeoutCpuSeconds: 0, idleTimeoutGpuSeconds: 0, maxAgeSeconds: 0 },
    settings: { homeGb: 0, homeGbMonthMicros: 0, defaultPlan: 'private' },
  });
  const lifecycle = new Lifecycle({
    db: db.db,
    store: new InstanceStore(db.db),
    queue: new JobQueue(db.db),
    hub,
    box,
    logger: createLogger('silent'),
    catalog: () => catalog,
    jobTag: () => 'local',
    kick: () => {},
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 10))),
    quotaGuard,
    resizes: { abandon: async () => {} },
  });
  return lifecycle;
}

async function limit(db: Database, user: string, maxConcurrent: number): Promise<void> {
  await db.db.insert(quotas).values({ subjectKind: 'user', subjectName: user, maxConcurrent });
}

async function activeOf(db: Database, user: string): Promise<number> {
  const rows = await db.db
    .select({ id: instances.id })
    .from(instances)
    .where(and(eq(instances.userName, user), inArray(instances.state, [...ACTIVE_STATES])));
  return rows.length;
}

/** Ten launches of ten servers at once, spread over the given replicas. */
async function tenLaunches(replicas: Lifecycle[], user: string) {
  return Promise.allSettled(
    Array.from({ length: 10 }, (_, i) =>
      replicas[i % replicas.length]!.launch(user, {
        server: `s${i}`,
        size: 'cpu-small',
        spot: false,
      }),
    ),
  );
}

function assertOneStarted(results: PromiseSettledResult<unknown>[]): void {
  const ok = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(
    ok.length,
    1,
    `exactly one launch starts: ${refused.map((r) => String(r.reason)).join('; ')}`,
  );
  for (const r of refused) {
    assert.ok(r.reason instanceof ApiError, String(r.reason));
    assert.equal(r.reason.code, 'quota_exceeded', r.reason.message);
    assert.equal(r.reason.status, 403);
  }
}

describe('a concurrency limit of 1 holds under ten launches at once', () => {
  test('Postgres, two replicas', async () => {
    await limit(pgA, 'para-pg', 1);
    assertOneStarted(await tenLaunches([replica(pgA), replica(pgB)], 'para-pg'));
    assert.equal(await activeOf(pgA, 'para-pg'), 1);
  });

  test('PGlite', async () => {
    await limit(lite, 'para-lite', 1);
    assertOneStarted(await tenLaunches([replica(lite)], 'para-lite'));
    assert.equal(await activeOf(lite, 'para-lite'), 1);
  });

  test('a limit of 3 lets exactly three start', async () => {
    await limit(pgA, 'three', 3);
    const results = await tenLaunches([replica(pgA), replica(pgB)], 'three');
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    assert.equal(await activeOf(pgA, 'three'), 3);
  });
});

describe("a starting server's environment", () => {
  test('is sealed to its own instance row: copied to another row it does not open', async () => {
    const lifecycle = replica(lite);
    const a = await lifecycle.launch('sealer', { server: 'a', size: 'cpu-small', spot: false });
    const b = await lifecycle.launch('sealer', { server: 'b', size: 'cpu-small', spot: false });
    const sealed = async (id: string) =>
      (await lite.db.select().from(instanceSecrets).where(eq(instanceSecrets.instanceId, id)))[0]!
        .ciphertext;
    const envA = await sealed(a.id);
    assert.ok(!envA.includes('server-token'));
    assert.deepEqual(JSON.parse(box.open(envA, instanceSecretsRow(a.id))), {
      JUPYTERHUB_API_TOKEN: 'server-token-of-a',
    });
    assert.throws(() => box.open(envA, instanceSecretsRow(b.id)));
    assert.equal(
      JSON.parse(box.open(await sealed(b.id), instanceSecretsRow(b.id))).JUPYTERHUB_API_TOKEN,
      'server-token-of-b',
    );
  });
});

describe('the hub cannot tell the groups', () => {
  test('the launch is refused with 503 hub_unreachable and nothing starts', async () => {
    // a hub whose API does not answer at all: the real client, its fetch failing
    const down = new HubClient({
      apiUrl: 'http://hub.invalid/hub/api',
      token: 'service-token',
      fetch: async () => {
        throw new TypeError('fetch failed');
      },
    });
    const lifecycle = replica(lite, (user) => down.groupsOf(user));
    await assert.rejects(
      lifecycle.launch('grouped', { server: 'g', size: 'cpu-small', spot: false }),
      (err: unknown) =>
        err instanceof ApiError &&
        err.status === 503 &&
        err.code === 'hub_unreachable' &&
        /group quotas and budgets of grouped/.test(err.message),
    );
    assert.equal(await activeOf(lite, 'grouped'), 0);
  });

  test('a hub answer without groups (a token without read:users:groups) is refused too', async () => {
    const noGroups = new HubClient({
      apiUrl: 'http://hub.invalid/hub/api',
      token: 'service-token',
      fetch: async () => Response.json({ name: 'grouped', admin: false }),
    });
    await assert.rejects(noGroups.groupsOf('grouped'), /read:users:groups/);
    const known = new HubClient({
      apiUrl: 'http://hub.invalid/hub/api',
      token: 'service-token',
      fetch: async () => Response.json({ name: 'grouped', admin: false, groups: ['lab'] }),
    });
    assert.deepEqual(await known.groupsOf('grouped'), ['lab']);
  });

  test('the group budget the hub names is applied: a spent hard group budget refuses', async () => {
    await lite.db.insert(quotas).values({
      subjectKind: 'group',
      subjectName: 'broke-lab',
      monthlyBudgetMicros: 0,
      hardStop: true,
    });
    const lifecycle = replica(lite, async () => ['broke-lab']);
    await assert.rejects(
      lifecycle.launch('member', { server: 'm', size: 'cpu-small', spot: false }),
      (err: unknown) => err instanceof ApiError && err.code === 'budget_exhausted',
    );
  });

  test('a bridge refusal for a limit keeps its status through the hub (403, not 502)', async () => {
    const hub = new HubClient({
      apiUrl: 'http://hub.invalid/hub/api',
      token: 'service-token',
      fetch: async () =>
        Response.json(
          {
            status: 500,
            message:
              'Unhandled error starting server: quota_exceeded: at most 1 concurrent instance(s)',
          },
          { status: 500 },
        ),
    });
    await assert.rejects(
      hub.startServer('u', 's', {}),
      (err: unknown) =>
        err instanceof ApiError && err.status === 403 && err.code === 'quota_exceeded',
    );
  });
});
