/**
 * Metering with the real app over PGlite: the ledger's sums, replays, plans, budgets and alerts,
 * quota checks before launch, the culler on the agent's kernel reports, statements and estimates.
 * Meter cycles are driven by the test with its own clock and a stub hub listing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import type { HubClient, HubUserModel } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { Notice } from '../notify/types.js';
import { buildMeter } from './index.js';
import { Orphans } from '../reconcile/orphans.js';
import type { KernelActivity } from './culler.js';
import { budgetFor } from './budgets.js';
import { planAssignments, quotas } from '../db/schema.js';

let h: Harness;
const prov = new ScriptedProvisioner();
before(async () => {
  h = await harness({ provisioners: new Map([['local', prov]]), env: { NGSCI_HOME_GB: '0' } });
});
after(async () => h.close());

const T0 = new Date('2026-05-10T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** A meter over the harness's database with a clock, a hub listing and a lifecycle the test controls. */
function meterFor(opts: {
  now: () => Date;
  hubUsers?: () => HubUserModel[];
  kernels?: KernelActivity;
  gpuBusy?: (id: string) => Promise<boolean | null>;
  settings?: Partial<ReturnType<typeof settings>>;
}) {
  const notices: Notice[] = [];
  const stops: string[] = [];
  const orphans: string[] = [];
  const hub = {
    listActiveUsers: async () => opts.hubUsers?.() ?? [],
    getUser: async (name: string) => ({ name, admin: false, groups: [] }),
  } as unknown as HubClient;
  const lifecycle = {
    stop: async (user: string, server: string) => {
      stops.push(`${user}/${server}`);
      const row = await h.services.store.active(user, server);
      if (row)
        await h.services.store.transition(row.id, 'stopped', 100, 'stopped', {
          stoppedAt: opts.now(),
        });
      return row;
    },
    bridgeStop: async (user: string, server: string) => {
      orphans.push(`${user}/${server || 'default'}`);
      return null;
    },
  } as unknown as Lifecycle;
  const logger = h.services.logger;
  const meter = buildMeter(h.services.metering, {
    db: h.database.db,
    hub,
    logger,
    store: h.services.store,
    lifecycle,
    notifier: { send: async (n) => void notices.push(n) },
    // the hub's lost servers are reconcile/orphans.ts's, fed by the meter's listing
    orphans: new Orphans({ store: h.services.store, lifecycle, logger, graceSeconds: 60 }),
    kernels: opts.kernels ?? ((id) => h.services.agents.kernelActivity(id, 120)),
    ...(opts.gpuBusy ? { gpuBusy: opts.gpuBusy } : {}),
    settings: { ...settings(), ...opts.settings },
    now: opts.now,
  });
  return { meter, notices, stops, orphans };
}

function settings() {
  return {
    ...h.services.metering.settings,
    accrueEverySeconds: 0,
    homeGb: 0,
    budgetGraceSeconds: 300,
    cull: {
      ...h.services.metering.settings.cull,
      enabled: false,
      everySeconds: 0,
      warningSeconds: 60,
      idleTimeoutCpuSeconds: 600,
      idleTimeoutGpuSeconds: 300,
      maxAgeSeconds: 0,
    },
  };
}

/** A running instance that became ready at `readyAt`, as the worker leaves it. */
const running = (
  user: string,
  opts: { size?: string; rate?: number; readyAt?: Date; server?: string } = {},
) => h.runningInstance(user, { readyAt: T0, ...opts });

const stop = (id: string, when: Date) =>
  h.services.store.transition(id, 'stopped', 100, 'stopped', { stoppedAt: when });
const total = async (id: string) =>
  (await h.services.metering.ledger.rowsOf(id)).reduce((s, r) => s + r.amountMicros, 0);
const seconds = async (id: string) =>
  (await h.services.metering.ledger.rowsOf(id)).reduce(
    (s, r) => s + (r.billedTo - r.billedFrom),
    0,
  );
const hubUser = (name: string, lastActivity: Date | null, servers = ['']): HubUserModel => ({
  name,
  admin: false,
  groups: [],
  servers: Object.fromEntries(
    servers.map((s) => [
      s,
      {
        name: s,
        ready: true,
        pending: null,
        url: `/user/${name}/`,
        user_options: {},
        last_activity: lastActivity?.toISOString() ?? null,
        started: null,
      },
    ]),
  ),
});

