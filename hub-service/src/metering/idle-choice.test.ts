/**
 * A researcher's own idle timeout within the admin's bounds: the rule (bounds across quota rows,
 * clamping when an admin narrows them), GET/PUT /api/v1/me/idle-timeout on the real app over
 * PGlite (out-of-bounds refused with the bounds in the message), and the culler stopping a server
 * after the researcher's value rather than the admin's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import type { IdleTimeout } from '@ngsci/contract';
import { formatIdleTimeout } from '@ngsci/contract';
import { harness, type Harness } from '../testing/harness.js';
import { ScriptedProvisioner } from '../testing/scripted-provisioner.js';
import type { HubClient, HubUserModel } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import { Orphans } from '../reconcile/orphans.js';
import { quotas } from '../db/schema.js';
import { buildMeter } from './index.js';
import { clampIdle, resolveIdleClass, withinIdleBounds } from './idle-choice.js';
import { combine } from './quotas.js';
import { QUOTA_DEFAULTS, quotaRow } from '../testing/quota-row.js';

const row = quotaRow;
const DEFAULTS = QUOTA_DEFAULTS;

describe('the rule', () => {
  test('clamping: into [min, max]; "never" only without an upper bound', () => {
    assert.equal(clampIdle(30, 600, 7200), 600);
    assert.equal(clampIdle(9000, 600, 7200), 7200);
    assert.equal(clampIdle(2700, 600, 7200), 2700);
    assert.equal(clampIdle(0, 600, 7200), 7200, 'never becomes the maximum');
    assert.equal(clampIdle(0, 600, 0), 0, 'never stays never without a maximum');
    assert.equal(clampIdle(99_999, 600, 0), 99_999);
    assert.ok(withinIdleBounds(600, 600, 7200));
    assert.ok(withinIdleBounds(7200, 600, 7200));
    assert.ok(!withinIdleBounds(599, 600, 7200));
    assert.ok(!withinIdleBounds(7201, 600, 7200));
    assert.ok(!withinIdleBounds(0, 600, 7200));
    assert.ok(withinIdleBounds(0, 600, 0));
  });

  test('without bounds from an admin: from 60 s up to the admin timeout (shorten, never lengthen)', () => {
    const r = resolveIdleClass(3600, null, null, null);
    assert.deepEqual(
      { min: r.minSeconds, max: r.maxSeconds, eff: r.effectiveSeconds, admin: r.boundsFromAdmin },
      { min: 60, max: 3600, eff: 3600, admin: false },
    );
    assert.equal(resolveIdleClass(3600, null, null, 900).effectiveSeconds, 900);
    // a service whose own timeout is shorter than the floor: the floor never exceeds the maximum
    const tiny = resolveIdleClass(20, null, null, null);
    assert.equal(tiny.minSeconds, 20);
    assert.equal(tiny.effectiveSeconds, 20, 'the admin timeout itself is never moved by the floor');
  });

  test('an admin narrowing the bounds later clamps the choice, and says so', () => {
    const before = resolveIdleClass(3600, 600, 14_400, 10_800);
    assert.equal(before.effectiveSeconds, 10_800);
    assert.equal(before.clamped, false);
    const after = resolveIdleClass(3600, 600, 7200, 10_800);
    assert.equal(after.effectiveSeconds, 7200);
    assert.equal(after.clamped, true);
    assert.equal(after.chosenSeconds, 10_800, 'the choice is kept as made');
    const raised = resolveIdleClass(3600, 1200, 7200, 300);
    assert.equal(raised.effectiveSeconds, 1200);
    assert.equal(raised.clamped, true);
  });

  test('the admin timeout without a choice: moved only by bounds an admin set', () => {
    assert.equal(resolveIdleClass(0, null, 7200, null).effectiveSeconds, 7200, 'never → the max');
    assert.equal(resolveIdleClass(300, 600, null, null).effectiveSeconds, 600);
    assert.equal(resolveIdleClass(0, null, null, null).effectiveSeconds, 0);
  });

  test('bounds combine like every limit: own row, else the most generous group, else default', () => {
    const rows = [
      row({
        subjectKind: 'default',
        idleTimeoutCpuMinSeconds: 900,
        idleTimeoutCpuMaxSeconds: 3600,
      }),
      row({
        subjectKind: 'group',
        subjectName: 'a',
        idleTimeoutCpuMinSeconds: 600,
        idleTimeoutCpuMaxSeconds: 7200,
      }),
      row({
        subjectKind: 'group',
        subjectName: 'b',
        idleTimeoutCpuMinSeconds: 300,
        idleTimeoutCpuMaxSeconds: 0,
      }),
      row({ subjectKind: 'user', subjectName: 'own', idleTimeoutGpuMaxSeconds: 5400 }),
    ];
    const lone = combine(rows, 'lone', [], DEFAULTS).idle.cpu;
    assert.deepEqual([lone.minSeconds, lone.maxSeconds], [900, 3600]);
    const inA = combine(rows, 'x', ['a'], DEFAULTS).idle.cpu;
    assert.deepEqual([inA.minSeconds, inA.maxSeconds], [600, 7200]);
    const inAB = combine(rows, 'x', ['a', 'b'], DEFAULTS).idle.cpu;
    assert.deepEqual([inAB.minSeconds, inAB.maxSeconds], [300, 0], 'lowest min; no max wins');
    const own = combine(rows, 'own', [], DEFAULTS, { cpuSeconds: null, gpuSeconds: 5000 });
    assert.equal(own.idle.gpu.maxSeconds, 5400);
    assert.equal(own.idleTimeoutGpuSeconds, 5000, "the culler's value is the researcher's");
    assert.equal(own.idleTimeoutCpuSeconds, 3600, 'no CPU choice: the admin timeout');
  });
});

// ---- on the real app

let h: Harness;
before(async () => {
  h = await harness({
    provisioners: new Map([['local', new ScriptedProvisioner()]]),
    env: { NGSCI_HOME_GB: '0' },
  });
});
after(async () => h.close());

const call = async (user: string, init: { method?: string; body?: unknown } = {}) => {
  const res = await h.request('/api/v1/me/idle-timeout', {
    token: h.token({ name: user, groups: ['idlers'] }),
    ...(init.method ? { method: init.method } : {}),
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as IdleTimeout & { code?: string; message?: string },
  };
};

describe('GET/PUT /api/v1/me/idle-timeout', () => {
  test('bounds from the group quota; in bounds kept, out of bounds refused with the bounds', async () => {
    await h.database.db.insert(quotas).values({
      subjectKind: 'group',
      subjectName: 'idlers',
      idleTimeoutCpuSeconds: 3600,
      idleTimeoutGpuSeconds: 1800,
      idleTimeoutCpuMinSeconds: 600,
      idleTimeoutCpuMaxSeconds: 14_400,
      idleTimeoutGpuMinSeconds: 300,
      idleTimeoutGpuMaxSeconds: 3600,
    });
    const first = await call('chooser');
    assert.equal(first.status, 200);
    assert.equal(first.body.cpu.chosenSeconds, null);
    assert.equal(first.body.cpu.effectiveSeconds, 3600);
    assert.equal(first.body.gpu.maxSeconds, 3600);
    assert.equal(first.body.updatedAt, null);

    const set = await call('chooser', {
      method: 'PUT',
      body: { cpuSeconds: 2700, gpuSeconds: 2700 },
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.cpu.effectiveSeconds, 2700);
    assert.equal(set.body.gpu.effectiveSeconds, 2700);
    assert.ok(set.body.updatedAt);

    const high = await call('chooser', { method: 'PUT', body: { gpuSeconds: 7200 } });
    assert.equal(high.status, 422);
    assert.equal(high.body.code, 'idle_timeout_out_of_bounds');
    assert.match(high.body.message!, /2 h is outside the bounds for GPU sizes: 5 min to 1 h/);
    const never = await call('chooser', { method: 'PUT', body: { cpuSeconds: 0 } });
    assert.equal(never.status, 422);
    assert.match(never.body.message!, /"never" is outside the bounds for CPU sizes: 10 min to 4 h/);
    // a refused request changes nothing
    assert.equal((await call('chooser')).body.gpu.chosenSeconds, 2700);

    // one class at a time; null returns it to the admin timeout
    const cpuOnly = await call('chooser', { method: 'PUT', body: { cpuSeconds: null } });
    assert.equal(cpuOnly.body.cpu.chosenSeconds, null);
    assert.equal(cpuOnly.body.cpu.effectiveSeconds, 3600);
    assert.equal(cpuOnly.body.gpu.chosenSeconds, 2700);

    for (const bad of [
      {},
      { cpuSeconds: 1.5 },
      { cpuSeconds: -1 },
      { cpuSeconds: '45m' },
      { other: 1 },
    ]) {
      const r = await call('chooser', { method: 'PUT', body: bad });
      assert.equal(r.status, 400, `${JSON.stringify(bad)} → ${r.status}`);
      assert.equal(r.body.code, 'validation_failed');
    }
  });

  test('the budget answer shows the effective timeout; a narrowed bound clamps it', async () => {
    await call('narrow', { method: 'PUT', body: { gpuSeconds: 3000 } });
    const budget = async () => {
      const res = await h.request('/api/v1/budget', {
        token: h.token({ name: 'narrow', groups: ['idlers'] }),
      });
      return (await res.json()) as { limits: { idleTimeoutGpuSeconds: number } };
    };
    assert.equal((await budget()).limits.idleTimeoutGpuSeconds, 3000);
    await h.database.db
      .update(quotas)
      .set({ idleTimeoutGpuMaxSeconds: 1200 })
      .where(eq(quotas.subjectName, 'idlers'));
    const now = await call('narrow');
    assert.equal(now.body.gpu.effectiveSeconds, 1200);
    assert.equal(now.body.gpu.clamped, true);
    assert.equal(now.body.gpu.chosenSeconds, 3000);
    assert.equal((await budget()).limits.idleTimeoutGpuSeconds, 1200);
    assert.equal(formatIdleTimeout(1200), '20 min');
  });

  test('without bounds from an admin a researcher may shorten, not lengthen', async () => {
    const token = h.token({ name: 'free', groups: [] });
    const put = (body: unknown) =>
      h.request('/api/v1/me/idle-timeout', { method: 'PUT', token, body: JSON.stringify(body) });
    const longer = await put({ cpuSeconds: 7200 });
    assert.equal(longer.status, 422);
    assert.match(((await longer.json()) as { message: string }).message, /only shorten/);
    assert.equal((await put({ cpuSeconds: 600 })).status, 200);
  });
});

describe('the culler uses the researcher value', () => {
  test("a server idle past the researcher's 2 min is warned and stopped; the admin's 60 min would not", async () => {
    const T0 = new Date('2026-05-10T12:00:00.000Z');
    const at = (s: number) => new Date(T0.getTime() + s * 1000);
    let now = at(0);
    const hubUser = (name: string): HubUserModel => ({
      name,
      admin: false,
      groups: [],
      servers: {
        '': {
          name: '',
          ready: true,
          pending: null,
          url: `/user/${name}/`,
          user_options: {},
          last_activity: T0.toISOString(),
          started: null,
        },
      },
    });
    const stops: string[] = [];
    const hub = {
      listActiveUsers: async () => [hubUser('short-u'), hubUser('long-u')],
      getUser: async (name: string) => ({ name, admin: false, groups: [] }),
    } as unknown as HubClient;
    const lifecycle = {
      stop: async (user: string, server: string) => {
        stops.push(user);
        const r = await h.services.store.active(user, server);
        if (r)
          await h.services.store.transition(r.id, 'stopped', 100, 'stopped', { stoppedAt: now });
        return r;
      },
      bridgeStop: async () => null,
    } as unknown as Lifecycle;
    const base = h.services.metering.settings;
    const meter = buildMeter(h.services.metering, {
      db: h.database.db,
      hub,
      logger: h.services.logger,
      store: h.services.store,
      lifecycle,
      notifier: { send: async () => {} },
      orphans: new Orphans({
        store: h.services.store,
        lifecycle,
        logger: h.services.logger,
        graceSeconds: 60,
      }),
      kernels: async () => 'unknown',
      settings: {
        ...base,
        accrueEverySeconds: 0,
        homeGb: 0,
        cull: {
          ...base.cull,
          enabled: true,
          everySeconds: 0,
          warningSeconds: 30,
          idleTimeoutCpuSeconds: 3600,
        },
      },
      now: () => now,
    });
    const token = h.token({ name: 'short-u', groups: [] });
    const set = await h.request('/api/v1/me/idle-timeout', {
      method: 'PUT',
      token,
      body: JSON.stringify({ cpuSeconds: 120 }),
    });
    assert.equal(set.status, 200, await set.clone().text());
    const short = await h.runningInstance('short-u', { readyAt: T0 });
    const long = await h.runningInstance('long-u', { readyAt: T0 });
    now = at(100);
    const r1 = await meter.cycle();
    assert.ok(r1.warned.includes(short.id), 'warned 30 s before the 2 min');
    assert.ok(!r1.warned.includes(long.id));
    now = at(140);
    const r2 = await meter.cycle();
    assert.ok(r2.culled.includes(short.id), JSON.stringify(r2));
    assert.ok(!r2.culled.includes(long.id), "the admin's hour still applies to the other user");
    assert.deepEqual(stops, ['short-u']);
    const events = await h.services.store.events(short.id);
    assert.ok(events.some((e) => /stopping: it was idle for 2 min/.test(e.message)));
  });
});
