/**
 * A researcher's own spot preemption default (preemption-choice.ts, routes/preemption.ts): the
 * route's validation, and the order of defaults on real launches through the app and the hub's
 * bridge: the launch's own option, else the user's default, else the admin's
 * NGSCI_PREEMPTION_DEFAULT. The cloud is a TEST DOUBLE provisioner whose machines start at once.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from '../testing/harness.js';
import type { Provisioned, ProvisionRequest, Provisioner } from '../provisioners/types.js';
import { preemptionDefaultFor } from './preemption-choice.js';

/** TEST DOUBLE of a cloud: every machine starts at once. */
class InstantCloudDouble implements Provisioner {
  readonly kind = 'local' as const;
  async start(req: ProvisionRequest): Promise<Provisioned> {
    return { targetUrl: `http://10.0.0.9:8888${req.baseUrl}`, ref: { vm: req.instanceId } };
  }
  async stop(): Promise<void> {}
  async adopt(): Promise<boolean> {
    return false;
  }
  onExit(): void {}
  async close(): Promise<void> {}
}

interface Answer {
  user: string;
  chosen: string | null;
  adminDefault: string;
  effective: string;
  source: string;
  keepState: boolean;
  updatedAt: string | null;
}

describe('the default that applies', () => {
  it("the user's choice, else the admin's", () => {
    assert.deepEqual(preemptionDefaultFor(null, 'stop'), { onPreemption: 'stop', source: 'admin' });
    assert.deepEqual(preemptionDefaultFor(undefined, 'spot'), {
      onPreemption: 'spot',
      source: 'admin',
    });
    assert.deepEqual(preemptionDefaultFor('on-demand', 'stop'), {
      onPreemption: 'on-demand',
      source: 'user',
    });
  });
});

