import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { ACCESS, eventually, harness, type Harness } from './testing/harness.js';
import { instrument } from './timing.js';
import { PLANS_CHANNEL, PlanCache } from './metering/plan-cache.js';
import { planAssignments, plans } from './db/schema.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => h.close());

/** Server-Timing's phases: name → { dur, desc } */
function phases(res: Response): Map<string, { dur: number; desc?: string }> {
  const header = res.headers.get('server-timing');
  assert.ok(header, 'a Server-Timing header');
  return new Map(
    header.split(',').map((part) => {
      const [name, ...params] = part.trim().split(';');
      const dur = Number(params.find((p) => p.startsWith('dur='))?.slice(4));
      const desc = params.find((p) => p.startsWith('desc='))?.slice(6, -1);
      return [name!, { dur, ...(desc !== undefined ? { desc } : {}) }];
    }),
  );
}

test('off by default: no Server-Timing header', async () => {
  const res = await h.request('/api/v1/me', { token: h.token({ name: 'tim-off' }) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('server-timing'), null);
});

test('NGSCI_SERVER_TIMING: each answer says where its time went', async () => {
  instrument(h.services.hub, ['request']);
  const token = h.token({ name: 'tim-on', groups: ['lab'] });
  const first = phases(await h.request('/api/v1/budget', { token }));
  // a new token: the hub was asked, and that wait is in `hub`
  assert.equal(first.get('auth')?.desc, 'hub');
  assert.ok(first.get('hub')!.dur > 0);
  const again = await h.request('/api/v1/budget', { token });
  assert.equal(again.status, 200);
  const p = phases(again);
  assert.equal(p.get('auth')?.desc, 'cache');
  assert.equal(p.get('hub')!.dur, 0);
  // the budget is read from the database: its queries are counted and timed
  assert.ok(Number(p.get('db')!.desc) > 0, `queries: ${p.get('db')!.desc}`);
  assert.ok(p.get('db')!.dur > 0);
  assert.ok(p.get('serialize')!.dur > 0);
  assert.ok(p.get('total')!.dur >= p.get('auth')!.dur);
  // an answer of the error handler has the header too
  const refused = await h.request('/api/v1/budget');
  assert.equal(refused.status, 401);
  assert.ok(phases(refused).has('total'));
});

test('GET /me reads the plans from memory, and sees an admin change at once', async () => {
  const token = h.token({ name: 'plan-me', groups: ['plan-lab'] });
  const me = async () => {
    const res = await h.request('/api/v1/me', { token });
    assert.equal(res.status, 200);
    return { body: (await res.json()) as { plan: { id: string } }, db: phases(res).get('db')! };
  };
  assert.equal((await me()).body.plan.id, 'private');
  // the copy in memory answers: no query
  assert.equal((await me()).db.desc, '0');
  const admin = h.token({
    name: 'plan-admin',
    admin: true,
    scopes: [ACCESS, 'custom:ngsci:admin'],
  });
  const created = await h.request('/api/v1/admin/plans', {
    method: 'POST',
    token: admin,
    body: JSON.stringify({ id: 'plan-lab-rate', label: 'Lab rate', multiplierPpm: 500_000 }),
  });
  assert.equal(created.status, 201);
  const assigned = await h.request('/api/v1/admin/plan-assignments', {
    method: 'PUT',
    token: admin,
    body: JSON.stringify({
      subjectKind: 'group',
      subjectName: 'plan-lab',
      planId: 'plan-lab-rate',
    }),
  });
  assert.equal(assigned.status, 200);
  assert.equal((await me()).body.plan.id, 'plan-lab-rate');
});

test('a plan change announced by another replica reaches this one', async () => {
  const db = h.database.db;
  const cache = new PlanCache(db, 'private', 3_600_000);
  const stop = await cache.follow({ database: h.database, logger: { warn: () => {} } });
  try {
    assert.equal((await cache.planOf('other-replica', [])).id, 'private');
    // another replica wrote the assignment and announced it (its admin API does both)
    await db
      .insert(planAssignments)
      .values({ subjectKind: 'user', subjectName: 'other-replica', planId: 'nonprofit' });
    // not announced yet: the copy (an hour's) still answers
    assert.equal((await cache.planOf('other-replica', [])).id, 'private');
    await db.execute(sql`select pg_notify(${PLANS_CHANNEL}, '')`);
    await eventually(
      async () => ((await cache.planOf('other-replica', [])).id === 'nonprofit' ? true : null),
      'the announced change',
    );
    // the plan's row itself, label and multiplier included
    const row = await cache.planOf('other-replica', []);
    const [stored] = await db
      .select()
      .from(plans)
      .where(sql`${plans.id} = 'nonprofit'`);
    assert.deepEqual(row, stored);
  } finally {
    await stop();
  }
});

test('an old copy is read again after its maximum age, announced or not', async () => {
  let now = 0;
  const cache = new PlanCache(h.database.db, 'private', 15_000, () => now);
  assert.equal((await cache.planOf('aged-user', [])).id, 'private');
  await h.database.db
    .insert(planAssignments)
    .values({ subjectKind: 'user', subjectName: 'aged-user', planId: 'nonprofit' });
  now = 14_000;
  assert.equal((await cache.planOf('aged-user', [])).id, 'private');
  now = 15_001;
  assert.equal((await cache.planOf('aged-user', [])).id, 'nonprofit');
});
