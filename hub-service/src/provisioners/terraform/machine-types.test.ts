/** The catalog's machine names against the terraform package's: what a launch on each cloud synthesizes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILT_IN_SIZES } from '../../catalog.js';
import { machineForOffer } from './machine-types.js';

describe('catalog offers → terraform machine types', () => {
  it('a GCP N1 offer with an attached GPU becomes the N1 machine with that accelerator and the size GPU count', () => {
    const t4 = machineForOffer(
      { cloud: 'gcp', instanceType: 'n1-standard-4+nvidia-tesla-t4' },
      { gpu: { model: 'T4', count: 1, memoryGiB: 16 } },
    );
    assert.equal(t4?.key, 'n1-standard-4+t4x1');
    assert.deepEqual(t4?.info.accelerator, { type: 'nvidia-tesla-t4', count: 1 });
    assert.equal(t4?.info.machineType, 'n1-standard-4');
    assert.equal(
      machineForOffer(
        { cloud: 'gcp', instanceType: 'n1-standard-4+nvidia-tesla-t4' },
        { gpu: { model: 'T4', count: 3, memoryGiB: 16 } },
      ),
      null,
    );
  });

  it('other names are the cloud’s own, and a name of another cloud is refused', () => {
    assert.equal(
      machineForOffer({ cloud: 'aws', instanceType: 'g4dn.xlarge' }, { gpu: null })?.key,
      'g4dn.xlarge',
    );
    assert.equal(
      machineForOffer({ cloud: 'gcp', instanceType: 'g4dn.xlarge' }, { gpu: null }),
      null,
    );
    assert.equal(
      machineForOffer({ cloud: 'azure', instanceType: 'Standard_NC4as_T4_v3' }, { gpu: null })?.info
        .gpu?.model,
      'T4',
    );
  });

  it('every GPU size of the catalog that maps to a terraform machine gets the GPUs the size promises', () => {
    let mapped = 0;
    for (const size of BUILT_IN_SIZES) {
      for (const offer of size.offers) {
        if (offer.cloud === 'local' || !offer.available) continue;
        const m = machineForOffer(offer, size);
        if (!m) continue;
        mapped += 1;
        assert.equal(
          m.info.gpu?.count ?? 0,
          size.gpu?.count ?? 0,
          `${size.id} on ${offer.cloud} (${offer.instanceType})`,
        );
      }
    }
    assert.ok(mapped >= 20, `only ${mapped} offers map to terraform machines`);
  });

  it('every available cloud offer of the catalog has a terraform machine, so no listed size fails at launch', () => {
    const missing: string[] = [];
    for (const size of BUILT_IN_SIZES) {
      for (const offer of size.offers) {
        if (offer.cloud === 'local' || !offer.available) continue;
        if (!machineForOffer(offer, size))
          missing.push(`${size.id} on ${offer.cloud} (${offer.instanceType})`);
      }
    }
    assert.deepEqual(missing, []);
  });
});
