/**
 * Spot preemption (preemption.ts): the decision on its own, then through the app, the harness's
 * fake hub and the worker: a spot launch, the agent's notice, the machine taken away as a cloud
 * would, and the same server started again (or left stopped) as the launch chose. The cloud is a
 * TEST DOUBLE twice over: a provisioner double whose machines can be taken away, and the
 * terraform provisioner running the fake terraform binary (testing/terraform-double.ts) whose
 * health check stops answering.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCatalog } from '../catalog.js';
import { eventually, harness, type Harness } from '../testing/harness.js';
import { TEST_DOUBLE_terraformProvisioner } from '../testing/terraform-double.js';
import type {
  ExitReport,
  Provisioned,
  ProvisionContext,
  ProvisionRequest,
  Provisioner,
} from '../provisioners/types.js';
import { onPreemptionFor, preemptionPlan, relaunchTarget } from './preemption.js';

describe('the decision', () => {
  const running = {
    spot: true,
    state: 'running',
    spotNoticeAt: new Date(),
    onPreemption: 'on-demand' as const,
  };

  it('a running spot instance that had the notice was preempted; its choice says what follows', () => {
    assert.deepEqual(preemptionPlan(running), { preempted: true, relaunch: 'on-demand' });
    assert.deepEqual(preemptionPlan({ ...running, onPreemption: 'spot' }), {
      preempted: true,
      relaunch: 'spot',
    });
    assert.deepEqual(preemptionPlan({ ...running, onPreemption: 'stop' }), {
      preempted: true,
      relaunch: null,
    });
    // an instance from before the setting existed stays stopped: nothing starts unasked
    assert.deepEqual(preemptionPlan({ ...running, onPreemption: null }), {
      preempted: true,
      relaunch: null,
    });
  });

  it('without the notice, on demand, or not running, it is a crash', () => {
    assert.deepEqual(preemptionPlan({ ...running, spotNoticeAt: null }), { preempted: false });
    assert.deepEqual(preemptionPlan({ ...running, spot: false }), { preempted: false });
    for (const state of ['starting', 'stopping', 'stopped', 'failed'])
      assert.deepEqual(preemptionPlan({ ...running, state }), { preempted: false }, state);
  });

  it('the choice is recorded for spot launches only, the service default filling in', () => {
    assert.equal(onPreemptionFor(false, 'on-demand', 'spot'), null);
    assert.equal(onPreemptionFor(true, undefined, 'stop'), 'stop');
    assert.equal(onPreemptionFor(true, 'on-demand', 'stop'), 'on-demand');
  });

  it('the relaunch runs the same machine at the chosen capacity’s price', () => {
    const catalog = buildCatalog({ clouds: ['local', 'aws'], defaultCloud: 'local' });
    const offer = catalog.sizes
      .find((s) => s.id === 'gpu-t4')!
      .offers.find((o) => o.cloud === 'aws')!;
    const row = { sizeId: 'gpu-t4', cloud: 'aws', region: offer.region };
    const onDemand = relaunchTarget(catalog, row, 'on-demand');
    assert.equal(onDemand.spot, false);
    assert.equal(onDemand.ratePerHourMicros, offer.onDemandMicrosPerHour);
    assert.equal(onDemand.preempted, true);
    const spot = relaunchTarget(catalog, row, 'spot');
    assert.equal(spot.spot, true);
    assert.equal(spot.ratePerHourMicros, offer.spotMicrosPerHour);
    assert.ok(spot.ratePerHourMicros < onDemand.ratePerHourMicros);
  });
});

/** TEST DOUBLE of a cloud: machines start at once and the test can take one away, as a cloud does. */
class ReclaimableCloudDouble implements Provisioner {
  readonly kind = 'local' as const;
  readonly agentTokens = new Map<string, string>();
  readonly stopped: string[] = [];
  private listener: ((r: ExitReport) => void) | null = null;

