/**
 * A resize whose request to JupyterHub fails: when the hub had already asked this service to stop
 * the old machine (it went away mid-request, e.g. a hub restart), the stop goes on and so does the
 * resize; when the hub never reached the service, the resize is abandoned and the old machine
 * keeps running. Over the real app with the harness's fake hub and the scripted provisioner.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';

const open: Harness[] = [];
after(async () => {
  for (const h of open) await h.close();
});

async function runningService(user: string) {
  const prov = new ScriptedProvisioner();
  const h = await harness({ provisioners: new Map([['local', prov]]) });
  open.push(h);
  const token = h.token({ name: user });
  const res = await h.request('/api/v1/instances', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const old = await eventually(async () => {
    const row = await h.services.store.latest(user, 'default');
    return row?.state === 'running' ? row : null;
  }, 'the first size running');
  return { h, prov, token, old };
}

const hubGone = () => new ApiError(502, 'hub_unreachable', 'JupyterHub closed the connection');

test('the hub fails after it asked for the stop: the resize goes on and the new size runs', async () => {
  const { h, prov, token, old } = await runningService('noor');
  const stopServer = h.services.hub.stopServer.bind(h.services.hub);
  let failures = 1;
  h.services.hub.stopServer = async (user, server) => {
    const done = await stopServer(user, server);
    if (failures-- > 0) throw hubGone();
    return done;
  };
  const res = await h.request('/api/v1/instances/default/resize', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-large' }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const resized = await eventually(async () => {
    const row = await h.services.store.latest('noor', 'default');
    return row && row.id !== old.id && row.state === 'running' ? row : null;
  }, 'the new size running');
  assert.equal(resized.sizeId, 'cpu-large');
  const before = await h.services.store.get(old.id);
  assert.equal(before?.state, 'stopped');
  assert.equal(before?.resizeState, 'done');
  assert.deepEqual(
    prov.started.map((s) => s.size.id),
    ['cpu-small', 'cpu-large'],
  );
});

test('the hub fails before it reached the service: the resize is abandoned, the old size runs on', async () => {
  const { h, prov, token, old } = await runningService('omar');
  h.services.hub.stopServer = async () => {
    throw hubGone();
  };
  const res = await h.request('/api/v1/instances/default/resize', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-large' }),
  });
  assert.equal(res.status, 502);
  assert.equal(((await res.json()) as { code: string }).code, 'hub_unreachable');
  const row = await h.services.store.get(old.id);
  assert.equal(row?.state, 'running');
  assert.equal(row?.resizeState, 'abandoned');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(prov.started.length, 1, 'nothing else started');
});
