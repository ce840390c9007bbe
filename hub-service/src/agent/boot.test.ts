/**
 * Boot reports over the real app and PGlite: what a cloud machine's checks post with its agent
 * credential, what the provisioner's readiness wait reads back (`bootReports.status`), and a
 * rebooted machine of a running instance taking the lost-machine path (failed, stop job, notice).
 * No cloud here: the instances are rows on the `aws` tag, for which no provisioner is registered,
 * so the stop job stays queued where the test can see it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { harness, type Harness } from '../testing/harness.js';
import { NotificationStore } from '../notify/store.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => h.close());

async function instance(user: string, state: 'starting' | 'running') {
  const row = await h.services.store.create(
    {
      userName: user,
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud: 'aws',
      region: 'us-east-1',
      spot: false,
      state: 'requested',
      listRatePerHourMicros: 526_000,
      baseUrl: `/user/${user}/`,
    },
    'requested',
  );
  assert.ok(row);
  await h.services.store.transition(row.id, 'starting', 85, 'machine created');
  if (state === 'running')
    await h.services.store.transition(row.id, 'running', 100, 'ready', { readyAt: new Date() });
  return { id: row.id, token: await h.services.agents.issue(row.id) };
}

const boot = (token: string, body: unknown) =>
  h.request('/api/v1/agent/boot', { method: 'POST', token, body: JSON.stringify(body) });

describe('POST /api/v1/agent/boot', () => {
  test('pending until the machine reports; then ready, which the readiness wait reads', async () => {
    const m = await instance('boot-ready', 'starting');
    assert.deepEqual(await h.services.bootReports.status(m.id), { state: 'pending' });
    assert.equal((await boot(m.token, { stage: 'ready' })).status, 202);
    assert.deepEqual(await h.services.bootReports.status(m.id), { state: 'ready' });
  });

  test('a failed check while starting is stored with its code and message for the start to fail on; the instance is left to the provisioner', async () => {
    const m = await instance('boot-gpu', 'starting');
    const message = 'nvidia-smi -L in ngsci/singleuser:cuda listed no GPU';
    const res = await boot(m.token, { stage: 'failed', code: 'gpu_unavailable', message });
    assert.equal(res.status, 202);
    assert.deepEqual(await h.services.bootReports.status(m.id), {
      state: 'failed',
      code: 'gpu_unavailable',
      message,
    });
    const row = await h.services.store.get(m.id);
    assert.equal(row?.state, 'starting');
    assert.equal(await h.services.queue.pending(m.id, 'stop'), false);
    const events = (await h.services.store.events(m.id)).map((e) => e.message);
    assert.ok(events.includes(`the GPU is not usable on the machine: ${message}`));
  });

  test('a running instance whose machine rebooted is failed as lost, its machine queued for removal, and its user told', async () => {
    const m = await instance('boot-reboot', 'running');
    const res = await boot(m.token, {
      stage: 'failed',
      code: 'rebooted',
      message: 'the machine restarted (boot 2); its environment was in memory',
    });
    assert.equal(res.status, 202);
    const row = await h.services.store.get(m.id);
    assert.equal(row?.state, 'failed');
    assert.equal(row?.errorCode, 'process_lost');
    assert.match(row?.errorMessage ?? '', /restarted/);
    assert.ok(row?.stoppedAt, 'billing ends');
    assert.equal(await h.services.queue.pending(m.id, 'stop'), true, 'the VM is destroyed');
    const notices = await new NotificationStore(h.database.db).list('boot-reboot', {
      after: 0,
      limit: 10,
      unacknowledged: false,
    });
    assert.equal(notices.length, 1);
    assert.match(notices[0]?.body ?? '', /restarted.*removed/);

    // a repeated report (the machine's retry) neither reopens the instance nor notifies again
    await boot(m.token, { stage: 'failed', code: 'rebooted', message: 'again' });
    assert.equal((await h.services.store.get(m.id))?.state, 'failed');
    const again = await new NotificationStore(h.database.db).list('boot-reboot', {
      after: 0,
      limit: 10,
      unacknowledged: false,
    });
    assert.equal(again.length, 1);
  });

  test('only the machine of the instance may report, and only what the contract allows', async () => {
    const m = await instance('boot-valid', 'starting');
    const bad = await boot(m.token, { stage: 'failed', code: 'disk_full', message: 'x' });
    assert.equal(bad.status, 400);
    const noMessage = await boot(m.token, { stage: 'failed', code: 'agent_missing' });
    assert.equal(noMessage.status, 400);
    const user = h.token({ name: 'boot-valid' });
    assert.equal((await boot(user, { stage: 'ready' })).status, 403, 'a user token is refused');
    assert.deepEqual(await h.services.bootReports.status(m.id), { state: 'pending' });
  });

  test('a new agent credential starts a new boot: an older report no longer counts', async () => {
    const m = await instance('boot-again', 'starting');
    await boot(m.token, { stage: 'failed', code: 'hub_unreachable', message: 'no answer' });
    await h.services.agents.issue(m.id);
    assert.deepEqual(await h.services.bootReports.status(m.id), { state: 'pending' });
  });
});