describe('ledger', () => {
  test('billed per second from readyAt to stoppedAt, at the snapshot rate', async () => {
    let now = at(0);
    const { meter } = meterFor({ now: () => now });
    const inst = await running('bill-a', { rate: 3_060_000 });
    for (const s of [15, 30, 45, 1000]) {
      now = at(s);
      await meter.cycle();
    }
    await stop(inst.id, at(1234.5));
    now = at(1240);
    await meter.cycle();
    assert.equal(await seconds(inst.id), 1234);
    // $3.06/h × 1234 s = 1,048,900 µ$
    assert.equal(await total(inst.id), 1_048_900);
    const rows = await h.services.metering.ledger.rowsOf(inst.id);
    assert.ok(
      rows.every((r, i) => i === 0 || r.startedAt.getTime() === rows[i - 1]!.endedAt.getTime()),
      'rows are contiguous',
    );
    assert.equal(rows.at(-1)!.final, true);
  });

  test('a 20-second start is billed the 60-second minimum', async () => {
    let now = at(0);
    const { meter } = meterFor({ now: () => now });
    const inst = await running('bill-b');
    now = at(10);
    await meter.cycle();
    await stop(inst.id, at(20));
    now = at(25);
    await meter.cycle();
    assert.equal(await seconds(inst.id), 60);
    assert.equal(await total(inst.id), 1600);
  });

  test('replaying a cycle (after a crash, or from a second replica) never double counts', async () => {
    let now = at(0);
    const a = meterFor({ now: () => now });
    const b = meterFor({ now: () => now });
    const inst = await running('bill-c', { rate: 526_000 });
    now = at(100);
    await Promise.all([a.meter.cycle(), b.meter.cycle(), a.meter.cycle()]);
    now = at(200);
    await b.meter.cycle();
    await a.meter.cycle();
    assert.equal(await seconds(inst.id), 200);
    assert.equal(await total(inst.id), Math.round((526_000 * 200) / 3600));
  });

  test('a nonprofit user is billed 0 and the usage is still recorded', async () => {
    await h.database.db
      .insert(planAssignments)
      .values({ subjectKind: 'user', subjectName: 'np-user', planId: 'nonprofit' });
    let now = at(0);
    const { meter } = meterFor({ now: () => now });
    const inst = await running('np-user', { size: 'gpu-t4', rate: 526_000 });
    now = at(3600);
    await meter.cycle();
    assert.equal(await seconds(inst.id), 3600);
    assert.equal(await total(inst.id), 0);
    const rows = await h.services.metering.ledger.rowsOf(inst.id);
    assert.ok(
      rows.every(
        (r) => r.planId === 'nonprofit' && r.multiplierPpm === 0 && r.rateMicros === 526_000,
      ),
    );
    const token = h.token({ name: 'np-user' });
    // the endpoints answer live figures on the service's clock: the test's
    h.services.metering.now = () => now;
    const usage = (await (
      await h.request(
        '/api/v1/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&granularity=day',
        { token },
      )
    ).json()) as {
      series: Array<{ size: string; seconds: number; amountMicros: number }>;
    };
    assert.deepEqual(
      usage.series.map((p) => [p.size, p.seconds, p.amountMicros]),
      [['gpu-t4', 3600, 0]],
    );
    h.services.metering.now = () => new Date();
  });

  test('the server the hub lost is stopped after the grace; an unknown hub server is reported', async () => {
    let now = at(0);
    let users: HubUserModel[] = [hubUser('orphan-u', null, ['']), hubUser('stranger', null, ['x'])];
    const { meter, orphans: allStops } = meterFor({ now: () => now, hubUsers: () => users });
    const stops = {
      get list() {
        return allStops.filter((x) => x.startsWith('orphan-u/'));
      },
    };
    await running('orphan-u');
    now = at(10);
    const r1 = await meter.cycle();
    assert.deepEqual(r1.unknownServers, ['stranger/x']);
    users = [];
    now = at(20);
    await meter.cycle();
    now = at(50);
    await meter.cycle();
    assert.deepEqual(stops.list, [], 'not within the grace');
    now = at(81);
    await meter.cycle();
    assert.deepEqual(stops.list, ['orphan-u/default']);
  });
});