  async start(req: ProvisionRequest, _ctx: ProvisionContext): Promise<Provisioned> {
    if (req.agentToken) this.agentTokens.set(req.instanceId, req.agentToken);
    return { targetUrl: `http://10.0.0.9:8888${req.baseUrl}`, ref: { vm: req.instanceId } };
  }
  async stop(instanceId: string): Promise<void> {
    this.stopped.push(instanceId);
  }
  async adopt(): Promise<boolean> {
    return false;
  }
  onExit(listener: (r: ExitReport) => void): void {
    this.listener = listener;
  }
  /** the cloud takes the machine: the provisioner sees its process gone */
  take(instanceId: string): void {
    this.listener?.({
      instanceId,
      exitCode: null,
      errorCode: 'process_exited',
      message: 'the server process disappeared',
    });
  }
  async close(): Promise<void> {}
}

interface Inst {
  id: string;
  state: string;
  spot: boolean;
  ratePerHourMicros: number;
  errorCode: string | null;
  onPreemption?: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
}

async function json<T>(res: Response): Promise<T> {
  assert.ok(res.status < 300, `${res.status} ${await res.clone().text()}`);
  return (await res.json()) as T;
}

function offerOf(h: Harness) {
  const offer = h.services
    .catalog()
    .sizes.find((s) => s.id === 'gpu-t4')
    ?.offers.find((o) => o.cloud === 'aws');
  assert.ok(offer && offer.spotMicrosPerHour !== null);
  return offer;
}

async function launch(h: Harness, token: string, body: Record<string, unknown>): Promise<Inst> {
  await json(
    await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', spot: true, ...body }),
    }),
  );
  return eventually(async () => {
    const r = await json<Inst>(await h.request('/api/v1/instances/default', { token }));
    return r.state === 'running' ? r : null;
  }, 'the spot machine running');
}

async function notice(h: Harness, agentToken: string): Promise<void> {
  // the agent's report of AWS's recorded instance-action answer (cli/src/agent/spot.ts)
  const res = await h.request('/api/v1/agent/spot', {
    token: agentToken,
    method: 'POST',
    body: JSON.stringify({ cloud: 'aws', action: 'terminate', at: '2026-11-20T10:02:00Z' }),
  });
  assert.equal(res.status, 202);
}

async function history(h: Harness, token: string): Promise<Inst[]> {
  const r = await json<{ instances: Inst[] }>(
    await h.request('/api/v1/instances?all=true', { token }),
  );
  return r.instances;
}

async function notices(h: Harness, token: string) {
  const r = await json<{ notifications: Array<{ kind: string; title: string; body: string }> }>(
    await h.request('/api/v1/notifications', { token }),
  );
  return r.notifications;
}

