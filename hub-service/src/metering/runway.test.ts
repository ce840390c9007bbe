/**
 * Budget-aware launch and stop, through GET /api/v1/budget on the real app over PGlite: each
 * size's runway at its rate, the sizes a quota forbids (with the reason), the idle timeout that
 * applies, the stop time of a spent hard-stop budget during its grace period, and GPU sizes on
 * the local "cloud" being simulations (hidden unless NGSCI_LOCAL_SIMULATE_GPUS).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Budget, SizeRunway } from '@ngsci/contract';
import { formatRunway } from '@ngsci/contract';
import { harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import { quotas } from '../db/schema.js';
import { buildCatalog } from '../catalog.js';
import { loadConfig, catalogOptions } from '../config.js';
import { BudgetAlertStore } from './budget-alerts.js';

let h: Harness;
const T0 = new Date('2026-05-10T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
let now = at(3600);

before(async () => {
  h = await harness({
    provisioners: new Map([['local', new ScriptedProvisioner()]]),
    env: { NGSCI_HOME_GB: '0', NGSCI_BUDGET_GRACE: '240' },
  });
  h.services.metering.now = () => now;
});
after(async () => h.close());

async function budgetOf(user: string): Promise<Budget> {
  const res = await h.request('/api/v1/budget', { token: h.token({ name: user, groups: [] }) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Budget;
}

const choice = (b: Budget, size: string, spot = false, cloud = 'local'): SizeRunway => {
  const r = b.runway?.find((x) => x.size === size && x.cloud === cloud && x.spot === spot);
  assert.ok(r, `a runway entry for ${size} on ${cloud}${spot ? ' (spot)' : ''}`);
  return r;
};

describe('runway per size', () => {
  test('each size: the remaining budget at its rate, quota refusals with the reason, the idle timeout', async () => {
    now = at(3600);
    await h.database.db.insert(quotas).values({
      subjectKind: 'user',
      subjectName: 'runway-u',
      monthlyBudgetMicros: 1_000_000,
      hardStop: false,
      allowedSizes: ['cpu-small', 'cpu-large'],
      idleTimeoutCpuSeconds: 1200,
      idleTimeoutGpuSeconds: 600,
    });
    // one hour of cpu-small at $0.096/h: $0.904 of $1.00 is left
    await h.runningInstance('runway-u', { readyAt: T0, rate: 96_000 });
    const b = await budgetOf('runway-u');
    assert.equal(b.spentMicros, 96_000);
    const small = choice(b, 'cpu-small');
    assert.equal(small.rateMicrosPerHour, 96_000);
    assert.equal(small.runwaySeconds, 33_900, '904,000 µ$ at 96,000 µ$/h is 9 h 25 min');
    assert.equal(formatRunway(small.runwaySeconds!), '9 h 25 min');
    assert.equal(small.forbidden, null);
    assert.equal(small.idleTimeoutSeconds, 1200);
    assert.equal(small.budget, 'user:runway-u');
    const large = choice(b, 'cpu-large');
    assert.equal(large.runwaySeconds, 8475, 'at $0.384/h: 2 h 21 min');
    assert.equal(formatRunway(large.runwaySeconds!), '2 h 21 min');
    // a GPU size is forbidden by the allowed sizes, and says so; its idle timeout is the GPU one
    const t4 = choice(b, 'gpu-t4');
    assert.deepEqual(t4.forbidden, {
      code: 'quota_exceeded',
      reason: 'not among your allowed sizes (cpu-small, cpu-large)',
    });
    assert.equal(t4.idleTimeoutSeconds, 600);
    assert.equal(t4.simulated, true, 'the harness simulates GPUs on local');
    // the service refuses that launch for the same reason
    const refused = await h.request('/api/v1/instances', {
      method: 'POST',
      token: h.token({ name: 'runway-u', groups: [] }),
      body: JSON.stringify({ size: 'gpu-t4', server: 'other' }),
    });
    assert.equal(refused.status, 403);
  });

  test("the spawn form's catalog (bridge) carries the same runway for the spawning user", async () => {
    now = at(3600);
    const plain = await h.bridge('/catalog');
    assert.equal(plain.status, 200);
    assert.equal(((await plain.json()) as { runway?: unknown }).runway, undefined);
    const res = await h.bridge('/catalog?user=runway-u');
    assert.equal(res.status, 200, await res.clone().text());
    const c = (await res.json()) as { sizes: unknown[]; runway: SizeRunway[] };
    assert.ok(c.sizes.length > 0);
    assert.deepEqual(c.runway, (await budgetOf('runway-u')).runway);
  });

  test('no budget: no runway; the plan multiplier sets the rate', async () => {
    now = at(3600);
    const b = await budgetOf('free-u');
    const small = choice(b, 'cpu-small');
    assert.equal(small.runwaySeconds, null);
    assert.equal(small.budget, null);
    assert.equal(small.forbidden, null);
    assert.equal(small.rateMicrosPerHour, 96_000);
  });
});

describe('the stop time of a spent hard-stop budget', () => {
  test('GET /budget gives the stop time during the grace period: the 100 % alert plus the grace', async () => {
    now = at(3600);
    await h.database.db.insert(quotas).values({
      subjectKind: 'user',
      subjectName: 'stop-u',
      monthlyBudgetMicros: 50_000,
      hardStop: true,
    });
    await h.runningInstance('stop-u', { readyAt: T0, rate: 96_000 });
    let b = await budgetOf('stop-u');
    assert.equal(b.budgets[0]!.percent, 192);
    assert.equal(b.stopAt, null, 'the meter has not announced 100 % yet');
    // the enforcer announces 100 % at T0 + 3590 s; the servers stop 240 s (the grace) later
    await new BudgetAlertStore(h.database.db).record(
      { kind: 'user', name: 'stop-u', month: '2026-05' },
      [50, 80, 100],
      at(3590),
    );
    b = await budgetOf('stop-u');
    assert.equal(b.stopAt, at(3590 + 240).toISOString());
    assert.equal(b.budgets[0]!.stopAt, at(3590 + 240).toISOString());
    // nothing more can be launched: every size says why
    const small = choice(b, 'cpu-small');
    assert.deepEqual(small.forbidden, {
      code: 'budget_exhausted',
      reason: 'your monthly budget is spent',
    });
    assert.equal(small.runwaySeconds, 0);
  });

  test('a soft budget over 100 % has no stop time', async () => {
    now = at(3600);
    await h.database.db.insert(quotas).values({
      subjectKind: 'user',
      subjectName: 'soft-u',
      monthlyBudgetMicros: 50_000,
      hardStop: false,
    });
    await h.runningInstance('soft-u', { readyAt: T0, rate: 96_000 });
    await new BudgetAlertStore(h.database.db).record(
      { kind: 'user', name: 'soft-u', month: '2026-05' },
      [100],
      at(3590),
    );
    const b = await budgetOf('soft-u');
    assert.equal(b.stopAt, null);
    assert.equal(choice(b, 'cpu-small').forbidden, null);
  });
});

describe('GPU sizes on the local "cloud"', () => {
  const base = {
    JUPYTERHUB_API_TOKEN: 'service-token-0123456789',
    NGSCI_BRIDGE_SECRET: 'bridge-secret-0123456789',
    NGSCI_SECRET_KEY: 'secret-key-for-tests-0123456789abcdef',
  };
  test('are unavailable without a price by default: this machine has no GPU', () => {
    const c = buildCatalog(catalogOptions(loadConfig(base)));
    const t4 = c.sizes.find((s) => s.id === 'gpu-t4')!.offers.find((o) => o.cloud === 'local')!;
    assert.equal(t4.available, false);
    assert.equal(t4.simulated, true);
    assert.equal(t4.onDemandMicrosPerHour, 0);
    assert.equal(t4.spotMicrosPerHour, null);
    assert.match(t4.note ?? '', /no GPU.*NGSCI_LOCAL_SIMULATE_GPUS/);
    const cpu = c.sizes.find((s) => s.id === 'cpu-small')!.offers.find((o) => o.cloud === 'local')!;
    assert.equal(cpu.available, true);
    assert.equal(cpu.simulated, undefined);
  });

  test('with NGSCI_LOCAL_SIMULATE_GPUS they are offered, marked simulated', () => {
    const c = buildCatalog(
      catalogOptions(loadConfig({ ...base, NGSCI_LOCAL_SIMULATE_GPUS: 'true' })),
    );
    const t4 = c.sizes.find((s) => s.id === 'gpu-t4')!.offers.find((o) => o.cloud === 'local')!;
    assert.equal(t4.available, true);
    assert.equal(t4.simulated, true);
    assert.match(t4.note ?? '', /^simulated: /);
  });
});