describe('budgets and quotas', () => {
  test('alerts at 50/80/100 % once each, then a hard stop after the grace', async () => {
    // $0.96/h for cpu-small at this rate: 1 h = 960,000 µ$; budget $1
    await h.database.db.insert(quotas).values({
      subjectKind: 'user',
      subjectName: 'budget-u',
      monthlyBudgetMicros: 1_000_000,
      hardStop: true,
    });
    // this month, so the launch check below (on the real clock) sees the spend
    const real = new Date();
    const B = new Date(
      Math.max(real.getTime() - 7200_000, Date.UTC(real.getUTCFullYear(), real.getUTCMonth(), 1)),
    );
    const at = (s: number) => new Date(B.getTime() + s * 1000);
    let now = at(0);
    const { meter, notices, stops: allStops } = meterFor({ now: () => now });
    await running('budget-u', { rate: 960_000, readyAt: B });
    const mine = () => allStops.filter((x) => x.startsWith('budget-u/'));
    const titles = () => notices.filter((n) => n.kind === 'budget').map((n) => n.title);
    now = at(1800); // 480,000 µ$: 48 %
    await meter.cycle();
    assert.deepEqual(titles(), []);
    now = at(1900); // 50.6 %
    await meter.cycle();
    await meter.cycle();
    assert.deepEqual(titles(), ['50 % of your monthly budget is spent']);
    now = at(3100); // 82.6 %
    await meter.cycle();
    now = at(3800); // 101 %
    await meter.cycle();
    await meter.cycle();
    assert.deepEqual(titles(), [
      '50 % of your monthly budget is spent',
      '80 % of your monthly budget is spent',
      '100 % of your monthly budget is spent',
    ]);
    assert.match(notices.at(-1)!.body, /stop in 5 min/);
    assert.deepEqual(mine(), [], 'the grace runs first');
    now = at(3800 + 301);
    await meter.cycle();
    assert.deepEqual(mine(), ['budget-u/default']);
    const budgetNotices = notices.filter((n) => n.kind === 'budget');
    assert.equal(new Set(budgetNotices.map((n) => n.dedupeKey)).size, budgetNotices.length);

    const token = h.token({ name: 'budget-u' });
    const res = await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'cpu-small', server: 'again' }),
    });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'budget_exhausted');
    assert.match(body.message, /monthly budget of \$1\.00 is spent/);
    assert.equal(
      prov.started.filter((r) => r.user === 'budget-u').length,
      0,
      'nothing was provisioned',
    );
  });

  test('a launch is refused once the live figure reaches a hard-stop budget, before the meter writes a row', async () => {
    await h.database.db.insert(quotas).values({
      subjectKind: 'user',
      subjectName: 'live-cap',
      monthlyBudgetMicros: 1,
      hardStop: true,
    });
    const realNow = new Date();
    const inst = await running('live-cap', { readyAt: new Date(realNow.getTime() - 5_000) });
    // stopped after 5 s: its 60 s minimum is owed, and no meter cycle has written anything
    await stop(inst.id, realNow);
    assert.equal(await total(inst.id), 0, 'nothing in the ledger yet');
    await assert.rejects(
      h.services.metering.quotas.check('live-cap', [], { size: 'cpu-small' }),
      (e: ApiError) =>
        e.code === 'budget_exhausted' &&
        /budget of \$0\.000001 is spent \(\$0\.0016\)/.test(e.message),
    );
  });

  test('budget answers the projected exhaustion at the current burn rate', async () => {
    await h.database.db
      .insert(quotas)
      .values({ subjectKind: 'user', subjectName: 'proj-u', monthlyBudgetMicros: 10_000_000 });
    const realNow = new Date();
    await running('proj-u', { rate: 2_000_000, readyAt: realNow });
    const token = h.token({ name: 'proj-u' });
    const b = (await (await h.request('/api/v1/budget', { token })).json()) as {
      burnMicrosPerHour: number;
      exhaustedAt: string | null;
      budgets: Array<{ kind: string; exhaustedAt: string | null }>;
    };
    assert.equal(b.burnMicrosPerHour, 2_000_000);
    assert.equal(b.budgets[0]!.kind, 'user');
    const monthEnd = Date.UTC(realNow.getUTCFullYear(), realNow.getUTCMonth() + 1, 1);
    if (realNow.getTime() + 5 * 3_600_000 < monthEnd) {
      const eta = new Date(b.exhaustedAt!).getTime() - realNow.getTime();
      assert.ok(
        Math.abs(eta - 5 * 3_600_000) < 60_000,
        `about 5 h left at $2/h of $10 (got ${eta} ms)`,
      );
    }
  });

  test('launches over a quota are refused before anything is provisioned, naming the limit', async () => {
    await h.database.db.insert(quotas).values({
      subjectKind: 'group',
      subjectName: 'students',
      allowedSizes: ['cpu-small'],
      maxConcurrent: 1,
    });
    const token = h.token({ name: 'stud', groups: ['students'] });
    const launched = prov.started.length;
    const gpu = await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'gpu-t4' }),
    });
    assert.equal(gpu.status, 403);
    const body = (await gpu.json()) as { code: string; message: string };
    // the group comes from the hub: the harness's hub knows no groups for 'stud', so it is the
    // default quota that applies on the bridge side; launch() checks with the hub's groups too
    assert.equal(body.code, 'quota_exceeded');
    assert.match(body.message, /allowed sizes: cpu-small/);
    assert.equal(prov.started.length, launched);
  });
});

