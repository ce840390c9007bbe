/** The catalog's machine names against the terraform package's: what a launch on each cloud synthesizes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { INSTANCE_TYPES } from '@ngsci/terraform';
import { WITH_L40S } from './testdata/machine-types.js';
import { BUILT_IN_SIZES } from '../../catalog.js';
import { machineForOffer, machineProblem } from './machine-types.js';

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

  it('a retired or driverless type is refused with its reason before anything is applied', () => {
    const v100 = { gpu: { model: 'V100', count: 1, memoryGiB: 16 } };
    // Azure retired NCv3 on 2025-09-30: an apply would fail at the cloud
    assert.equal(machineForOffer({ cloud: 'azure', instanceType: 'Standard_NC6s_v3' }, v100), null);
    assert.match(
      machineProblem(
        { cloud: 'azure', instanceType: 'Standard_NC6s_v3' },
        { id: 'gpu-v100', ...v100 },
      ) ?? '',
      /retired by Azure on 2025-09-30/,
    );
    // p3 boots, but the open-kernel-module driver of the default AMI cannot drive a V100
    assert.equal(machineForOffer({ cloud: 'aws', instanceType: 'p3.2xlarge' }, v100), null);
    assert.match(
      machineProblem({ cloud: 'aws', instanceType: 'p3.2xlarge' }, { id: 'gpu-v100', ...v100 }) ??
        '',
      /open kernel modules.*Turing/,
    );
    assert.match(
      machineProblem({ cloud: 'aws', instanceType: 'g4dn.xlarge' }, { id: 'gpu-x', gpu: null }) ??
        '',
      /has 1 GPU\(s\), size gpu-x promises 0/,
    );
    assert.equal(
      machineProblem({ cloud: 'aws', instanceType: 'g4dn.xlarge' }, { id: 'gpu-t4', ...v100 }),
      null,
    );
  });

  it('a table with the catalog file’s machine types resolves them, and the file may revive a type', () => {
    const table = {
      ...WITH_L40S,
      // an operator whose NGSCI_AWS_AMI carries the proprietary driver
      'p3.2xlarge': { ...INSTANCE_TYPES['p3.2xlarge']!, unavailable: undefined },
    };
    const l40s = { gpu: { model: 'L40S', count: 1, memoryGiB: 48 } };
    assert.equal(machineForOffer({ cloud: 'aws', instanceType: 'g6e.xlarge' }, l40s), null);
    assert.equal(
      machineForOffer({ cloud: 'aws', instanceType: 'g6e.xlarge' }, l40s, table)?.info.gpu?.model,
      'L40S',
    );
    assert.equal(
      machineForOffer({ cloud: 'aws', instanceType: 'p3.2xlarge' }, { gpu: null }, table)?.key,
      'p3.2xlarge',
    );
  });
});