describe('a preempted spot server (harness, cloud test double)', () => {
  const cloud = new ReclaimableCloudDouble();
  let hh: Harness | null = null;
  after(() => hh?.close());
  const h = async () =>
    (hh ??= await harness({
      provisioners: new Map([['cloud=aws', cloud]]),
      env: { NGSCI_CLOUDS: 'local,aws' },
    }));

  it('with on-demand recovery it comes back on demand, at the on-demand rate', async () => {
    const s = await h();
    const token = s.token({ name: 'pre-ondemand' });
    const first = await launch(s, token, { onPreemption: 'on-demand' });
    assert.equal(first.onPreemption, 'on-demand');
    assert.equal(first.ratePerHourMicros, offerOf(s).spotMicrosPerHour);
    await notice(s, cloud.agentTokens.get(first.id)!);
    const warned = await notices(s, token);
    assert.match(warned[0]!.body, /starts again on demand/);
    cloud.take(first.id);

    const back = await eventually(async () => {
      const r = await json<Inst>(await s.request('/api/v1/instances/default', { token }));
      return r.id !== first.id && r.state === 'running' ? r : null;
    }, 'the server running again');
    assert.equal(back.spot, false, 'on demand now');
    assert.equal(back.ratePerHourMicros, offerOf(s).onDemandMicrosPerHour);
    assert.equal(back.onPreemption, null, 'an on-demand machine is not preempted');
    const old = (await history(s, token)).find((i) => i.id === first.id)!;
    assert.equal(old.state, 'stopped');
    assert.equal(old.errorCode, 'preempted');
    assert.equal(old.ratePerHourMicros, offerOf(s).spotMicrosPerHour, 'the old one at spot');
    assert.ok(
      Date.parse(old.stoppedAt!) <= Date.parse(back.readyAt!),
      'the old machine’s billing ended before the new one’s began',
    );
    const told = await notices(s, token);
    assert.ok(
      told.some((n) => /starting again on demand/.test(n.title)),
      JSON.stringify(told),
    );
  });

  it("with 'stop' it stays stopped and says so", async () => {
    const s = await h();
    const token = s.token({ name: 'pre-stop' });
    const first = await launch(s, token, { onPreemption: 'stop' });
    await notice(s, cloud.agentTokens.get(first.id)!);
    cloud.take(first.id);
    const ended = await eventually(async () => {
      const r = await json<Inst>(await s.request('/api/v1/instances/default', { token }));
      return r.state === 'stopped' ? r : null;
    }, 'the server stopped');
    assert.equal(ended.id, first.id);
    assert.equal(ended.errorCode, 'preempted');
    const told = await notices(s, token);
    assert.ok(told.some((n) => /was stopped: the cloud took its spot machine back/.test(n.title)));
    // nothing starts behind the user's back
    await new Promise((r) => setTimeout(r, 1500));
    const all = await history(s, token);
    assert.equal(all.length, 1, JSON.stringify(all));
  });

  it('without a notice the machine that goes is a failure, not a preemption', async () => {
    const s = await h();
    const token = s.token({ name: 'pre-crash' });
    const first = await launch(s, token, { onPreemption: 'on-demand' });
    cloud.take(first.id);
    const ended = await eventually(async () => {
      const r = await json<Inst>(await s.request('/api/v1/instances/default', { token }));
      return r.state === 'failed' ? r : null;
    }, 'the server failed');
    assert.equal(ended.errorCode, 'process_exited');
    assert.equal((await history(s, token)).length, 1);
  });

  it('an unknown choice is refused with a clear code', async () => {
    const s = await h();
    const token = s.token({ name: 'pre-bad' });
    const res = await s.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', spot: true, onPreemption: 'later' }),
    });
    assert.equal(res.status, 400);
    const b = (await res.json()) as { error: { code: string; message: string } };
    assert.match(JSON.stringify(b), /onPreemption/);
  });
});

describe('a preempted spot VM on the cloud path (terraform test double)', () => {
  const root = mkdtempSync(join(tmpdir(), 'ngsci-preempt-'));
  let taken = false;
  const { terraform } = TEST_DOUBLE_terraformProvisioner(root, 'success', 'bootstrap-FAKE-31', {
    isReady: async () => !taken,
    intervalMs: 100,
    lostAfter: 2,
  });
  let hh: Harness | null = null;
  after(async () => {
    await hh?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('the VM stops answering after the notice: the server comes back on demand, the old VM is destroyed', async () => {
    hh = await harness({
      provisioners: new Map([['cloud=aws', terraform]]),
      env: { NGSCI_CLOUDS: 'local,aws' },
    });
    const s = hh;
    const token = s.token({ name: 'pre-vm' });
    const first = await launch(s, token, { onPreemption: 'on-demand' });
    const agentToken = await s.services.agents.issue(first.id);
    await notice(s, agentToken);
    await notice(s, agentToken); // told twice: one notice on record
    const kinds = (await s.services.store.events(first.id)).map((e) => e.kind);
    assert.deepEqual(
      kinds.filter((k) => k !== null),
      ['spot_notice'],
      'one event says what a page acts on; the others are for reading',
    );
    taken = true;
    const stopped = await eventually(
      async () => {
        const old = (await history(s, token)).find((i) => i.id === first.id);
        return old?.state === 'stopped' ? old : null;
      },
      'the VM seen gone',
      15_000,
    );
    assert.equal(stopped.errorCode, 'preempted');
    taken = false;
    const back = await eventually(
      async () => {
        const r = await json<Inst>(await s.request('/api/v1/instances/default', { token }));
        return r.id !== first.id && r.state === 'running' ? r : null;
      },
      'the server running again on a new VM',
      30_000,
    );
    assert.equal(back.spot, false);
    assert.equal(back.ratePerHourMicros, offerOf(s).onDemandMicrosPerHour);
    await eventually(
      async () => {
        const events = await s.services.store.events(first.id);
        return events.some((e) => e.message === 'machine removed');
      },
      'the old VM’s remains destroyed',
      15_000,
    );
  });
});