describe('culling', () => {
  test('an idle server is warned, then stopped; a busy kernel its agent reports keeps it; keep-running resets the clock', async () => {
    let now = at(0);
    const users = () => [hubUser('idle-u', at(0)), hubUser('busy-u', at(0))];
    const { meter, notices, stops } = meterFor({
      settings: { cull: { ...settings().cull, enabled: true } },
      now: () => now,
      hubUsers: users,
    });
    const idle = await running('idle-u');
    const busy = await running('busy-u');
    // each agent reports with its own instance credential; the meter never calls a server
    const agentOf = new Map([
      [idle.id, await h.services.agents.issue(idle.id)],
      [busy.id, await h.services.agents.issue(busy.id)],
    ]);
    const report = (id: string, busyKernels: number, token = agentOf.get(id)!) =>
      h.request('/api/v1/agent/kernels', {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ total: 2, busy: busyKernels }),
      });
    assert.equal((await report(idle.id, 0)).status, 202);
    assert.equal((await report(busy.id, 1)).status, 202);
    // the user's own token cannot speak for the agent: no "busy forever" from a notebook
    const forged = await report(idle.id, 2, h.token({ name: 'idle-u' }));
    assert.equal(forged.status, 403);
    assert.equal(((await forged.json()) as { code: string }).code, 'forbidden');
    now = at(545);
    const r1 = await meter.cycle();
    assert.ok(r1.warned.includes(idle.id));
    assert.ok(!r1.warned.includes(busy.id), 'a busy kernel is not even warned');
    const warning = notices.find((n) => n.kind === 'idle_stop')!;
    assert.deepEqual(warning.actions, [{ id: 'keep_running', label: 'Keep running' }]);
    const events = await h.services.store.events(idle.id);
    assert.match(events.at(-1)!.message, /idle for 9 min; stops at/);
    now = at(610);
    const r2 = await meter.cycle();
    assert.ok(r2.culled.includes(idle.id));
    assert.deepEqual(
      stops.filter((x) => /^(idle|busy)-u\//.test(x)),
      ['idle-u/default'],
    );
    // the busy one becomes idle: warned, and "Keep running" through the API restarts its clock
    assert.equal((await report(busy.id, 0)).status, 202);
    now = at(700);
    const r3 = await meter.cycle();
    assert.ok(r3.warned.includes(busy.id));
    const token = h.token({ name: 'busy-u' });
    // the API's meter is the harness's own; both write the same idle_state row
    const kr = await h.request('/api/v1/instances/default/keep-running', { method: 'POST', token });
    assert.equal(kr.status, 200);
    now = new Date(Math.max(Date.now(), at(800).getTime()));
    const r4 = await meter.cycle();
    assert.ok(!r4.culled.includes(busy.id), 'kept running');
  });
});

