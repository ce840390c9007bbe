import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { ACCESS, eventually, harness, type Harness } from './testing/harness.js';
import { ScriptedProvisioner } from './testing/scripted-provisioner.js';

let h: Harness;
const prov = new ScriptedProvisioner();

before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]) });
});
after(async () => h.close());

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

/** POST /instances as the token's user; the answer as it comes (202 or an error). */
const launch = (token: string, body: object) =>
  h.request('/api/v1/instances', { method: 'POST', token, body: JSON.stringify(body) });

/** Waits until the user's server reaches `state`, and returns the instance. */
const waitState = (token: string, state: string, server = 'default') =>
  eventually(async () => {
    const r = await json(await h.request(`/api/v1/instances/${server}`, { token }));
    return r.state === state ? r : null;
  }, `${server} ${state}`);

describe('auth', () => {
  test('no token: 401 with the error shape', async () => {
    const res = await h.request('/api/v1/me');
    assert.equal(res.status, 401);
    const body = await json(res);
    assert.equal(body.code, 'unauthenticated');
    assert.equal(typeof body.requestId, 'string');
    assert.equal(res.headers.get('x-request-id'), body.requestId);
  });

  test('a token the hub does not know: 401', async () => {
    assert.equal((await h.request('/api/v1/me', { token: 'nope' })).status, 401);
  });

  test('a token without the access scope: 403 naming the scope', async () => {
    const token = h.token({ name: 'eve', scopes: ['read:users:name!user=eve'] });
    const res = await h.request('/api/v1/me', { token });
    assert.equal(res.status, 403);
    assert.match(String((await json(res)).message), /access:services!service=ngsci/);
  });

  test('/me answers name, groups, admin and the default plan; lookups are cached', async () => {
    const token = h.token({ name: 'alice', groups: ['lab'] });
    const before = h.hubCalls.length;
    const res = await h.request('/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), {
      name: 'alice',
      admin: false,
      groups: ['lab'],
      plan: { id: 'private', label: 'Private (list price)', multiplierPpm: 1_000_000 },
      localIsolation: { mode: 'shared', sharedDemo: true },
    });
    await h.request('/api/v1/me', { token });
    assert.equal(h.hubCalls.length - before, 1, 'the second request is served from the cache');
  });

  test('the admin scope makes an admin', async () => {
    const token = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
    assert.equal((await json(await h.request('/api/v1/me', { token }))).admin, true);
  });

  test('bridge routes refuse user tokens and wrong secrets', async () => {
    const token = h.token({ name: 'alice' });
    const prefix = h.config.JUPYTERHUB_SERVICE_PREFIX;
    assert.equal(
      (
        await h.app.request(`${prefix}api/v1/bridge/catalog`, {
          headers: { authorization: `token ${token}` },
        })
      ).status,
      401,
    );
    assert.equal((await h.bridge('/catalog')).status, 200);
  });
});

