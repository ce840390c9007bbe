/**
 * Reconciliation with the real app over PGlite, a scripted provisioner and a JupyterHub whose
 * answers the test sets: servers the hub forgot are stopped after the grace period, leftovers
 * of failed starts are destroyed, and an unreachable hub stops nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HubClient } from '../hub.js';
import { createLogger } from '../logger.js';
import { jobTagFor } from '../services.js';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { Reconciler } from './reconciler.js';

/** A scripted provisioner that also reports workdirs with leftover cloud resources, like the terraform one. */
class LeftoverProvisioner extends ScriptedProvisioner {
  live: string[] = [];
  async liveInstanceIds(): Promise<string[]> {
    return this.live.filter((id) => !this.stopped.includes(id));
  }
}

const prov = new LeftoverProvisioner();
let h: Harness;
/** user → hub server names the fake hub reports; 'down' makes it unreachable */
let hubServers: Record<string, string[]> | 'down' | 'no-scope' = {};
let now = Date.parse('2026-03-01T12:00:00Z');
let reconciler: Reconciler;

before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]) });
  const hub = new HubClient({
    apiUrl: 'http://hub.test/hub/api',
    token: 'service-token-0123456789',
    fetch: async (input) => {
      if (hubServers === 'down') throw new TypeError('fetch failed');
      const name = decodeURIComponent(new URL(String(input)).pathname.split('/').pop() ?? '');
      if (hubServers === 'no-scope') return Response.json({ name, admin: false });
      const servers = hubServers[name];
      if (!servers) return Response.json({ status: 404, message: 'no such user' }, { status: 404 });
      return Response.json({
        name,
        admin: false,
        servers: Object.fromEntries(
          servers.map((s) => [s, { name: s, ready: true, pending: null }]),
        ),
      });
    },
  });
  reconciler = new Reconciler({
    store: h.services.store,
    queue: h.services.queue,
    hub,
    lifecycle: h.services.lifecycle,
    logger: createLogger('silent'),
    provisioners: new Map([['local', prov]]),
    jobTag: jobTagFor,
    bootstrap: h.services.bootstrap,
    graceSeconds: 600,
    intervalSeconds: 300,
    kick: () => h.services.worker.kick(),
    now: () => now,
  });
});
after(async () => {
  await reconciler.close();
  await h.close();
});

async function launch(user: string, server = ''): Promise<string> {
  const res = await h.bridge('/start', {
    method: 'POST',
    body: JSON.stringify({
      user,
      server,
      options: { size: 'cpu-small', cloud: 'local' },
      env: { JUPYTERHUB_API_TOKEN: 'tok-FAKE' },
      baseUrl: `/user/${user}/`,
    }),
  });
  assert.equal(res.status, 202);
  const id = ((await res.json()) as { instance: { id: string } }).instance.id;
  await eventually(async () => (await h.services.store.get(id))?.state === 'running', 'running');
  return id;
}

const state = async (id: string) => (await h.services.store.get(id))?.state;

describe('reconciliation', () => {
  test('an instance whose hub server is gone is stopped only after the grace period', async () => {
    const kept = await launch('rc-kept');
    const gone = await launch('rc-gone');
    hubServers = { 'rc-kept': [''], 'rc-gone': [] };
    let report = await reconciler.runOnce();
    assert.deepEqual(report.orphansStopped, [], 'within the grace period nothing is stopped');
    now += 300_000;
    report = await reconciler.runOnce();
    assert.deepEqual(report.orphansStopped, []);
    now += 301_000;
    report = await reconciler.runOnce();
    assert.deepEqual(report.orphansStopped, [gone]);
    await eventually(async () => (await state(gone)) === 'stopped', 'the orphan stopped');
    assert.ok(prov.stopped.includes(gone));
    assert.equal(await state(kept), 'running', 'a server the hub still has keeps running');
    const events = (await h.services.store.events(gone)).map((e) => e.message);
    assert.ok(
      events.some((m) => /JupyterHub has no server/.test(m)),
      'the history says why it stopped',
    );
  });

  test('an unreachable hub, or one that hides servers, is not a missing server: nothing is stopped', async () => {
    const id = await launch('rc-down');
    hubServers = 'down';
    now += 3_600_000;
    await reconciler.runOnce();
    now += 3_600_000;
    const report = await reconciler.runOnce();
    assert.deepEqual(report.orphansStopped, []);
    assert.ok(report.skipped.some((s) => /did not answer/.test(s)));
    assert.equal(await state(id), 'running');
    hubServers = 'no-scope';
    now += 3_600_000;
    await reconciler.runOnce();
    now += 3_600_000;
    const blind = await reconciler.runOnce();
    assert.deepEqual(
      blind.orphansStopped,
      [],
      'a hub that hides servers from the service is not a hub without servers',
    );
    assert.ok(blind.skipped.some((s) => /read:servers/.test(s)));
    assert.equal(await state(id), 'running');
    hubServers = { 'rc-down': [''], 'rc-kept': [''] };
  });

  test('a failed start that left cloud resources behind is destroyed, and so is a workdir nobody knows', async () => {
    prov.script = 'fail';
    const res = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user: 'rc-failed',
        server: '',
        options: { size: 'cpu-small', cloud: 'local' },
        env: { JUPYTERHUB_API_TOKEN: 'tok-FAKE' },
        baseUrl: '/user/rc-failed/',
      }),
    });
    const id = ((await res.json()) as { instance: { id: string } }).instance.id;
    await eventually(async () => (await state(id)) === 'failed', 'the start failed');
    prov.script = 'ok';
    const stray = '0f0e0d0c-0b0a-4909-8807-060504030201';
    prov.live = [id, stray];
    hubServers = { 'rc-kept': [''], 'rc-down': [''] };
    const report = await reconciler.runOnce();
    assert.deepEqual(report.leftoversQueued, [id]);
    assert.deepEqual(report.strayWorkdirsDestroyed, [stray]);
    await eventually(async () => prov.stopped.includes(id), 'the failed start destroyed');
    assert.equal(await state(id), 'failed', 'it stays failed, with its error');
    assert.deepEqual(
      (await reconciler.runOnce()).leftoversQueued,
      [],
      'once destroyed, nothing more to do',
    );
  });

  test('a stop that lost its job gets a new one', async () => {
    const id = await launch('rc-stuck');
    hubServers = { 'rc-kept': [''], 'rc-down': [''], 'rc-stuck': [''] };
    await h.services.store.transition(id, 'stopping', 0, 'stopping', {
      stopRequestedAt: new Date(now - 120_000),
    });
    const report = await reconciler.runOnce();
    assert.deepEqual(report.stopsRequeued, [id]);
    await eventually(async () => (await state(id)) === 'stopped', 'stopped at last');
  });
});
