/** The machine types table: retired types say why, and a type from a catalog file is checked before a stack uses it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  INSTANCE_TYPES,
  instanceTypeInfo,
  machineTypeProblems,
  UnknownInstanceTypeError,
  type InstanceTypeInfo,
} from './instance-types.js';

const l40s: InstanceTypeInfo = {
  cloud: 'aws',
  family: 'g6e',
  machineType: 'g6e.xlarge',
  vcpu: 4,
  memoryGiB: 32,
  gpu: { model: 'L40S', count: 1, memoryGiB: 48 },
};

describe('instance types', () => {
  it('keeps retired and driverless types with the reason, and every other built-in type is buildable', () => {
    for (const key of ['Standard_NC6s_v3', 'Standard_NC12s_v3', 'Standard_NC24s_v3'])
      assert.match(INSTANCE_TYPES[key]?.unavailable ?? '', /retired by Azure on 2025-09-30/, key);
    assert.match(INSTANCE_TYPES['p3.2xlarge']?.unavailable ?? '', /Turing and newer/);
    for (const [key, info] of Object.entries(INSTANCE_TYPES))
      assert.deepEqual(machineTypeProblems(info), [], key);
  });

  it('a type from the catalog file is used when it is sound, refused with the reason when not', () => {
    assert.equal(instanceTypeInfo('aws', 'g6e.xlarge', l40s), l40s);
    assert.throws(() => instanceTypeInfo('aws', 'g6e.xlarge'), UnknownInstanceTypeError);
    assert.throws(
      () => instanceTypeInfo('gcp', 'g6e.xlarge', l40s),
      /not a known gcp instance type/,
    );
    assert.throws(
      () =>
        instanceTypeInfo('gcp', 'n1-standard-8+t4x1', {
          ...l40s,
          cloud: 'gcp',
          machineType: 'n1-standard-8',
          gpu: { model: 'T4', count: 1, memoryGiB: 16 },
        }),
      /a GCP N1 machine with a GPU needs accelerator\.type/,
    );
    assert.deepEqual(machineTypeProblems({ ...l40s, machineType: 'g6e xlarge', vcpu: 0 }), [
      'g6e xlarge is not how aws names a machine type',
      'vcpu must be a positive integer',
    ]);
  });
});
