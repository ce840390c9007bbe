/**
 * One figure per quantity (issue 13): at one instant on the service's clock, GET /budget,
 * /usage, /instances, /billing/statements and /admin/users answer the same amount for the same
 * user, and it equals the ledger recomputed from its rows once the meter has written that second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spentThisMonth, spentToday, type Budget, type LiveFigures } from '@ngsci/contract';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import { planAssignments, plans } from '../db/schema.js';
import type { Stream } from './ledger.js';

let h: Harness;
before(async () => {
  h = await harness({ env: { NGSCI_HOME_GB: '0' } });
});
after(async () => {
  h.services.metering.now = () => new Date();
  await h.close();
});

const stream = (user: string, id: string, readyAt: Date, rate: number, ppm: number): Stream => ({
  key: id,
  kind: 'compute',
  user,
  groups: [],
  instanceId: id,
  server: 'default',
  size: 'cpu-small',
  sizeClass: 'cpu',
  cloud: 'local',
  region: 'localhost',
  spot: false,
  planId: 'figures',
  multiplierPpm: ppm,
  rateMicros: rate,
  ratePeriodSeconds: 3600,
  anchor: readyAt,
  closeAt: null,
  minimumSeconds: 60,
  lastActivity: null,
});

async function figures(user: string, admin: string, now: Date) {
  h.services.metering.now = () => now;
  const token = h.token({ name: user });
  const get = async <T>(path: string, t = token) => {
    const res = await h.request(path, { token: t });
    assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
    return (await res.json()) as T;
  };
  const month = now.toISOString().slice(0, 7);
  const budget = await get<Budget>('/api/v1/budget');
  const usage = await get<{ totalMicros: number }>('/api/v1/usage?granularity=day');
  const today = await get<{ totalMicros: number }>(
    `/api/v1/usage?granularity=hour&from=${now.toISOString().slice(0, 10)}T00:00:00Z`,
  );
  const inst = await get<{ instances: Array<{ billedMicros: number }> }>('/api/v1/instances');
  const statements = await get<{ statements: Array<{ month: string; totalMicros: number }> }>(
    '/api/v1/billing/statements',
  );
  const users = await get<{ users: Array<{ name: string; spentMicros: number }> }>(
    '/api/v1/admin/users',
    admin,
  );
  return {
    budget,
    budgetSpent: budget.budgets[0]?.spentMicros,
    usageMonth: usage.totalMicros,
    usageToday: today.totalMicros,
    billed: inst.instances[0]!.billedMicros,
    statement: statements.statements.find((s) => s.month === month)?.totalMicros,
    admin: users.users.find((u) => u.name === user)?.spentMicros,
  };
}

test('every endpoint answers the same figure at the same instant, equal to the ledger rows, with a plan multiplier', async () => {
  const db = h.database.db;
  await db.insert(plans).values({ id: 'figures', label: 'Figures', multiplierPpm: 800_000 });
  await db
    .insert(planAssignments)
    .values({ subjectKind: 'user', subjectName: 'fig-user', planId: 'figures' });
  const admin = h.token({ name: 'fig-admin', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
  const budgetRes = await h.request('/api/v1/admin/quotas', {
    method: 'POST',
    token: admin,
    body: JSON.stringify({
      subjectKind: 'user',
      subjectName: 'fig-user',
      monthlyBudgetMicros: 50_000_000,
    }),
  });
  assert.ok(budgetRes.status < 300, await budgetRes.text());
  const readyAt = new Date('2026-11-20T09:59:30.000Z');
  const inst = await h.runningInstance('fig-user', { readyAt: readyAt, rate: 384_000 });
  const s = stream('fig-user', inst.id, readyAt, 384_000, 800_000);
  // the meter wrote the first half hour; what ran since is not written yet
  await h.services.metering.ledger.accrue([s], new Date('2026-11-20T10:30:00.000Z'), 120, 0);
  const now = new Date('2026-11-20T11:17:42.000Z');
  const f = await figures('fig-user', admin, now);
  // the ledger recomputed from rows: let the meter write up to that second, and sum the rows
  await h.services.metering.ledger.accrue([s], now, 120, 0);
  const rows = await h.services.metering.ledger.rowsOf(inst.id);
  const fromRows = rows.reduce((a, r) => a + r.amountMicros, 0);
  assert.equal(rows.at(-1)!.endedAt.getTime(), now.getTime());
  assert.ok(fromRows > 0);
  assert.deepEqual(
    {
      budget: f.budget.spentMicros,
      today: f.budget.spentTodayMicros,
      budgetSpent: f.budgetSpent,
      usageMonth: f.usageMonth,
      usageToday: f.usageToday,
      billed: f.billed,
      statement: f.statement,
      admin: f.admin,
    },
    {
      budget: fromRows,
      today: fromRows,
      budgetSpent: fromRows,
      usageMonth: fromRows,
      usageToday: fromRows,
      billed: fromRows,
      statement: fromRows,
      admin: fromRows,
    },
  );
  // a surface that ticks from the answer (contract figures.ts) lands on the same numbers later
  const live = f.budget.figures as LiveFigures;
  const later = new Date(now.getTime() + 95_000);
  const g = await figures('fig-user', admin, later);
  assert.equal(spentThisMonth(live, later.getTime()), g.budget.spentMicros);
  assert.equal(spentToday(live, later.getTime()), g.usageToday);
  assert.equal(g.billed, g.admin);
});

test('across a month boundary: this month starts again, the last month keeps its total', async () => {
  const readyAt = new Date('2026-11-30T23:40:00.000Z');
  const inst = await h.runningInstance('fig-month', { readyAt: readyAt, rate: 96_000 });
  const s = stream('fig-month', inst.id, readyAt, 96_000, 1_000_000);
  await h.services.metering.ledger.accrue([s], new Date('2026-11-30T23:50:00.000Z'), 120, 0);
  const admin = h.token({ name: 'fig-admin', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
  const now = new Date('2026-12-01T00:10:05.000Z');
  const f = await figures('fig-month', admin, now);
  await h.services.metering.ledger.accrue([s], now, 120, 0);
  const rows = await h.services.metering.ledger.rowsOf(inst.id);
  const inDecember = rows
    .filter((r) => r.startedAt.getTime() >= Date.parse('2026-12-01T00:00:00Z'))
    .reduce((a, r) => a + r.amountMicros, 0);
  const all = rows.reduce((a, r) => a + r.amountMicros, 0);
  assert.ok(inDecember > 0 && all > inDecember);
  assert.equal(f.budget.spentMicros, inDecember);
  assert.equal(f.usageMonth, inDecember);
  assert.equal(f.statement, inDecember);
  assert.equal(f.admin, inDecember);
  assert.equal(f.billed, all);
  // the November figures as a ticking surface sees them after midnight
  const live = f.budget.figures as LiveFigures;
  assert.equal(spentThisMonth(live, now.getTime()), inDecember);
});
