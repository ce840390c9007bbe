/**
 * The audit ledger through the real app: an agent's batch is stored under its token's user;
 * admins list it with filters and export it as CSV; others cannot read it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCESS, harness, type Harness } from '../testing/harness.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => h.close());

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;

describe('audit', () => {
  test('events are stored under the reporting user; admins filter them and export CSV', async () => {
    const carol = h.token({ name: 'carol' });
    const dave = h.token({ name: 'dave' });
    const admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
    const post = (token: string, events: unknown[], server = 'default') =>
      h.request('/api/v1/audit/events', {
        token,
        method: 'POST',
        body: JSON.stringify({ server, events }),
      });

    const r1 = await post(carol, [
      { path: '/data/patients/cohort-a.parquet', op: 'open', at: '2026-11-20T10:00:00Z' },
      {
        path: '/data/patients/cohort-a.parquet',
        op: 'close',
        at: '2026-11-20T10:00:02.5Z',
        bytes: 1048576,
        durationMs: 2500,
      },
    ]);
    assert.equal(r1.status, 202, await r1.clone().text());
    assert.equal((await body(r1)).accepted, 2);
    await post(
      dave,
      [{ path: '/data/public/readme, "notes".txt', op: 'read', at: '2026-11-21T09:00:00Z' }],
      'gpu1',
    );

    const denied = await h.request('/api/v1/admin/audit', { token: carol });
    assert.equal(denied.status, 403);

    const all = await body(await h.request('/api/v1/admin/audit', { token: admin }));
    const events = all.events as Array<{
      user: string;
      path: string;
      op: string;
      bytes: number | null;
      server: string;
    }>;
    assert.ok(
      events.some(
        (e) =>
          e.user === 'carol' &&
          e.path === '/data/patients/cohort-a.parquet' &&
          e.op === 'close' &&
          e.bytes === 1048576,
      ),
    );
    assert.ok(events.some((e) => e.user === 'dave' && e.server === 'gpu1'));

    const onlyCarol = await body(
      await h.request('/api/v1/admin/audit?user=carol&path=/data/patients/', { token: admin }),
    );
    assert.deepEqual(
      [...new Set((onlyCarol.events as Array<{ user: string }>).map((e) => e.user))],
      ['carol'],
    );
    const later = await body(
      await h.request('/api/v1/admin/audit?from=2026-11-21T00:00:00Z', { token: admin }),
    );
    assert.deepEqual(
      (later.events as Array<{ user: string }>).map((e) => e.user),
      ['dave'],
    );

    const page = await body(await h.request('/api/v1/admin/audit?limit=1', { token: admin }));
    assert.equal((page.events as unknown[]).length, 1);
    const next = await body(
      await h.request(`/api/v1/admin/audit?limit=1&after=${String(page.nextAfter)}`, {
        token: admin,
      }),
    );
    assert.notDeepEqual(next.events, page.events);

    const csv = await h.request('/api/v1/admin/audit?format=csv', { token: admin });
    assert.match(String(csv.headers.get('content-type')), /text\/csv/);
    const text = await csv.text();
    const lines = text.trim().split('\r\n');
    assert.equal(lines[0], 'id,at,user,server,instanceId,path,op,bytes,durationMs,receivedAt');
    assert.ok(
      lines.some(
        (l) =>
          l.includes(',carol,default,') &&
          l.includes('/data/patients/cohort-a.parquet,close,1048576,2500,'),
      ),
    );
    assert.ok(
      lines.some((l) => l.includes('"/data/public/readme, ""notes"".txt"')),
      'commas and quotes are quoted',
    );
  });

  test('bad batches: relative paths, empty batches, bad times, unknown fields', async () => {
    const token = h.token({ name: 'erin' });
    const post = (b: unknown) =>
      h.request('/api/v1/audit/events', { token, method: 'POST', body: JSON.stringify(b) });
    for (const bad of [
      { events: [{ path: 'relative/file', op: 'open', at: '2026-11-20T10:00:00Z' }] },
      { events: [] },
      { events: [{ path: '/x', op: 'open', at: 'yesterday' }] },
      { events: [{ path: '/x', op: 'open', at: '2026-11-20T10:00:00Z', user: 'someone-else' }] },
    ]) {
      const res = await post(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal((await body(res)).code, 'validation_failed');
    }
    const foreign = await post({
      instanceId: '00000000-0000-0000-0000-000000000000',
      events: [{ path: '/x', op: 'open', at: '2026-11-20T10:00:00Z' }],
    });
    assert.equal(foreign.status, 403, "an agent cannot claim an instance that is not its user's");
  });
});

describe('agent reports', () => {
  test('GPU samples are readable by their owner; no report yet means no GPUs', async () => {
    const token = h.token({ name: 'gina' });
    const none = await body(await h.request('/api/v1/instances/default/gpu', { token }));
    assert.deepEqual(none, { server: 'default', instanceId: null, reportedAt: null, gpus: [] });
    const gpus = [
      {
        index: 0,
        name: 'NVIDIA A100-SXM4-40GB',
        utilizationPercent: 87,
        memoryUsedMiB: 30000,
        memoryTotalMiB: 40960,
      },
    ];
    assert.equal(
      (
        await h.request('/api/v1/agent/gpu', {
          token,
          method: 'POST',
          body: JSON.stringify({ gpus }),
        })
      ).status,
      202,
    );
    const got = await body(await h.request('/api/v1/instances/default/gpu', { token }));
    assert.deepEqual(got.gpus, gpus);
    assert.equal(typeof got.reportedAt, 'string');
    const other = h.token({ name: 'harry' });
    assert.equal(
      (await h.request('/api/v1/instances/default/gpu?user=gina', { token: other })).status,
      403,
    );
    const bad = await h.request('/api/v1/agent/gpu', {
      token,
      method: 'POST',
      body: JSON.stringify({ gpus: [{ ...gpus[0], utilizationPercent: 140 }] }),
    });
    assert.equal(bad.status, 400);
  });

  test('a spot notice becomes one warning notification, however often the agent repeats it', async () => {
    const token = h.token({ name: 'ivy' });
    const notice = { cloud: 'aws', action: 'terminate', at: '2026-11-20T10:02:00Z' };
    for (let i = 0; i < 3; i++) {
      assert.equal(
        (
          await h.request('/api/v1/agent/spot', {
            token,
            method: 'POST',
            body: JSON.stringify(notice),
          })
        ).status,
        202,
      );
    }
    const list = await body(await h.request('/api/v1/notifications', { token }));
    const items = list.notifications as Array<{
      kind: string;
      level: string;
      title: string;
      body: string;
    }>;
    assert.equal(items.length, 1);
    assert.equal(items[0]!.kind, 'spot');
    assert.equal(items[0]!.level, 'warning');
    assert.match(items[0]!.title, /AWS is reclaiming your machine/);
    assert.match(items[0]!.body, /10:02:00 UTC/);
  });
});
