/**
 * The plan rule on a table of cases, and its two feeders (planFor for one user, PlanTable for many)
 * answering the same over one PGlite database, so the rule cannot drift between GET /me and the meter.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryDatabase, seed, type Database } from '../db/client.js';
import { choosePlan, planFor, PlanTable, type PlanRef } from './plans.js';
import { PlanStore } from './admin-store.js';

const p = (id: string, multiplierPpm: number): PlanRef => ({ id, multiplierPpm });
const DEFAULT = p('private', 1_000_000);

describe('choosePlan', () => {
  const cases: Array<[string, PlanRef | undefined, PlanRef[], string]> = [
    ['own assignment wins over cheaper groups', p('own', 900_000), [p('free', 0)], 'own'],
    ['cheapest group wins', undefined, [p('a', 800_000), p('free', 0), p('b', 500_000)], 'free'],
    ['on a tie the first group wins', undefined, [p('x', 500_000), p('y', 500_000)], 'x'],
    ['no assignment: the default', undefined, [], 'private'],
  ];
  for (const [name, own, groups, want] of cases)
    test(name, () => assert.equal(choosePlan(own, groups, DEFAULT).id, want));
});

describe('planFor and PlanTable', () => {
  let database: Database;
  before(async () => {
    database = await openMemoryDatabase();
    await database.migrate();
    await seed(database.db);
    const plans = new PlanStore(database.db);
    await plans.create({ id: 'academic', label: 'Academic', multiplierPpm: 500_000 });
    await plans.create({ id: 'partner', label: 'Partner', multiplierPpm: 800_000 });
    await plans.assign({ subjectKind: 'user', subjectName: 'ada', planId: 'partner' });
    await plans.assign({ subjectKind: 'group', subjectName: 'uni', planId: 'academic' });
    await plans.assign({ subjectKind: 'group', subjectName: 'ngo', planId: 'nonprofit' });
  });
  after(async () => database.close());

  const cases: Array<[string, string[], string, string]> = [
    ['ada', ['ngo'], 'private', 'partner'],
    ['bob', ['uni', 'ngo'], 'private', 'nonprofit'],
    ['bob', ['uni'], 'private', 'academic'],
    ['bob', [], 'private', 'private'],
    ['bob', ['nobody'], 'academic', 'academic'],
    ['bob', [], 'missing', 'missing'],
  ];
  for (const [user, groups, defaultPlan, want] of cases)
    test(`${user} in [${groups.join(', ')}], default ${defaultPlan}: ${want}`, async () => {
      const one = await planFor(database.db, user, groups, defaultPlan);
      const table = await PlanTable.load(database.db, defaultPlan);
      const many = table.planOf(user, groups);
      assert.equal(one.id, want);
      assert.deepEqual(
        { id: many.id, multiplierPpm: many.multiplierPpm },
        {
          id: one.id,
          multiplierPpm: one.multiplierPpm,
        },
      );
    });

  test('a missing default plan is charged at list price', async () => {
    const plan = await planFor(database.db, 'bob', [], 'missing');
    assert.equal(plan.multiplierPpm, 1_000_000);
    assert.equal(plan.label, 'missing');
  });

  test('a plan in use counts its assignments; replacing an assignment keeps one row', async () => {
    const plans = new PlanStore(database.db);
    assert.equal(await plans.assignmentCount('partner'), 1);
    await plans.assign({ subjectKind: 'user', subjectName: 'ada', planId: 'academic' });
    assert.equal(await plans.assignmentCount('partner'), 0);
    assert.equal(await plans.assignmentCount('academic'), 2);
    assert.equal((await plans.assignments()).length, 3);
  });
});