describe('catalog and openapi', () => {
  test('catalog lists sizes with per-cloud offers in integer micro-dollars', async () => {
    const token = h.token({ name: 'alice' });
    const body = (await json(await h.request('/api/v1/catalog', { token }))) as {
      asOf: string;
      sizes: Array<{
        id: string;
        gpu: unknown;
        offers: Array<{
          cloud: string;
          available: boolean;
          onDemandMicrosPerHour: number;
          instanceType: string;
        }>;
      }>;
    };
    assert.match(body.asOf, /^\d{4}-\d{2}-\d{2}$/);
    const t4 = body.sizes.find((s) => s.id === 'gpu-t4');
    assert.ok(t4);
    const aws = t4.offers.find((o) => o.cloud === 'aws');
    assert.equal(aws?.instanceType, 'g4dn.xlarge');
    assert.equal(aws?.onDemandMicrosPerHour, 526_000);
    assert.equal(
      aws?.available,
      false,
      'the default hub provisions locally only, so aws is listed but unavailable',
    );
    assert.equal(t4.offers.find((o) => o.cloud === 'local')?.available, true);
    for (const s of body.sizes)
      for (const o of s.offers) assert.ok(Number.isInteger(o.onDemandMicrosPerHour));
  });

  test('catalog: gzip for a client that accepts it, 304 for the tag it holds', async () => {
    const token = h.token({ name: 'alice' });
    const plain = await h.request('/api/v1/catalog', { token });
    const text = await plain.text();
    const etag = plain.headers.get('etag');
    assert.ok(etag, 'an entity tag');
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.match(plain.headers.get('vary') ?? '', /accept-encoding/i);

    const zipped = await h.request('/api/v1/catalog', {
      token,
      headers: { 'accept-encoding': 'br, gzip;q=0.8' },
    });
    assert.equal(zipped.headers.get('content-encoding'), 'gzip');
    const bytes = Buffer.from(await zipped.arrayBuffer());
    assert.ok(
      bytes.length * 5 < Buffer.byteLength(text),
      `gzip ${bytes.length} B of ${text.length}`,
    );
    assert.equal(gunzipSync(bytes).toString('utf8'), text, 'the same catalog');

    const refused = await h.request('/api/v1/catalog', {
      token,
      headers: { 'accept-encoding': 'gzip;q=0, identity' },
    });
    assert.equal(refused.headers.get('content-encoding'), null);
    assert.equal(await refused.text(), text);

    const held = await h.request('/api/v1/catalog', {
      token,
      headers: { 'if-none-match': `"old", ${etag}` },
    });
    assert.equal(held.status, 304);
    assert.equal(await held.text(), '');
    const stale = await h.request('/api/v1/catalog', {
      token,
      headers: { 'if-none-match': '"not-this-one"' },
    });
    assert.equal(stale.status, 200);
    // still behind the token: no catalog, not even a 304, for a stranger
    const anonymous = await h.request('/api/v1/catalog', { headers: { 'if-none-match': etag } });
    assert.equal(anonymous.status, 401);
  });

  test('openapi.json is generated from the routes', async () => {
    const res = await h.request('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    const doc = (await json(res)) as {
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    for (const p of [
      '/api/v1/me',
      '/api/v1/catalog',
      '/api/v1/instances',
      '/api/v1/instances/{server}/resize',
      '/api/v1/instances/{server}/events',
    ]) {
      assert.ok(doc.paths[p], `missing ${p}`);
    }
    assert.ok(doc.components.schemas.Instance);
    assert.ok(doc.components.schemas.Error);
  });
});

describe('instances', () => {
  test('launch goes through the hub, the bridge creates the row, the worker makes it running', async () => {
    prov.script = 'ok';
    const token = h.token({ name: 'bob' });
    const res = await launch(token, { size: 'cpu-small' });
    assert.equal(res.status, 202, await res.clone().text());
    const inst = await json(res);
    assert.equal(inst.server, 'default');
    assert.equal(inst.size, 'cpu-small');
    assert.ok(h.hubCalls.includes('POST /users/bob/server'));
    const running = await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'running' ? r : null;
    }, 'running');
    assert.equal(running.url, '/user/bob/');
    const started = prov.started.at(-1);
    assert.equal(started?.env.JUPYTERHUB_API_TOKEN, 'server-token-secret');
    const { rows } = (await h.database.db.execute<{ n: number }>(
      `select count(*)::int as n from instance_secrets` as never,
    )) as unknown as { rows: Array<{ n: number }> };
    assert.equal(rows[0]?.n, 0, "the server's environment is deleted once it started");

    const again = await launch(token, { size: 'cpu-small' });
    assert.equal(again.status, 409);
    assert.equal((await json(again)).code, 'instance_busy');

    const stop = await h.request('/api/v1/instances/default/stop', { method: 'POST', token });
    assert.equal(stop.status, 202);
    await waitState(token, 'stopped');
    assert.ok(prov.stopped.includes(String(inst.id)));
  });

  test('bad input gets a 4xx with a code and leaves nothing behind', async () => {
    const token = h.token({ name: 'carol' });
    const cases: Array<[unknown, number, string]> = [
      [{ size: 'gpu-x999' }, 400, 'unknown_size'],
      [{ size: 'cpu-small', cloud: 'aws' }, 400, 'size_unavailable'],
      [{ size: 'cpu-small', server: 'Not OK!' }, 400, 'validation_failed'],
      [{ size: 'cpu-small', bogus: 1 }, 400, 'validation_failed'],
      [{ size: 'cpu-small', server: 'bad' }, 400, 'hub_refused'],
    ];
    for (const [body, status, code] of cases) {
      const res = await h.request('/api/v1/instances', {
        method: 'POST',
        token,
        body: JSON.stringify(body),
      });
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal((await json(res)).code, code, JSON.stringify(body));
    }
    const malformed = await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: '{"size":',
    });
    assert.equal(malformed.status, 400);
    const list = await json(await h.request('/api/v1/instances?all=true', { token }));
    assert.deepEqual(list.instances, []);
    assert.equal(
      (await h.request('/api/v1/instances/nothere/stop', { method: 'POST', token })).status,
      404,
    );
  });

  test("another user's server: 403 unless admin", async () => {
    const token = h.token({ name: 'mallory' });
    const res = await h.request('/api/v1/instances/default/stop?user=bob', {
      method: 'POST',
      token,
    });
    assert.equal(res.status, 403);
    const admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
    assert.equal(
      (await h.request('/api/v1/instances?user=bob&all=true', { token: admin })).status,
      200,
    );
  });

  test('a failed start is recorded with its code and exit code', async () => {
    prov.script = 'fail';
    const token = h.token({ name: 'dave' });
    await launch(token, { size: 'cpu-small', server: 'exp1' });
    const failed = await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/exp1', { token }));
      return r.state === 'failed' ? r : null;
    }, 'failed');
    assert.equal(failed.errorCode, 'process_exited');
    assert.equal(failed.exitCode, 3);
    const notices = (await json(await h.request('/api/v1/notifications', { token }))) as {
      notifications: Array<{ kind: string; title: string; body: string }>;
    };
    const failure = notices.notifications.find((n) => n.kind === 'failure');
    assert.ok(failure, 'the user is told the start failed');
    assert.match(failure.title, /exp1.*failed to start/);
    assert.match(failure.body, /code 3/);
  });

  test('a crash of a running instance marks it failed with the exit code', async () => {
    prov.script = 'ok';
    const token = h.token({ name: 'erin' });
    const inst = await json(await launch(token, { size: 'cpu-small' }));
    await waitState(token, 'running');
    prov.crash(String(inst.id), 137);
    const failed = await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'failed' ? r : null;
    }, 'failed');
    assert.equal(failed.exitCode, 137);
  });

  test('stop during a start cancels it, and the instance ends stopped', async () => {
    prov.script = 'hang';
    const token = h.token({ name: 'frank' });
    await launch(token, { size: 'cpu-small' });
    await waitState(token, 'starting');
    await h.bridge('/stop', {
      method: 'POST',
      body: JSON.stringify({ user: 'frank', server: '' }),
    });
    await waitState(token, 'stopped');
  });

  test('events stream over SSE from the start of the newest instance', async () => {
    prov.script = 'ok';
    const token = h.token({ name: 'gina' });
    await launch(token, { size: 'cpu-large' });
    await waitState(token, 'running');
    const res = await h.request('/api/v1/instances/default/events', { token });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('server is ready'))
      text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const states = [...text.matchAll(/"state":"(\w+)"/g)].map((m) => m[1]);
    assert.deepEqual(states.slice(0, 4), ['requested', 'provisioning', 'starting', 'running']);
  });

  test('an event stream sends bytes at once, so a proxy that waits for the body opens it', async () => {
    const token = h.token({ name: 'gina-quiet' });
    const res = await h.request('/api/v1/instances/default/events', { token });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.equal(first, ': open\n\n', 'a comment before any event or ping');
  });

  test('the bridge refuses a hub server literally named default', async () => {
    const res = await h.bridge('/start', {
      method: 'POST',
      body: JSON.stringify({
        user: 'x',
        server: 'default',
        options: { size: 'cpu-small' },
        env: {},
        baseUrl: '/user/x/default/',
      }),
    });
    assert.equal(res.status, 400);
    assert.equal((await json(res)).code, 'invalid_server_name');
  });
});

describe('bridge long poll', () => {
  test('an instance answer is held until its state changes', async () => {
    prov.script = 'ok';
    const token = h.token({ name: 'hank' });
    const launched = await json(await launch(token, { size: 'cpu-small' }));
    await waitState(token, 'running');
    const t0 = Date.now();
    const held = h.bridge(`/instances/${String(launched.id)}?unless=running&wait=5`);
    setTimeout(
      () => void h.request('/api/v1/instances/default/stop', { method: 'POST', token }),
      300,
    );
    const answer = await json(await held);
    assert.notEqual(answer.state, 'running');
    assert.ok(Date.now() - t0 < 4000, 'answered when the state changed, not at the deadline');
    const bad = await h.bridge(`/instances/${String(launched.id)}?unless=sleeping&wait=1`);
    assert.equal(bad.status, 400);
  });
});