describe('GET and PUT /api/v1/me/preemption, and launches (harness)', () => {
  let hh: Harness | null = null;
  after(() => hh?.close());
  const h = async () =>
    (hh ??= await harness({
      provisioners: new Map([['cloud=aws', new InstantCloudDouble()]]),
      // the admin's default is not the built-in one, so each source is visible
      env: { NGSCI_CLOUDS: 'local,aws', NGSCI_PREEMPTION_DEFAULT: 'stop' },
    }));

  const put = async (s: Harness, token: string, body: unknown) =>
    s.request('/api/v1/me/preemption', {
      method: 'PUT',
      token,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('shows, sets and clears the choice; bad bodies get 400 validation_failed', async () => {
    const s = await h();
    const token = s.token({ name: 'pc-route' });
    const fresh = (await (await s.request('/api/v1/me/preemption', { token })).json()) as Answer;
    assert.deepEqual(fresh, {
      user: 'pc-route',
      chosen: null,
      adminDefault: 'stop',
      effective: 'stop',
      source: 'admin',
      keepState: false,
      updatedAt: null,
    });

    for (const bad of [
      { onPreemption: 'sometimes' },
      {},
      { onPreemption: 'spot', extra: 1 },
      { onPreemption: 3 },
      { keepState: 'yes' },
    ]) {
      const res = await put(s, token, bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      const body = (await res.json()) as { error?: { code?: string }; code?: string };
      assert.equal(body.error?.code ?? body.code, 'validation_failed', JSON.stringify(body));
    }

    const malformed = await put(s, token, 'not json');
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { code: string }).code, 'bad_request');

    const set = await put(s, token, { onPreemption: 'on-demand' });
    assert.equal(set.status, 200);
    const after = (await set.json()) as Answer;
    assert.equal(after.chosen, 'on-demand');
    assert.equal(after.effective, 'on-demand');
    assert.equal(after.source, 'user');
    assert.equal(after.adminDefault, 'stop');
    assert.ok(after.updatedAt);
    const again = (await (await s.request('/api/v1/me/preemption', { token })).json()) as Answer;
    assert.equal(again.chosen, 'on-demand');

    const cleared = (await (await put(s, token, { onPreemption: null })).json()) as Answer;
    assert.equal(cleared.chosen, null);
    assert.equal(cleared.effective, 'stop');
    assert.equal(cleared.source, 'admin');
    assert.equal(cleared.keepState, false);

    // keep-state on its own: the choice stays the admin's; a later choice keeps the flag
    const keep = (await (await put(s, token, { keepState: true })).json()) as Answer;
    assert.deepEqual(
      [keep.chosen, keep.effective, keep.source, keep.keepState],
      [null, 'stop', 'admin', true],
    );
    const both = (await (await put(s, token, { onPreemption: 'spot' })).json()) as Answer;
    assert.deepEqual([both.chosen, both.keepState], ['spot', true]);
    const noChoice = (await (await put(s, token, { onPreemption: null })).json()) as Answer;
    assert.deepEqual([noChoice.chosen, noChoice.keepState], [null, true]);
    const off = (await (await put(s, token, { keepState: false })).json()) as Answer;
    assert.deepEqual([off.chosen, off.keepState, off.updatedAt], [null, false, null]);

    // without a token: 401
    const anon = await s.request('/api/v1/me/preemption', {
      method: 'PUT',
      body: JSON.stringify({ onPreemption: 'spot' }),
    });
    assert.equal(anon.status, 401);
  });

  const launch = async (s: Harness, token: string, extra: Record<string, unknown> = {}) => {
    const res = await s.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', spot: true, ...extra }),
    });
    assert.ok(res.status < 300, `${res.status} ${await res.clone().text()}`);
    return (await res.json()) as { onPreemption?: string | null };
  };
  const stored = async (s: Harness, user: string, server = 'default') =>
    (await s.services.store.latest(user, server))?.onPreemption ?? null;

  it("a launch's own option, else the user's default, else the admin's", async () => {
    const s = await h();
    // no choice anywhere: the admin's
    await launch(s, s.token({ name: 'pc-none' }));
    assert.equal(await stored(s, 'pc-none'), 'stop');

    // the user's default over the admin's
    const chooser = s.token({ name: 'pc-user' });
    assert.equal((await put(s, chooser, { onPreemption: 'on-demand' })).status, 200);
    await launch(s, chooser);
    assert.equal(await stored(s, 'pc-user'), 'on-demand');

    // the launch's own option over the user's default
    const explicit = s.token({ name: 'pc-explicit' });
    assert.equal((await put(s, explicit, { onPreemption: 'on-demand' })).status, 200);
    await launch(s, explicit, { onPreemption: 'spot' });
    assert.equal(await stored(s, 'pc-explicit'), 'spot');

    // on demand: no preemption at all, whatever the user chose
    const od = s.token({ name: 'pc-ondemand' });
    assert.equal((await put(s, od, { onPreemption: 'spot' })).status, 200);
    await launch(s, od, { spot: false });
    assert.equal(await stored(s, 'pc-ondemand'), null);
  });

  it("a hub spawn (bridge start) without onPreemption gets the user's default", async () => {
    const s = await h();
    const token = s.token({ name: 'pc-spawn' });
    assert.equal((await put(s, token, { onPreemption: 'on-demand' })).status, 200);
    const start = (server: string, options: Record<string, unknown>) =>
      s.bridge('/start', {
        method: 'POST',
        body: JSON.stringify({
          user: 'pc-spawn',
          server,
          options: { size: 'gpu-t4', cloud: 'aws', spot: true, ...options },
          env: {},
          baseUrl: `/user/pc-spawn/${server}/`,
        }),
      });
    const res = await start('one', {});
    assert.equal(res.status, 202, await res.clone().text());
    assert.equal(await stored(s, 'pc-spawn', 'one'), 'on-demand');
    const named = await start('two', { onPreemption: 'stop' });
    assert.equal(named.status, 202, await named.clone().text());
    assert.equal(await stored(s, 'pc-spawn', 'two'), 'stop');
  });
});
