/**
 * The figures issue 13's first pass left on older definitions, now live to the second like every
 * other (live.ts): a group budget's spent (its members' month, with their open streams to tick it),
 * the admin panel's running instances (billed so far, as GET /instances answers it), and a month's
 * statement detail (its lines include the running part, so they sum to the list's total). Each is
 * compared with the ledger recomputed from rows once the meter has written up to that second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, monthWindow, type Budget, type Statement } from '@ngsci/contract';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import type { Stream } from './ledger.js';

let h: Harness;
before(async () => {
  h = await harness({ env: { NGSCI_HOME_GB: '0' } });
});
after(async () => {
  h.services.metering.now = () => new Date();
  await h.close();
});

const stream = (user: string, id: string, readyAt: Date, rate: number): Stream => ({
  key: id,
  kind: 'compute',
  user,
  groups: ['lab'],
  instanceId: id,
  server: 'default',
  size: 'cpu-small',
  sizeClass: 'cpu',
  cloud: 'local',
  region: 'localhost',
  spot: false,
  planId: 'private',
  multiplierPpm: 1_000_000,
  rateMicros: rate,
  ratePeriodSeconds: 3600,
  anchor: readyAt,
  closeAt: null,
  minimumSeconds: 60,
  lastActivity: null,
});

const get = async <T>(path: string, token: string): Promise<T> => {
  const res = await h.request(path, { token });
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return (await res.json()) as T;
};

test("a group budget, the admin panel's running instances and a month's detail are live to the second", async () => {
  const admin = h.token({ name: 'gap-admin', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
  const quota = await h.request('/api/v1/admin/quotas', {
    method: 'POST',
    token: admin,
    body: JSON.stringify({
      subjectKind: 'group',
      subjectName: 'lab',
      monthlyBudgetMicros: 90_000_000,
    }),
  });
  assert.ok(quota.status < 300, await quota.text());
  const readyA = new Date('2026-11-21T08:00:10.000Z');
  const readyB = new Date('2026-11-21T08:20:00.000Z');
  const a = await h.runningInstance('gap-a', { readyAt: readyA, rate: 384_000 });
  const b = await h.runningInstance('gap-b', { readyAt: readyB, rate: 96_000 });
  const sa = stream('gap-a', a.id, readyA, 384_000);
  const sb = stream('gap-b', b.id, readyB, 96_000);
  const ledger = h.services.metering.ledger;
  // the meter wrote both up to 08:45; what ran since is not written yet
  await ledger.accrue([sa, sb], new Date('2026-11-21T08:45:00.000Z'), 120, 0);
  const now = new Date('2026-11-21T09:13:27.000Z');
  h.services.metering.now = () => now;
  const tokenA = h.token({ name: 'gap-a', groups: ['lab'] });
  const budget = await get<Budget>('/api/v1/budget', tokenA);
  const adminList = await get<{
    instances: Array<{ id: string; billedMicros?: number }>;
    asOf?: string;
  }>('/api/v1/admin/instances', admin);
  const own = await get<{ instances: Array<{ id: string; billedMicros: number }> }>(
    '/api/v1/instances',
    tokenA,
  );
  const detail = await get<Statement>('/api/v1/billing/statements/2026-11', tokenA);
  const list = await get<{ statements: Array<{ month: string; totalMicros: number }> }>(
    '/api/v1/billing/statements',
    tokenA,
  );

  // the ledger recomputed from rows: the meter writes up to that second
  await ledger.accrue([sa, sb], now, 120, 0);
  const rowsA = await ledger.rowsOf(a.id);
  const rowsB = await ledger.rowsOf(b.id);
  const sum = (rows: Array<{ amountMicros: number }>) =>
    rows.reduce((x, r) => x + r.amountMicros, 0);
  const billedA = sum(rowsA);
  const billedB = sum(rowsB);
  assert.ok(billedA > 0 && billedB > 0);

  const group = budget.budgets.find((s) => s.kind === 'group' && s.name === 'lab');
  assert.ok(group, 'the group budget applies');
  assert.equal(
    group.spentMicros,
    billedA + billedB,
    "the group's month: both members, to the second",
  );
  assert.equal(
    adminList.instances.find((i) => i.id === a.id)?.billedMicros,
    billedA,
    'admin panel: running instance A',
  );
  assert.equal(adminList.instances.find((i) => i.id === b.id)?.billedMicros, billedB);
  assert.equal(own.instances.find((i) => i.id === a.id)?.billedMicros, billedA);
  assert.equal(detail.totalMicros, billedA, "the month's detail, with the running part");
  assert.equal(
    detail.lines.reduce((x, l) => x + l.amountMicros, 0),
    detail.totalMicros,
    'the lines sum to the total',
  );
  assert.equal(list.statements.find((s) => s.month === '2026-11')?.totalMicros, detail.totalMicros);

  // a surface ticks the group figure with the streams it carried, and lands on the later answer
  assert.ok(group.streams?.length, "the group budget carries its members' open streams");
  const later = new Date(now.getTime() + 125_000);
  const ticked = advance(
    group.spentMicros,
    monthWindow(later.getTime()),
    group.streams,
    Date.parse(budget.asOf!),
    later.getTime(),
  );
  h.services.metering.now = () => later;
  const again = await get<Budget>('/api/v1/budget', tokenA);
  assert.equal(ticked, again.budgets.find((s) => s.kind === 'group')?.spentMicros);
});
