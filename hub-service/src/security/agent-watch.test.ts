/**
 * The agent watch over the real app and PGlite: a silent agent raises one security event and a
 * notice to the hub's admins (and, when configured, stops the server); an agent that reports again
 * raises 'agent_back'; old GPU samples are pruned; instances without an agent are left alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { harness, type Harness } from '../testing/harness.js';
import { SecurityEvents } from './events.js';
import { AgentWatch } from './agent-watch.js';
import type { Notice } from '../notify/types.js';
import { gpuSamples } from '../db/schema.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => h.close());

async function running(user: string, cloud = 'aws') {
  const row = await h.services.store.create(
    {
      userName: user,
      serverName: 'default',
      sizeId: 'cpu-small',
      cloud,
      region: 'r',
      spot: false,
      state: 'requested',
      listRatePerHourMicros: 1,
      baseUrl: `/user/${user}/`,
    },
    'requested',
  );
  return (await h.services.store.transition(row!.id, 'running', 100, 'ready', {
    readyAt: new Date(),
  }))!;
}

describe('agent watch', () => {
  test('a silent agent is reported once, its server stopped when configured; reporting again clears it', async () => {
    const notices: Notice[] = [];
    const stops: string[] = [];
    const security = new SecurityEvents({
      db: h.database.db,
      logger: h.services.logger,
      notifier: { send: async (n) => void notices.push(n) },
      admins: async () => ['root-admin'],
    });
    const watch = new AgentWatch({
      db: h.database.db,
      logger: h.services.logger,
      store: h.services.store,
      security,
      stopServer: async (user, server) => void stops.push(`${user}/${server}`),
      expectsAgent: (cloud) => cloud !== 'local',
      silentAfterSeconds: 1,
      stopSilent: true,
      retentionSeconds: 3600,
      intervalSeconds: 30,
    });
    const quiet = await running('w-quiet');
    const chatty = await running('w-chatty');
    const local = await running('w-local', 'local');
    const quietToken = await h.services.agents.issue(quiet.id);
    const chattyToken = await h.services.agents.issue(chatty.id);
    await h.services.agents.issue(local.id);

    const post = (token: string) =>
      h.request('/api/v1/agent/kernels', {
        method: 'POST',
        token,
        body: JSON.stringify({ total: 0, busy: 0 }),
      });
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await post(chattyToken)).status, 202);
    const r1 = await watch.check();
    assert.ok(r1.silent.includes(quiet.id), 'the quiet agent is reported');
    assert.ok(!r1.silent.includes(local.id), 'a local instance without an agent is not');
    assert.deepEqual(stops, ['w-quiet/default']);
    const alert = notices.find((n) => n.kind === 'security' && n.instanceId === quiet.id);
    assert.ok(alert, 'admins are notified');
    assert.equal(alert.user, 'root-admin');
    assert.match(alert.body, /has not reported for 1 s/);
    const events = await security.list({ kind: 'agent_silent' });
    assert.ok(events.some((e) => e.instanceId === quiet.id && e.user === 'w-quiet'));

    // a second check does not raise it again
    const r2 = await watch.check();
    assert.ok(!r2.silent.includes(quiet.id));

    // the agent comes back
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await post(quietToken)).status, 202);
    const r3 = await watch.check();
    assert.ok(r3.back.includes(quiet.id));
    assert.ok((await security.list({ kind: 'agent_back' })).some((e) => e.instanceId === quiet.id));
  });

  test('GPU samples older than the retention are pruned', async () => {
    const inst = await running('w-gpu');
    const old = new Date(Date.now() - 2 * 3600_000);
    await h.database.db.insert(gpuSamples).values([
      { userName: 'w-gpu', serverName: 'default', instanceId: inst.id, gpus: [], at: old },
      { userName: 'w-gpu', serverName: 'default', instanceId: inst.id, gpus: [] },
    ]);
    const watch = new AgentWatch({
      db: h.database.db,
      logger: h.services.logger,
      store: h.services.store,
      security: { raise: async () => ({}) as never },
      stopServer: async () => {},
      expectsAgent: () => false,
      silentAfterSeconds: 120,
      stopSilent: false,
      retentionSeconds: 3600,
      intervalSeconds: 30,
    });
    const r = await watch.check();
    assert.ok(r.gpuSamplesPruned >= 1);
    const left = await h.database.db.select().from(gpuSamples);
    assert.ok(left.every((s) => s.at.getTime() > old.getTime()));
  });
});
