/**
 * Quotas that forbid sizes: the rule (a forbid of any row that applies wins over any allow, with
 * the reason naming whose row it is), its validation, and over the real app (PGlite, the
 * harness's hub and bridge, a scripted provisioner on `local`): a launch and a resize refused with
 * quota_exceeded, the budget's limits and runway naming the forbid, and the spawn form's catalog
 * showing a forbidden pair as unavailable with the reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Budget, Catalog } from '@ngsci/contract';
import { buildCatalog } from '../catalog.js';
import { entryMatches, forbiddenSizesProblem, forbiddingEntry } from '../packages.js';
import { ACCESS, eventually, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { runwayBySize } from './budgets.js';
import { combine } from './quotas.js';
import { QUOTA_DEFAULTS, quotaRow } from '../testing/quota-row.js';

const row = quotaRow;
const DEFAULTS = QUOTA_DEFAULTS;

describe('the rule', () => {
  test('an entry names a size by id, or a pair by its GPU or CPU package; presets by id only', () => {
    assert.ok(entryMatches('any.h100x8', 'xl.h100x8'));
    assert.ok(entryMatches('any.h100x8', 's.h100x8'));
    assert.ok(!entryMatches('any.h100x8', 'xl.a100x8'));
    assert.ok(entryMatches('xl.any', 'xl.none'));
    assert.ok(!entryMatches('xl.any', 'l.none'));
    assert.ok(entryMatches('m.t4', 'm.t4'));
    assert.ok(!entryMatches('any.h100x8', 'gpu-h100x8'), 'a preset is not a pair');
    assert.ok(entryMatches('gpu-h100x8', 'gpu-h100x8'));
    const list = [
      { entry: 'xl.any', reason: 'a' },
      { entry: 'any.h100x8', reason: 'b' },
    ];
    assert.equal(forbiddingEntry(list, 'xl.h100x8')?.reason, 'a', 'the first forbid that names it');
    assert.equal(forbiddingEntry(list, 'm.none'), null);
  });

  test('validation: wildcards name packages that exist; any.any is refused', () => {
    assert.equal(forbiddenSizesProblem(null), null);
    assert.equal(forbiddenSizesProblem(['any.h100x8', 'xl.any', 'gpu-a100', 'm.t4']), null);
    assert.match(forbiddenSizesProblem(['any.any']) ?? '', /allowedSizes to an empty list/);
    assert.match(forbiddenSizesProblem(['any.k80']) ?? '', /k80 is not a GPU package/);
    assert.match(forbiddenSizesProblem(['xxl.any']) ?? '', /xxl is not a CPU package/);
  });

  test('every row that applies forbids, a forbid wins over any allow, and the reason says whose', () => {
    const rows = [
      row({ id: 1, subjectKind: 'user', subjectName: 'ana', allowedSizes: ['any.h100x8'] }),
      row({ id: 2, subjectKind: 'group', subjectName: 'students', forbiddenSizes: ['any.h100x8'] }),
      row({ id: 3, subjectKind: 'group', subjectName: 'other', forbiddenSizes: ['s.any'] }),
      row({ id: 4, forbiddenSizes: ['gpu-h100x8', 'any.h100x8'] }),
    ];
    const l = combine(rows, 'ana', ['students'], DEFAULTS);
    assert.deepEqual(l.allowedSizes, ['any.h100x8'], "the user's own allow is there");
    assert.deepEqual(l.forbiddenSizes, [
      { entry: 'any.h100x8', reason: "not allowed for your group 'students'" },
      { entry: 'gpu-h100x8', reason: 'not allowed on this hub' },
    ]);
    assert.equal(
      forbiddingEntry(l.forbiddenSizes, 'xl.h100x8')?.reason,
      "not allowed for your group 'students'",
      'the group forbid wins over the user allow',
    );
    const own = combine(
      [row({ subjectKind: 'user', subjectName: 'bo', forbiddenSizes: ['xl.any'] })],
      'bo',
      [],
      DEFAULTS,
    );
    assert.deepEqual(own.forbiddenSizes, [{ entry: 'xl.any', reason: 'not allowed for you' }]);
    assert.deepEqual(combine([], 'cy', [], DEFAULTS).forbiddenSizes, []);
  });

  test('the runway refuses a forbidden size with the forbid’s reason, before the allow list', () => {
    const catalog = buildCatalog({ clouds: ['local'], defaultCloud: 'local', simulateGpus: true });
    const runway = runwayBySize({
      catalog,
      limits: {
        allowedSizes: null,
        forbiddenSizes: [{ entry: 'cpu-large', reason: "not allowed for your group 'students'" }],
        gpuHoursPerMonth: null,
        idleTimeoutCpuSeconds: 3600,
        idleTimeoutGpuSeconds: 1800,
      },
      multiplierPpm: 1_000_000,
      budgets: [],
      gpuSecondsUsed: 0,
    });
    const large = runway.find((r) => r.size === 'cpu-large');
    assert.deepEqual(large?.forbidden, {
      code: 'quota_exceeded',
      reason: "not allowed for your group 'students'",
    });
    assert.equal(runway.find((r) => r.size === 'cpu-small')?.forbidden, null);
  });
});

describe('forbidden sizes over the API (scripted provisioner on local)', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ provisioners: new Map([['local', new ScriptedProvisioner()]]) });
  });
  after(async () => {
    await h?.close();
  });
  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;
  const post = (token: string, path: string, body: unknown) =>
    h.request(path, { method: 'POST', token, body: JSON.stringify(body) });

  test('an admin forbids packages for a group; launch and resize to them are refused, others run', async () => {
    const admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
    for (const [forbiddenSizes, pattern] of [
      [['any.any'], /forbiddenSizes: 'any.any' forbids everything/],
      [['any.k80'], /forbiddenSizes: 'any.k80': k80 is not a GPU package/],
      [['XL!'], /forbiddenSizes/],
    ] as const) {
      const bad = await post(admin, '/api/v1/admin/quotas', {
        subjectKind: 'group',
        subjectName: 'bad',
        forbiddenSizes,
      });
      assert.equal(bad.status, 400, JSON.stringify(forbiddenSizes));
      const body = await json(bad);
      assert.equal(body.code, 'validation_failed');
      assert.match(String(body.message), pattern);
    }
    const made = await post(admin, '/api/v1/admin/quotas', {
      subjectKind: 'group',
      subjectName: 'students',
      forbiddenSizes: ['xl.any', 'any.h100x8'],
    });
    assert.equal(made.status, 201, await made.clone().text());
    assert.deepEqual((await json(made)).forbiddenSizes, ['xl.any', 'any.h100x8']);
    // the user's own row allows xl: the group's forbid still wins
    const own = await post(admin, '/api/v1/admin/quotas', {
      subjectKind: 'user',
      subjectName: 'sam',
      allowedSizes: ['xl.any', 'm.any'],
    });
    assert.equal(own.status, 201, await own.clone().text());

    const token = h.token({ name: 'sam', groups: ['students'] });
    const no = await post(token, '/api/v1/instances', { cpu: 'xl' });
    assert.equal(no.status, 403);
    const refusal = await json(no);
    assert.equal(refusal.code, 'quota_exceeded');
    assert.match(
      String(refusal.message),
      /size 'xl.none' is not allowed for your group 'students' \(the quota forbids xl.any\)/,
    );

    const budget = (await (await h.request('/api/v1/budget', { token })).json()) as Budget;
    assert.deepEqual(budget.limits.forbiddenSizes, [
      { entry: 'xl.any', reason: "not allowed for your group 'students'" },
      { entry: 'any.h100x8', reason: "not allowed for your group 'students'" },
    ]);

    const yes = await post(token, '/api/v1/instances', { cpu: 'm' });
    assert.equal(yes.status, 202, await yes.clone().text());
    await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'running' ? r : null;
    }, 'the allowed pair running');
    const rs = await post(token, '/api/v1/instances/default/resize', { cpu: 'xl' });
    assert.equal(rs.status, 403);
    assert.equal((await json(rs)).code, 'quota_exceeded');
    const running = await json(await h.request('/api/v1/instances/default', { token }));
    assert.equal(running.size, 'm.none', 'the refused resize left the server as it was');
    assert.equal((await post(token, '/api/v1/instances/default/stop', {})).status, 202);

    // someone outside the group is not affected
    const other = h.token({ name: 'ola', groups: [] });
    const fine = await post(other, '/api/v1/instances', { cpu: 'xl' });
    assert.equal(fine.status, 202, await fine.clone().text());
    await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token: other }));
      return r.state === 'running' ? r : null;
    }, 'the pair of a user outside the group running');
    assert.equal((await post(other, '/api/v1/instances/default/stop', {})).status, 202);
  });

  test("the spawn form's catalog shows a forbidden pair unavailable on every cloud, with the reason", async () => {
    h.token({ name: 'sia', groups: ['students'] });
    const res = await h.bridge('/catalog?user=sia');
    assert.equal(res.status, 200, await res.clone().text());
    const cat = (await res.json()) as Catalog;
    const xl = cat.pairs?.find((p) => p.id === 'xl.none');
    assert.ok(xl?.offers.length);
    for (const o of xl.offers) {
      assert.equal(o.available, false);
      assert.equal(o.note, "not allowed for your group 'students'");
    }
    const m = cat.pairs?.find((p) => p.id === 'm.none');
    assert.ok(
      m?.offers.some((o) => o.available),
      'an allowed pair keeps its offers',
    );
    // without a user, the catalog is everyone's
    const plain = (await (await h.bridge('/catalog')).json()) as Catalog;
    assert.ok(plain.pairs?.find((p) => p.id === 'xl.none')?.offers.some((o) => o.available));
  });
});
