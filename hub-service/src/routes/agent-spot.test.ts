/**
 * The agent's spot notice and its keep-state report (routes/agent.ts): the notice's answer tells
 * the agent whether the researcher keeps their variables; the agent's report of what each
 * notebook kept becomes the researcher's notice. Through the app, with a scripted provisioner
 * whose start issues the agent credential.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { variablesNotice } from './agent.js';

interface Notice {
  kind: string;
  level: string;
  title: string;
  body: string;
  server: string | null;
}

describe('a spot notice with keep-state, through the agent', () => {
  const prov = new ScriptedProvisioner();
  let h: Harness;
  before(async () => {
    h = await harness({ provisioners: new Map([['local', prov]]) });
  });
  after(() => h?.close());

  async function spotServer(user: string, keepState: boolean) {
    const token = h.token({ name: user });
    if (keepState)
      assert.equal(
        (
          await h.request('/api/v1/me/preemption', {
            method: 'PUT',
            token,
            body: JSON.stringify({ keepState: true }),
          })
        ).status,
        200,
      );
    const res = await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'cpu-small', spot: true }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    await eventually(async () => {
      const r = (await (await h.request('/api/v1/instances/default', { token })).json()) as {
        state: string;
      };
      return r.state === 'running' ? r : null;
    }, 'the spot server running');
    const agent = prov.started.at(-1)!.agentToken!;
    assert.ok(agent);
    const post = (path: string, body: unknown) =>
      h.request(`/api/v1/agent/${path}`, {
        method: 'POST',
        token: agent,
        body: JSON.stringify(body),
      });
    const notices = async () =>
      (
        (await (await h.request('/api/v1/notifications', { token })).json()) as {
          notifications: Notice[];
        }
      ).notifications;
    return { post, notices };
  }

  it('keep-state on: the agent is told to save, and its report is what the researcher reads', async () => {
    const { post, notices } = await spotServer('ks-on', true);
    const res = await post('spot', {
      cloud: 'aws',
      action: 'terminate',
      at: '2026-11-20T10:02:00Z',
      savesVariables: true,
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { ok: true, keepState: true });
    const [warned] = await notices();
    assert.match(warned!.body, /variables are being saved on the machine/);

    const report = {
      notebooks: 2,
      kept: [{ notebook: 'a.ipynb', variables: [{ name: 'x', type: 'int' }] }],
      notKept: [
        {
          notebook: 'b.ipynb',
          variable: null,
          reason: 'running a cell: its variables can be kept once it is idle',
          code: 'busy',
        },
      ],
    };
    assert.equal((await post('spot/variables', report)).status, 202);
    const told = (await notices()).find((n) => /variables were saved/.test(n.title));
    assert.ok(told, JSON.stringify(await notices()));
    assert.equal(told.kind, 'spot');
    assert.equal(told.level, 'warning', 'something was not kept');
    assert.equal(told.server, 'default');
    assert.match(told.body, /Kept: a\.ipynb: x\./);
    assert.match(told.body, /Not kept: b\.ipynb: running a cell/);
    // one notice per instance, however often the agent reports
    assert.equal((await post('spot/variables', report)).status, 202);
    assert.equal((await notices()).filter((n) => /variables/.test(n.title)).length, 1);
  });

  it('keep-state off: the agent is told not to save; an agent without the server token is said', async () => {
    const off = await spotServer('ks-off', false);
    const res = await off.post('spot', { cloud: 'gcp', action: 'preempt', at: null });
    assert.deepEqual(await res.json(), { ok: true, keepState: false });
    assert.doesNotMatch((await off.notices())[0]!.body, /variables/);

    const page = await spotServer('ks-page', true);
    const r2 = await page.post('spot', {
      cloud: 'gcp',
      action: 'preempt',
      at: null,
      savesVariables: false,
    });
    assert.deepEqual(await r2.json(), { ok: true, keepState: true });
    assert.match((await page.notices())[0]!.body, /saved only by an open JupyterLab page/);
  });

  it('a report that is not one is refused with a clear error', async () => {
    const { post } = await spotServer('ks-bad', true);
    for (const body of [
      { notebooks: 1, kept: [{ notebook: 'a.ipynb', variables: [{ name: 'x' }] }], notKept: [] },
      { notebooks: 1, kept: [], notKept: [], values: { x: 42 } },
      { notebooks: -1, kept: [], notKept: [] },
    ]) {
      const res = await post('spot/variables', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(((await res.json()) as { code: string }).code, 'validation_failed');
    }
  });
});

describe('what the researcher is told', () => {
  it('a failed save, no notebook, and everything kept', () => {
    const failed = variablesNotice({
      notebooks: 0,
      kept: [],
      notKept: [],
      error: { code: 'timeout', message: 'the save did not finish within 90 s' },
    });
    assert.equal(failed.level, 'warning');
    assert.match(failed.body, /did not finish within 90 s/);
    assert.equal(
      variablesNotice({ notebooks: 0, kept: [], notKept: [] }).title,
      'No notebook was running',
    );
    const all = variablesNotice({
      notebooks: 1,
      kept: [
        {
          notebook: 'a.ipynb',
          variables: Array.from({ length: 14 }, (_, i) => ({ name: `v${i}`, type: 'int' })),
        },
      ],
      notKept: [],
    });
    assert.equal(all.level, 'info');
    assert.match(all.body, /v11 and 2 more/);
  });
});
