/**
 * What API fuzzing found (tests/fuzz/, docs/security.md "API fuzzing"), each pinned on the app
 * itself: text with a NUL character is refused (it was a 500 from Postgres), a quota moved onto
 * a subject that has one is a 409 (a 500 from the unique index), a request with no body where
 * every field is optional is documented as such, a CSV statement downloads whatever the user's
 * name (a non-Latin-1 name in Content-Disposition was a 500), a month before 1970 and a 33-bit
 * threshold are refused (500s from Postgres), `?after=` is not read as 0, and the OpenAPI
 * document lists the refusals the shared middleware gives on every route (400, 413, 429, 431).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nulAt } from '../http.js';
import { attachment } from '../routes/billing.js';
import { harness, type Harness } from '../testing/harness.js';

const ADMIN = ['access:services!service=ngsci', 'custom:ngsci:admin'];

let h: Harness;
let admin: string;
let alice: string;
before(async () => {
  h = await harness();
  admin = h.token({ name: 'root', admin: true, scopes: ADMIN });
  alice = h.token({ name: 'alice' });
});
after(() => h.close());

const send = (path: string, token: string, method: string, body?: unknown) =>
  h.request(path, {
    token,
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('found by API fuzzing', () => {
  test('nulAt names where a NUL character is, in strings, arrays and keys', () => {
    assert.equal(nulAt({ a: 'x', b: ['y', 'z\0'] }), 'b.1');
    assert.equal(nulAt({ ['k\0']: 1 }), 'k\0');
    assert.equal(nulAt('\0'), '');
    assert.equal(nulAt({ a: 'plain', n: 1, t: true, z: null }), null);
  });

  test('a plan label with a NUL character is refused (400), not a 500 from Postgres', async () => {
    const res = await send('/api/v1/admin/plans', admin, 'POST', {
      id: 'nul-plan',
      label: 'a\0b',
      multiplierPpm: 13,
    });
    assert.equal(res.status, 400, await res.clone().text());
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'validation_failed');
    assert.match(body.message, /label: text may not contain the NUL character/);
    // and nothing was stored
    const plans = (await (await send('/api/v1/admin/plans', admin, 'GET')).json()) as {
      plans: { id: string }[];
    };
    assert.ok(!plans.plans.some((p) => p.id === 'nul-plan'));
  });

  test('a NUL character in a query parameter is refused too', async () => {
    const res = await h.request(`/api/v1/admin/audit?path=${encodeURIComponent('/data/\0x')}`, {
      token: admin,
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, 'validation_failed');
  });

  test('an empty number in a query (?after=) is refused, not read as 0', async () => {
    const res = await h.request('/api/v1/notifications?after=', { token: alice });
    assert.equal(res.status, 400);
    assert.equal((await h.request('/api/v1/notifications?after=3', { token: alice })).status, 200);
  });

  test('a month before 1970 and a threshold over 32 bits are refused (both were 500s)', async () => {
    const month = await h.request('/api/v1/admin/users?month=0000-01', { token: admin });
    assert.equal(month.status, 400, await month.clone().text());
    const rule = await send('/api/v1/admin/audit/rules', admin, 'POST', {
      kind: 'threshold',
      path: '/data/x',
      windowSeconds: 600,
      maxFiles: 3_677_066_648_396,
    });
    assert.equal(rule.status, 400, await rule.clone().text());
  });

  test('moving a quota onto a subject that has one is a 409, and neither row changes', async () => {
    const make = async (subjectName: string, maxConcurrent: number) => {
      const res = await send('/api/v1/admin/quotas', admin, 'POST', {
        subjectKind: 'user',
        subjectName,
        maxConcurrent,
      });
      assert.equal(res.status, 201, await res.clone().text());
      return ((await res.json()) as { id: number }).id;
    };
    const first = await make('fuzz-one', 1);
    const second = await make('fuzz-two', 2);
    const res = await send(`/api/v1/admin/quotas/${second}`, admin, 'PUT', {
      subjectKind: 'user',
      subjectName: 'fuzz-one',
      maxConcurrent: 3,
    });
    assert.equal(res.status, 409, await res.clone().text());
    assert.equal(((await res.json()) as { code: string }).code, 'already_exists');
    const get = async (id: number) =>
      (await (await send(`/api/v1/admin/quotas/${id}`, admin, 'GET')).json()) as {
        subjectName: string;
        maxConcurrent: number;
      };
    assert.deepEqual(
      [await get(first), await get(second)].map((q) => [q.subjectName, q.maxConcurrent]),
      [
        ['fuzz-one', 1],
        ['fuzz-two', 2],
      ],
    );
  });

  test('no body at all on an estimate or a preferences change is the empty request, as documented', async () => {
    const estimate = await h.request('/api/v1/estimate', { token: alice, method: 'POST' });
    assert.equal(estimate.status, 200);
    assert.equal(((await estimate.json()) as { totalMicros: number }).totalMicros, 0);
    const prefs = await h.request('/api/v1/notifications/preferences', {
      token: alice,
      method: 'PUT',
    });
    assert.equal(prefs.status, 200);
    const doc = (await (await h.request('/api/v1/openapi.json')).json()) as {
      paths: Record<string, Record<string, { requestBody?: { required?: boolean } }>>;
    };
    assert.notEqual(doc.paths['/api/v1/estimate']!.post!.requestBody?.required, true);
    assert.notEqual(
      doc.paths['/api/v1/notifications/preferences']!.put!.requestBody?.required,
      true,
    );
  });

  test('a CSV statement of a user whose name is not Latin-1 downloads (it was a 500)', async () => {
    // an admin asks for it (the harness's tokens carry their user's name, so no such user token)
    const name = '研究者';
    const month = new Date().toISOString().slice(0, 7);
    const res = await h.request(
      `/api/v1/billing/statements/${month}?format=csv&user=${encodeURIComponent(name)}`,
      { token: admin },
    );
    assert.equal(res.status, 200, await res.clone().text());
    const disposition = res.headers.get('content-disposition')!;
    assert.match(disposition, /filename="ngsci-___-\d{4}-\d{2}\.csv"/);
    assert.ok(
      disposition.includes(`filename*=UTF-8''${encodeURIComponent(`ngsci-${name}-${month}.csv`)}`),
    );
    assert.equal(
      attachment("a'b(c).csv"),
      `attachment; filename="a_b_c_.csv"; filename*=UTF-8''a%27b%28c%29.csv`,
    );
  });

  test('the document lists the shared refusals: 400 and 413 with a body, 429 behind hub tokens, 431 with a query', async () => {
    const doc = (await (await h.request('/api/v1/openapi.json')).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const statuses = (path: string, method: string) =>
      Object.keys(doc.paths[path]![method]!.responses);
    for (const s of ['400', '413', '429']) {
      assert.ok(statuses('/api/v1/admin/quotas/{id}', 'put').includes(s), `PUT quota: ${s}`);
      assert.ok(statuses('/api/v1/estimate', 'post').includes(s), `POST estimate: ${s}`);
    }
    assert.ok(statuses('/api/v1/me', 'get').includes('429'), 'failed token lookups: 429');
    assert.ok(statuses('/api/v1/budget', 'get').includes('431'));
    assert.ok(statuses('/api/v1/budget', 'get').includes('400'));
    // the bridge is not behind hub tokens or the per-caller limit: no 429 is promised there
    assert.ok(!statuses('/api/v1/bridge/catalog', 'get').includes('429'));
  });
});
