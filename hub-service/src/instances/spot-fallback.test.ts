/**
 * Spot → on-demand when the cloud has no spot capacity: the price switch on the instance row
 * (store.ts) on the real schema in an in-memory Postgres, and a launch with `spotFallback` through
 * the app, the harness's fake hub and the worker, with a test double of a cloud provisioner whose
 * spot start finds no capacity (no cloud here).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryDatabase } from '../db/client.js';
import { eventually, harness, type Harness } from '../testing/harness.js';
import type {
  ExitReport,
  Provisioned,
  ProvisionContext,
  ProvisionRequest,
  Provisioner,
} from '../provisioners/types.js';
import { InstanceStore } from './store.js';

const database = await openMemoryDatabase();
await database.migrate();
after(() => database.close());
const store = new InstanceStore(database.db);

let n = 0;
async function spotRow(extra: { readyAt?: Date; providerRef?: Record<string, boolean> } = {}) {
  const row = await store.create(
    {
      userName: `fallback-${++n}`,
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud: 'aws',
      region: 'us-east-1',
      spot: true,
      state: 'provisioning',
      listRatePerHourMicros: 210_000,
      baseUrl: `/user/fallback-${n}/`,
      ...extra,
    },
    'requested',
  );
  assert.ok(row);
  return row;
}

describe('spot → on-demand price switch', () => {
  it('an allowed spot start becomes on-demand at the on-demand rate', async () => {
    // what a spawn whose options allow the fallback creates (lifecycle.ts bridgeStart)
    const row = await spotRow({ providerRef: { spotFallback: true } });
    assert.equal(await store.switchToOnDemand(row.id, 526_000), true);
    const now = await store.get(row.id);
    assert.equal(now?.spot, false);
    assert.equal(now?.listRatePerHourMicros, 526_000);
    assert.equal(await store.switchToOnDemand(row.id, 526_000), false, 'once');
  });

  it('without the allowance, or once ready, nothing changes', async () => {
    const refused = await spotRow();
    assert.equal(await store.switchToOnDemand(refused.id, 526_000), false);
    const ready = await spotRow({ readyAt: new Date(), providerRef: { spotFallback: true } });
    assert.equal(await store.switchToOnDemand(ready.id, 526_000), false);
    for (const id of [refused.id, ready.id]) {
      const row = await store.get(id);
      assert.equal(row?.spot, true);
      assert.equal(row?.listRatePerHourMicros, 210_000, 'still billed at the spot rate');
    }
  });
});

/** TEST DOUBLE of a cloud provisioner: every spot start finds no spot capacity and asks to switch. */
class NoSpotCapacityCloudDouble implements Provisioner {
  readonly kind = 'terraform' as const;
  readonly switched: boolean[] = [];

  async start(req: ProvisionRequest, ctx: ProvisionContext): Promise<Provisioned> {
    if (req.spot) {
      const onDemand = (await ctx.switchToOnDemand?.()) ?? false;
      this.switched.push(onDemand);
      if (!onDemand) throw new Error('no spot capacity; start again, or allow on-demand');
    }
    return { targetUrl: `http://10.0.0.9:8888${req.baseUrl}`, ref: { workdir: 'double' } };
  }
  async stop(): Promise<void> {}
  async adopt(): Promise<boolean> {
    return false;
  }
  onExit(_listener: (r: ExitReport) => void): void {}
  async close(): Promise<void> {}
}

describe('a launch with spotFallback (harness, cloud test double)', () => {
  const cloud = new NoSpotCapacityCloudDouble();
  let h: Harness | null = null;
  after(() => h?.close());

  async function launch(user: string, body: Record<string, unknown>) {
    h ??= await harness({
      provisioners: new Map([['cloud=aws', cloud]]),
      env: { NGSCI_CLOUDS: 'local,aws' },
    });
    const token = h.token({ name: user });
    const res = await h.request('/api/v1/instances', {
      method: 'POST',
      token,
      body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', spot: true, ...body }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const service = h;
    return eventually(async () => {
      const r = (await (await service.request('/api/v1/instances/default', { token })).json()) as {
        state: string;
        spot: boolean;
        ratePerHourMicros: number;
      };
      return r.state === 'running' || r.state === 'failed' ? r : null;
    }, `${user}'s start to end`);
  }

  it('runs on demand and is priced at the on-demand rate', async () => {
    const ended = await launch('fallback-allowed', { spotFallback: true });
    assert.equal(ended.state, 'running');
    assert.equal(ended.spot, false, 'the instance says on-demand');
    const catalog = h!.services.catalog();
    const offer = catalog.sizes
      .find((s) => s.id === 'gpu-t4')
      ?.offers.find((o) => o.cloud === 'aws');
    assert.ok(offer && offer.spotMicrosPerHour !== null);
    assert.equal(ended.ratePerHourMicros, offer.onDemandMicrosPerHour, 'billed on demand');
    assert.deepEqual(cloud.switched.at(-1), true);
  });

  it('without it, the start fails and the spot price stays', async () => {
    const ended = await launch('fallback-not-allowed', {});
    assert.equal(ended.state, 'failed');
    assert.equal(ended.spot, true);
    assert.deepEqual(cloud.switched.at(-1), false);
  });
});
