/** `%%ngsci stop_after`'s announced stop: an event first, the stop on a page's confirmation or after the grace. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';

let h: Harness;
const prov = new ScriptedProvisioner();

before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]) });
});
after(async () => h.close());

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

async function running(user: string): Promise<{ token: string; id: string }> {
  prov.script = 'ok';
  const token = h.token({ name: user });
  const res = await h.request('/api/v1/instances', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const inst = await eventually(async () => {
    const r = await json(await h.request('/api/v1/instances/default', { token }));
    return r.state === 'running' ? r : null;
  }, 'running');
  return { token, id: String(inst.id) };
}

const stopAfter = (token: string, body: unknown) =>
  h.request('/api/v1/instances/default/stop', {
    method: 'POST',
    token,
    body: JSON.stringify(body),
  });

const state = async (token: string) =>
  (await json(await h.request('/api/v1/instances/default', { token }))).state;

describe('a stop announced by %%ngsci stop_after', () => {
  test('answers at once, says so in the events, and a plain stop (the page, once saved) ends it', async () => {
    const { token, id } = await running('sa-page');
    const res = await stopAfter(token, {
      reason: 'stop_after',
      cell: 'finished',
      graceSeconds: 120,
    });
    assert.equal(res.status, 202, await res.clone().text());
    assert.equal((await json(res)).state, 'running', 'nothing is stopped before the page saves');
    const { rows } = (await h.database.db.execute(
      `select message from instance_events where instance_id = '${id}' order by id` as never,
    )) as unknown as { rows: Array<{ message: string }> };
    assert.ok(
      rows.some((r) =>
        /^stop requested by %%ngsci stop_after after the cell finished: stops at /.test(r.message),
      ),
      JSON.stringify(rows.map((r) => r.message)),
    );
    assert.equal(await state(token), 'running');
    const plain = await h.request('/api/v1/instances/default/stop', { method: 'POST', token });
    assert.equal(plain.status, 202);
    await eventually(async () => ((await state(token)) === 'stopped' ? true : null), 'stopped');
    assert.ok(prov.stopped.includes(id));
  });

  test('with no page to confirm, the machine stops when the grace is over', async () => {
    const { token, id } = await running('sa-alone');
    const res = await stopAfter(token, { reason: 'stop_after', cell: 'failed', graceSeconds: 1 });
    assert.equal(res.status, 202, await res.clone().text());
    await eventually(async () => ((await state(token)) === 'stopped' ? true : null), 'stopped');
    assert.ok(prov.stopped.includes(id));
  });

  test('a grace out of range or an unknown field is refused with a code; an empty body stops at once', async () => {
    const { token } = await running('sa-bad');
    for (const body of [
      { graceSeconds: 301 },
      { graceSeconds: -1 },
      { reason: 'budget' },
      { x: 1 },
    ]) {
      const res = await stopAfter(token, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await json(res)).code, 'validation_failed');
    }
    assert.equal(await state(token), 'running');
    // a JSON content type with no body is a plain stop, as it always was
    const plain = await h.request('/api/v1/instances/default/stop', {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(plain.status, 202, await plain.clone().text());
    await eventually(async () => ((await state(token)) === 'stopped' ? true : null), 'stopped');
  });
});
