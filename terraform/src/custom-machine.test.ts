/**
 * GCP N1 custom machine types: what a pair of packages (`m.t4`: 4 vCPU, 16 GiB, one T4) becomes on
 * GCP. The stack takes the key `custom-<vCPUs>-<MiB>+<gpu>x<count>` (or the machine the service
 * hands over) and synthesizes `custom-4-16384` with the T4 attached as a guest accelerator; a
 * shape N1 cannot have is refused before any plan.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  gcpCustomN1,
  gcpCustomN1Key,
  gcpCustomN1Problems,
  instanceTypeInfo,
  machineTypeProblems,
  UnknownInstanceTypeError,
} from './instance-types.js';
import { synthInstance } from './synth.js';
import { matchSnapshot, only, options, scrubVolatile } from './test-fixtures.js';

const t4 = { model: 'T4', count: 1, memoryGiB: 16 };
const machine = gcpCustomN1(4, 16384, { type: 'nvidia-tesla-t4', gpu: t4 });
const custom = (extra = {}) =>
  options('gcp', 'gpu', {
    instanceId: 'inst-gcp-custom',
    instanceType: gcpCustomN1Key(machine),
    size: 'm.t4',
    spot: false,
    ...extra,
  });

// synthesized once: as the service hands it over (the machine with the options), and by key only
const handed = synthInstance(custom({ machine }));
const byKey = synthInstance(custom());

describe('GCP N1 custom machine with an attached accelerator', () => {
  it('synthesizes custom-4-16384 with one T4 attached, terminating on host maintenance', () => {
    assert.equal(gcpCustomN1Key(machine), 'custom-4-16384+t4x1');
    const vm = only(handed, 'google_compute_instance');
    assert.equal(vm.machine_type, 'custom-4-16384');
    assert.deepEqual(vm.guest_accelerator, [{ type: 'nvidia-tesla-t4', count: 1 }]);
    assert.equal(vm.scheduling.on_host_maintenance, 'TERMINATE');
    assert.equal(vm.scheduling.provisioning_model, 'STANDARD');
    assert.match(vm.boot_disk.initialize_params.image, /accelerator-images/);
    assert.deepEqual(
      only(byKey, 'google_compute_instance'),
      vm,
      'the key alone names the same machine',
    );
  });

  it('matches __snapshots__/gcp-custom-n1-t4.json', () => {
    const { expected, actual } = matchSnapshot('gcp-custom-n1-t4', scrubVolatile(handed));
    assert.deepEqual(actual, expected);
  });

  it('a CPU-only custom type has no accelerator and migrates on maintenance', () => {
    const cpu = gcpCustomN1(2, 8192);
    const json = synthInstance(
      options('gcp', 'cpu', { instanceType: gcpCustomN1Key(cpu), machine: cpu, size: 's.none' }),
    );
    const vm = only(json, 'google_compute_instance');
    assert.equal(vm.machine_type, 'custom-2-8192');
    assert.equal(vm.guest_accelerator, undefined);
  });

  it('refuses shapes N1 cannot have, with the reason', () => {
    const v100 = { model: 'V100', count: 1, memoryGiB: 16 };
    assert.deepEqual(
      gcpCustomN1Problems(gcpCustomN1(16, 65536, { type: 'nvidia-tesla-v100', gpu: v100 })),
      ['with 1× V100 an N1 machine takes at most 12 vCPU and 78 GiB'],
    );
    assert.deepEqual(gcpCustomN1Problems(gcpCustomN1(3, 8192)), [
      'an N1 custom machine has 1 vCPU or an even number up to 96',
    ]);
    assert.match(
      gcpCustomN1Problems(gcpCustomN1(2, 16384)).join(),
      /0\.9 to 6\.5 GiB per vCPU \(asked 8\)/,
    );
    assert.match(
      gcpCustomN1Problems(gcpCustomN1(4, 16384, { type: 'nvidia-l4', gpu: t4 })).join(),
      /nvidia-l4 does not attach to N1/,
    );
    assert.throws(
      () => instanceTypeInfo('gcp', 'custom-16-65536+v100x1'),
      (e: unknown) => e instanceof UnknownInstanceTypeError && /at most 12 vCPU/.test(String(e)),
    );
    assert.throws(
      () =>
        synthInstance(
          custom({
            instanceType: 'custom-16-65536+v100x1',
            machine: undefined,
            gpu: { model: 'V100', count: 1 },
          }),
        ),
      /at most 12 vCPU/,
    );
    assert.throws(() => instanceTypeInfo('aws', 'custom-4-16384'), /not a known aws instance type/);
    assert.deepEqual(machineTypeProblems(machine), []);
  });
});