describe('culling without an agent report', () => {
  test('a server whose agent is silent is culled on the hub activity alone (killing the agent keeps nothing running)', async () => {
    let now = at(0);
    const { meter, stops } = meterFor({
      settings: { cull: { ...settings().cull, enabled: true } },
      now: () => now,
      hubUsers: () => [hubUser('quiet-u', at(0))],
    });
    const quiet = await running('quiet-u');
    const token = await h.services.agents.issue(quiet.id);
    assert.match(token, /^ngsa_/);
    assert.equal(await h.services.agents.kernelActivity(quiet.id, 120), 'unknown');
    now = at(545);
    assert.ok((await meter.cycle()).warned.includes(quiet.id));
    now = at(610);
    assert.ok((await meter.cycle()).culled.includes(quiet.id));
    assert.ok(stops.includes('quiet-u/default'));
    // the instance ended: its agent credential ended with it
    const after = await h.request('/api/v1/agent/kernels', {
      method: 'POST',
      token,
      body: JSON.stringify({ total: 1, busy: 1 }),
    });
    assert.equal(after.status, 401);
  });
});

describe('a hub listing that missed a server', () => {
  test('a running server one listing missed keeps its last activity: no idle warning for it', async () => {
    let now = at(0);
    let listed = true;
    const { meter } = meterFor({
      settings: { cull: { ...settings().cull, enabled: true } },
      now: () => now,
      // offset pages shift when a user is deleted while the meter reads them: one user is missed
      hubUsers: () => [
        hubUser('listed-u', at(0)),
        ...(listed ? [hubUser('missed-u', at(500))] : []),
      ],
    });
    const r = await running('missed-u');
    now = at(520);
    assert.ok(!(await meter.cycle()).warned.includes(r.id));
    listed = false;
    now = at(700);
    assert.ok(
      !(await meter.cycle()).warned.includes(r.id),
      'its activity at 500 s still counts, not its start at 0 s',
    );
    // the activity it kept still ages: idle since 500 s, warned 540 s later
    listed = true;
    now = at(1050);
    assert.ok((await meter.cycle()).warned.includes(r.id));
  });
});

describe('budget spend to the last cycle', () => {
  test('GET /budget counts usage the meter priced but has not written yet', async () => {
    let now = at(0);
    const { meter } = meterFor({
      now: () => now,
      settings: { accrueEverySeconds: 3600 },
    });
    await running('lag-u', { rate: 3_600_000, readyAt: at(0) }); // 1,000 µ$ a second
    now = at(120);
    const report = await meter.cycle();
    assert.equal(report.rowsWritten, 0, 'nothing written yet: the row is younger than an hour');
    const b = await budgetFor(h.services.metering, h.database.db, 'lag-u', [], 'private', now);
    assert.equal(b.spentMicros, 120_000, 'yet the spend is to the second');
  });
});

describe('GPU-aware culling', () => {
  test('a GPU server whose agent reports the GPU at work is not culled, though its kernels look idle', async () => {
    let now = at(0);
    let gpuAtWork = true;
    const { meter } = meterFor({
      settings: { cull: { ...settings().cull, enabled: true } },
      now: () => now,
      hubUsers: () => [hubUser('gpu-u', at(0)), hubUser('cpu-u', at(0))],
      gpuBusy: async () => gpuAtWork,
    });
    const training = await running('gpu-u', { size: 'gpu-t4', rate: 526_000 });
    const cpu = await running('cpu-u');
    now = at(250);
    const r1 = await meter.cycle();
    assert.ok(r1.keptBusy.includes(training.id), 'the GPU is at work');
    assert.ok(!r1.warned.includes(training.id));
    now = at(560);
    const r2 = await meter.cycle();
    assert.ok(r2.warned.includes(cpu.id), 'GPU samples say nothing about a CPU size');
    gpuAtWork = false;
    now = at(600);
    const r3 = await meter.cycle();
    assert.ok(r3.warned.includes(training.id), 'an idle GPU is warned like any idle server');
  });
});

