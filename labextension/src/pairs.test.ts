/** The sidebar's pair choice: the offer on the cloud, its rate, beyond the ask, why not, the quota. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Catalog, Offer, Size } from '@ngsci/contract';
import { pairAllowed, pairOffer } from './pairs';

const offer = (o: Partial<Offer> & Pick<Offer, 'cloud'>): Offer => ({
  region: 'r',
  instanceType: '',
  available: true,
  onDemandMicrosPerHour: 0,
  spotMicrosPerHour: null,
  ...o,
});
const pair = (id: string, offers: Offer[]): Size => ({
  id,
  label: id,
  class: 'gpu',
  vcpu: 2,
  memoryGiB: 8,
  gpu: { model: 'T4', count: 1, memoryGiB: 16 },
  offers,
});
const catalog: Catalog = {
  asOf: '2025-07-01',
  currency: 'USD',
  defaultCloud: 'aws',
  clouds: ['aws', 'gcp'],
  sizes: [],
  pairs: [
    pair('s.t4', [
      offer({
        cloud: 'aws',
        instanceType: 'g4dn.xlarge',
        onDemandMicrosPerHour: 526_000,
        spotMicrosPerHour: 210_400,
        fit: { vcpu: 4, memoryGiB: 16, gpuMemoryGiB: 16, beyondAsk: 'you get 4 vCPU' },
      }),
      offer({ cloud: 'gcp', available: false, note: 'gcp: no capacity' }),
    ]),
  ],
};

test('the pair on the cloud: rate (spot or not), machine, beyond the ask; or why not', () => {
  const aws = pairOffer(catalog, { cpu: 's', gpu: 't4' }, { cloud: 'aws', spot: false }, null);
  assert.ok(aws.available);
  assert.equal(aws.rate, 526_000);
  assert.equal(aws.machine, 'g4dn.xlarge');
  assert.equal(aws.beyondAsk, 'you get 4 vCPU');
  assert.equal(aws.forbidden, null);
  const spot = pairOffer(catalog, { cpu: 's', gpu: 't4' }, { cloud: 'aws', spot: true }, null);
  assert.equal(spot.available && spot.rate, 210_400);
  const gcp = pairOffer(catalog, { cpu: 's', gpu: 't4' }, { cloud: 'gcp', spot: false }, null);
  assert.deepEqual(gcp.available ? null : gcp.reason, 'gcp: no capacity');
  const none = pairOffer(catalog, { cpu: 'xl', gpu: 'a100' }, { cloud: 'aws', spot: false }, null);
  assert.equal(none.available, false);
});

test('the quota: by id or wildcard, as the service checks it', () => {
  assert.equal(pairAllowed(null, 's.t4'), true);
  assert.equal(pairAllowed(['any.t4'], 's.t4'), true);
  assert.equal(pairAllowed(['m.any'], 's.t4'), false);
  assert.equal(pairAllowed(['cpu-small'], 's.t4'), false);
  const refused = pairOffer(catalog, { cpu: 's', gpu: 't4' }, { cloud: 'aws', spot: false }, [
    'cpu-small',
  ]);
  assert.match(refused.available ? (refused.forbidden ?? '') : '', /Not allowed: .*cpu-small/);
});

test('a forbid of the quota wins over an allow and over whether the cloud offers the pair', () => {
  const forbidden = [{ entry: 'any.t4', reason: "not allowed for your group 'students'" }];
  const o = pairOffer(
    catalog,
    { cpu: 's', gpu: 't4' },
    { cloud: 'aws', spot: false },
    ['s.t4'],
    forbidden,
  );
  assert.equal(o.available, false);
  assert.ok(!o.available && o.forbidden);
  assert.equal(
    !o.available && o.reason,
    "not allowed for your group 'students' (the quota forbids any.t4)",
  );
  const off = pairOffer(
    catalog,
    { cpu: 's', gpu: 't4' },
    { cloud: 'gcp', spot: false },
    null,
    forbidden,
  );
  assert.match(
    !off.available ? off.reason : '',
    /not allowed for your group/,
    'not "gcp: no capacity"',
  );
  const fine = pairOffer(catalog, { cpu: 's', gpu: 't4' }, { cloud: 'aws', spot: false }, null, [
    { entry: 'xl.any', reason: 'not allowed for you' },
  ]);
  assert.equal(fine.available, true);
  assert.equal(fine.available && fine.forbidden, null);
});
