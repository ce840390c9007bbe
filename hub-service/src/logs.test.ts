import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { eventually, harness, BRIDGE_SECRET } from './testing/harness.js';
import { ScriptedProvisioner } from './testing/scripted-provisioner.js';

test('logs at trace level carry request ids but never a token, the bridge secret or a server environment', async () => {
  const sink = new PassThrough();
  let logs = '';
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  const prov = new ScriptedProvisioner();
  prov.script = 'fail';
  const h = await harness({ provisioners: new Map([['local', prov]]), logTo: sink });
  try {
    const token = h.token({ name: 'logged' });
    await h.request('/api/v1/me', { token });
    await h.request('/api/v1/me', { token: 'an-unknown-token-value' });
    await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    await eventually(
      async () => (await h.services.store.latest('logged', 'default'))?.state === 'failed',
      'the failed start',
    );
    await h.request('/api/v1/instances/nothing', {
      token,
      headers: { 'x-request-id': 'req-visible-1' },
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.match(logs, /req-visible-1/, 'request ids are logged');
    assert.match(logs, /instance requested/);
    for (const secret of [
      token,
      'an-unknown-token-value',
      BRIDGE_SECRET,
      'server-token-secret',
      h.config.JUPYTERHUB_API_TOKEN,
    ]) {
      assert.ok(!logs.includes(secret), `a secret reached the log: ${secret.slice(0, 6)}…`);
    }
  } finally {
    await h.close();
  }
});
