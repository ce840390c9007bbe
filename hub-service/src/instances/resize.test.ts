/**
 * Resize as a durable workflow, over the real app with the scripted provisioner and the harness's
 * fake hub (which calls the bridge like the real one): a service that dies between the old
 * machine's stop and the new one's start is resumed by the next process, with one quota check for
 * the whole resize; and a stop that fails abandons the resize with an event and a notice, and
 * never starts a machine beside the one still running.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';

const open: Harness[] = [];
after(async () => {
  for (const h of open) await h.close();
});

async function service(prov: ScriptedProvisioner): Promise<Harness> {
  const h = await harness({ provisioners: new Map([['local', prov]]) });
  open.push(h);
  return h;
}

/** Counts the quota checks a service makes (launch, resize and the bridge's start all may). */
function countQuotaChecks(h: Harness): { n: number } {
  const count = { n: 0 };
  const quotas = h.services.metering.quotas;
  const check = quotas.check.bind(quotas);
  quotas.check = async (...args: Parameters<typeof check>) => {
    count.n += 1;
    return check(...args);
  };
  return count;
}

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

async function launchRunning(h: Harness, token: string): Promise<Record<string, unknown>> {
  const res = await h.request('/api/v1/instances', {
    method: 'POST',
    token,
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return eventually(async () => {
    const r = await json(await h.request('/api/v1/instances/default', { token }));
    return r.state === 'running' ? r : null;
  }, 'the first size running');
}

const resize = (h: Harness, token: string, size: string) =>
  h.request('/api/v1/instances/default/resize', {
    method: 'POST',
    token,
    body: JSON.stringify({ size }),
  });

describe('resize is a durable workflow', () => {
  test('the service restarts between the stop and the start: the next one starts the new size', async () => {
    const first = new ScriptedProvisioner();
    const h1 = await service(first);
    const token = h1.token({ name: 'rosa' });
    const old = await launchRunning(h1, token);
    const checks1 = countQuotaChecks(h1);

    // the service dies as the old machine goes: the stop completes, nothing asks for the new size
    const stop = first.stop.bind(first);
    first.stop = async (id, ref) => {
      await stop(id, ref);
      void h1.close();
    };
    const res = await resize(h1, token, 'cpu-large');
    assert.equal(res.status, 202, await res.clone().text());
    const oldRow = await eventually(async () => {
      const row = await h1.services.store.get(String(old.id));
      return row?.state === 'stopped' ? row : null;
    }, 'the old instance stopped');
    assert.equal(oldRow.resizeState, 'stopping', 'the resize waits in the row, not in memory');
    assert.deepEqual(oldRow.resizeTarget, {
      size: 'cpu-large',
      cloud: 'local',
      region: oldRow.region,
      spot: false,
      ratePerHourMicros: oldRow.resizeTarget?.ratePerHourMicros,
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      (await h1.services.store.latest('rosa', 'default'))?.id,
      old.id,
      'the dead service started nothing',
    );
    assert.equal(first.started.length, 1);

    // the next process resumes the resize from the row
    const second = new ScriptedProvisioner();
    const h2 = await service(second);
    const checks2 = countQuotaChecks(h2);
    const resized = await eventually(async () => {
      const row = await h2.services.store.latest('rosa', 'default');
      return row && row.id !== old.id && row.state === 'running' ? row : null;
    }, 'the new size running after the restart');
    assert.equal(resized.sizeId, 'cpu-large');
    assert.equal(resized.listRatePerHourMicros, oldRow.resizeTarget?.ratePerHourMicros);
    assert.equal(second.started.length, 1);
    assert.equal(second.started[0]?.size.id, 'cpu-large');
    assert.equal((await h2.services.store.get(String(old.id)))?.resizeState, 'done');
    assert.ok(h2.hubCalls.includes('POST /users/rosa/server'), 'the hub started the server');
    assert.equal(checks1.n + checks2.n, 1, 'one quota check for the whole resize');
    const events = (await h2.services.store.events(String(old.id))).map((e) => e.message);
    assert.ok(events.includes('resizing from cpu-small to cpu-large'), events.join(' | '));
  });

  test('a stop that fails: the resize is abandoned with an event and a notice, nothing else starts', async () => {
    const prov = new ScriptedProvisioner();
    const h = await service(prov);
    const token = h.token({ name: 'sven' });
    const old = await launchRunning(h, token);
    prov.stop = async (id) => {
      prov.stopped.push(id);
      throw new Error('the cloud refused to stop the machine');
    };
    const postsBefore = h.hubCalls.filter((c) => c === 'POST /users/sven/server').length;

    const res = await resize(h, token, 'cpu-large');
    assert.equal(res.status, 202, await res.clone().text());
    const abandoned = await eventually(async () => {
      const row = await h.services.store.get(String(old.id));
      return row?.resizeState === 'abandoned' ? row : null;
    }, 'the resize abandoned');
    assert.notEqual(abandoned.state, 'stopped');
    const events = (await h.services.store.events(String(old.id))).map((e) => e.message);
    assert.ok(
      events.some((m) =>
        /^resize to cpu-large abandoned: the old machine did not stop \(the cloud refused/.test(m),
      ),
      events.join(' | '),
    );
    const notices = await eventually(async () => {
      const list = (await json(await h.request('/api/v1/notifications', { token })))
        .notifications as Array<{ title: string; body: string }>;
      return list.find((n) => /was not resized to cpu-large/.test(n.title)) ?? null;
    }, 'the notice');
    assert.match(notices.body, /Nothing was started/);

    // a while later still: no start on top of the machine that may still run
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(prov.started.length, 1);
    assert.equal(h.hubCalls.filter((c) => c === 'POST /users/sven/server').length, postsBefore);
    assert.equal((await h.services.store.latest('sven', 'default'))?.id, old.id);

    // and a second resize of the same server is refused while it is not running
    const again = await resize(h, token, 'cpu-large');
    assert.equal(again.status, 409);
  });
});