describe('statements, estimates, admin', () => {
  test('the statement CSV sums to the JSON totals', async () => {
    let now = at(0);
    const { meter } = meterFor({
      now: () => now,
      settings: { homeGb: 10, homeGbMonthMicros: 80_000, storageEverySeconds: 0 },
    });
    const a = await running('csv-u', { rate: 123_457, server: 'one' });
    const b = await running('csv-u', {
      size: 'gpu-t4',
      rate: 526_000,
      server: 'two',
      readyAt: at(7),
    });
    for (const s of [13, 29, 977, 3601]) {
      now = at(s);
      await meter.cycle();
    }
    await stop(a.id, at(3700));
    await stop(b.id, at(3701.3));
    now = at(3800);
    await meter.cycle();
    const token = h.token({ name: 'csv-u' });
    const json = (await (
      await h.request('/api/v1/billing/statements/2026-05', { token })
    ).json()) as { totalMicros: number; lines: Array<{ amountMicros: number; kind: string }> };
    assert.ok(
      json.lines.some((l) => l.kind === 'storage'),
      'the home volume is billed',
    );
    assert.equal(
      json.totalMicros,
      json.lines.reduce((s, l) => s + l.amountMicros, 0),
    );
    assert.ok(json.totalMicros > 0);
    const res = await h.request('/api/v1/billing/statements/2026-05', {
      token,
      headers: { accept: 'text/csv' },
    });
    assert.match(res.headers.get('content-type') ?? '', /text\/csv/);
    const lines = (await res.text()).trim().split('\r\n');
    const header = lines[0]!.split(',');
    const amountCol = header.indexOf('amount_micros');
    const body = lines.slice(1, -1).map((l) => Number(l.split(',')[amountCol]));
    const totalRow = lines.at(-1)!.split(',');
    assert.equal(totalRow[0], 'total');
    assert.equal(
      body.reduce((s, x) => s + x, 0),
      json.totalMicros,
    );
    assert.equal(Number(totalRow[amountCol]), json.totalMicros);
    const list = (await (
      await h.request('/api/v1/billing/statements?format=csv', { token })
    ).json()) as { statements: Array<{ month: string; totalMicros: number }> };
    assert.deepEqual(list.statements, [
      { month: '2026-05', totalMicros: json.totalMicros, seconds: 3700 + 3694 },
    ]);
    assert.equal((await h.request('/api/v1/billing/statements/2026-13', { token })).status, 400);
  });

  test('estimate: line items, monthly and annual totals', async () => {
    const token = h.token({ name: 'est' });
    const res = await h.request('/api/v1/estimate', {
      method: 'POST',
      token,
      body: JSON.stringify({
        months: 12,
        alwaysOn: [{ name: 'hub VM', ratePerHourMicros: 96_000 }],
        fixedMonthly: [{ name: 'load balancer', monthlyMicros: 18_000_000 }],
        instanceHours: [
          { size: 'gpu-t4', hoursPerMonth: 100 },
          { size: 'gpu-t4', hoursPerMonth: 10.5, spot: true },
          { size: 'gpu-a100', hoursPerMonth: 2, ratePerHourMicros: 4_000_000 },
        ],
        storage: [{ class: 'home', gb: 500, gbMonthMicros: 80_000 }],
      }),
    });
    assert.equal(res.status, 200);
    const e = (await res.json()) as {
      lines: Array<{ monthlyMicros: number; name: string }>;
      monthlyMicros: number;
      annualMicros: number;
    };
    assert.deepEqual(
      e.lines.map((l) => l.monthlyMicros),
      [70_080_000, 18_000_000, 52_600_000, 2_209_200, 8_000_000, 40_000_000],
    );
    assert.equal(e.monthlyMicros, 190_889_200);
    assert.equal(e.annualMicros, 190_889_200 * 12);
    const bad = await h.request('/api/v1/estimate', {
      method: 'POST',
      token,
      body: JSON.stringify({ instanceHours: [{ size: 'gpu-t4', hoursPerMonth: -1 }] }),
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'validation_failed');
  });

  test('admin: price overrides reach the catalog and launches; quotas CRUD; non-admins refused', async () => {
    const admin = h.token({ name: 'boss', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
    const user = h.token({ name: 'plain' });
    assert.equal((await h.request('/api/v1/admin/quotas', { token: user })).status, 403);
    const put = await h.request('/api/v1/admin/prices', {
      method: 'PUT',
      token: admin,
      body: JSON.stringify({ size: 'cpu-large', cloud: 'local', onDemandMicrosPerHour: 111_111 }),
    });
    assert.equal(put.status, 200);
    const cat = (await (await h.request('/api/v1/catalog', { token: user })).json()) as {
      sizes: Array<{ id: string; offers: Array<{ cloud: string; onDemandMicrosPerHour: number }> }>;
    };
    assert.equal(
      cat.sizes.find((s) => s.id === 'cpu-large')!.offers.find((o) => o.cloud === 'local')!
        .onDemandMicrosPerHour,
      111_111,
    );
    const est = (await (
      await h.request('/api/v1/estimate', {
        method: 'POST',
        token: user,
        body: JSON.stringify({ instanceHours: [{ size: 'cpu-large', hoursPerMonth: 1 }] }),
      })
    ).json()) as { monthlyMicros: number };
    assert.equal(est.monthlyMicros, 111_111);
    const q = await h.request('/api/v1/admin/quotas', {
      method: 'POST',
      token: admin,
      body: JSON.stringify({ subjectKind: 'user', subjectName: 'plain', maxConcurrent: 2 }),
    });
    assert.equal(q.status, 201);
    const id = ((await q.json()) as { id: number }).id;
    assert.equal(
      (
        await h.request('/api/v1/admin/quotas', {
          method: 'POST',
          token: admin,
          body: JSON.stringify({ subjectKind: 'user', subjectName: 'plain' }),
        })
      ).status,
      409,
    );
    const bad = await h.request('/api/v1/admin/quotas', {
      method: 'POST',
      token: admin,
      body: JSON.stringify({ subjectKind: 'default', subjectName: 'x' }),
    });
    assert.equal(bad.status, 400);
    assert.equal(
      (await h.request(`/api/v1/admin/quotas/${id}`, { method: 'DELETE', token: admin })).status,
      204,
    );
    const plan = await h.request('/api/v1/admin/plans', {
      method: 'POST',
      token: admin,
      body: JSON.stringify({ id: 'academic', label: 'Academic', multiplierPpm: 400_000 }),
    });
    assert.equal(plan.status, 201);
    assert.equal(
      (
        await h.request('/api/v1/admin/plan-assignments', {
          method: 'PUT',
          token: admin,
          body: JSON.stringify({ subjectKind: 'group', subjectName: 'uni', planId: 'academic' }),
        })
      ).status,
      200,
    );
    const me = (await (
      await h.request('/api/v1/me', { token: h.token({ name: 'prof', groups: ['uni'] }) })
    ).json()) as { plan: { id: string } };
    assert.equal(me.plan.id, 'academic');
    const users = (await (await h.request('/api/v1/admin/users', { token: admin })).json()) as {
      users: Array<{ name: string; spentMicros: number }>;
    };
    assert.ok(
      users.users.some((u) => u.name === 'bill-a' && u.spentMicros > 0) || users.users.length > 0,
    );
    assert.equal((await h.request('/api/v1/admin/instances', { token: admin })).status, 200);
  });
});

test('GET /budget prices with the plans in memory, and an admin change shows at once', async () => {
  const token = h.token({ name: 'bplan-u', groups: ['bplan-lab'] });
  const admin = h.token({
    name: 'bplan-admin',
    admin: true,
    scopes: [ACCESS, 'custom:ngsci:admin'],
  });
  const rate = async () => {
    const res = await h.request('/api/v1/budget', { token });
    assert.equal(res.status, 200);
    const b = (await res.json()) as {
      runway: Array<{ size: string; cloud: string; spot: boolean; rateMicrosPerHour: number }>;
    };
    return b.runway.find((r) => r.size === 'cpu-small' && r.cloud === 'local' && !r.spot)!
      .rateMicrosPerHour;
  };
  const catalog = (await (await h.request('/api/v1/catalog', { token })).json()) as {
    sizes: Array<{ id: string; offers: Array<{ cloud: string; onDemandMicrosPerHour: number }> }>;
  };
  const list = catalog.sizes
    .find((s) => s.id === 'cpu-small')!
    .offers.find((o) => o.cloud === 'local')!.onDemandMicrosPerHour;
  const before_ = await rate();
  const created = await h.request('/api/v1/admin/plans', {
    method: 'POST',
    token: admin,
    body: JSON.stringify({ id: 'bplan-quarter', label: 'Quarter', multiplierPpm: 250_000 }),
  });
  assert.equal(created.status, 201);
  const assigned = await h.request('/api/v1/admin/plan-assignments', {
    method: 'PUT',
    token: admin,
    body: JSON.stringify({
      subjectKind: 'group',
      subjectName: 'bplan-lab',
      planId: 'bplan-quarter',
    }),
  });
  assert.equal(assigned.status, 200);
  // the very next answer: the group's new plan, not the copy from before the change
  const after_ = await rate();
  assert.equal(after_, Number((BigInt(list) * 250_000n + 500_000n) / 1_000_000n));
  assert.notEqual(after_, before_);
});
