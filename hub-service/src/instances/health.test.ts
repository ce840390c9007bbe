import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { HealthWatch } from './health.js';
import { jobTagFor } from '../services.js';
import { createLogger } from '../logger.js';

let h: Harness;
const prov = new ScriptedProvisioner();
before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]) });
});
after(async () => h.close());

test('a running server that stops answering is marked lost after three checks and stopped', async () => {
  const token = h.token({ name: 'health-user' });
  await h.request('/api/v1/instances', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-small', server: 'hw' }),
  });
  const running = await eventually(async () => {
    const row = await h.services.store.latest('health-user', 'hw');
    return row?.state === 'running' ? row : null;
  }, 'running');
  let answering = true;
  const watch = new HealthWatch({
    store: h.services.store,
    queue: h.services.queue,
    logger: createLogger('silent'),
    jobTag: jobTagFor,
    intervalSeconds: 3600,
    fetch: (async (url: string) => {
      if (!String(url).startsWith(running.targetUrl!)) return new Response('{}');
      if (!answering) throw new Error('connection refused');
      return new Response('{}');
    }) as unknown as typeof fetch,
  });
  await watch.check();
  answering = false;
  await watch.check();
  await watch.check();
  assert.equal(
    (await h.services.store.get(running.id))?.state,
    'running',
    'two misses are not yet a loss',
  );
  await watch.check();
  const lost = await h.services.store.get(running.id);
  assert.equal(lost?.state, 'failed');
  assert.equal(lost?.errorCode, 'process_lost');
  assert.ok(lost?.stoppedAt, 'billing is closed');
  await eventually(async () => prov.stopped.includes(running.id), 'the machine to be stopped');
});
