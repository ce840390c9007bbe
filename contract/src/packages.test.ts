/** A machine choice is a size or a pair of packages, never both; a pair's id fits the SizeId rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EstimateScenario,
  LaunchRequest,
  ResizeRequest,
  SizeId,
  SpawnOptions,
  chosenSizeId,
  CPU_PACKAGE_IDS,
  GPU_PACKAGE_IDS,
  pairSizeId,
  parsePairSizeId,
} from './index.js';

test('every pair id is a size id and reads back as its packages', () => {
  for (const cpu of CPU_PACKAGE_IDS)
    for (const gpu of GPU_PACKAGE_IDS) {
      const id = pairSizeId(cpu, gpu);
      assert.ok(SizeId.safeParse(id).success, id);
      assert.deepEqual(parsePairSizeId(id), { cpu, gpu });
    }
  assert.equal(parsePairSizeId('gpu-a100'), null);
  assert.equal(parsePairSizeId('q.t4'), null);
});

test('launch, resize, spawn and estimate take size or cpu (with gpu), not both, not neither', () => {
  assert.equal(chosenSizeId(LaunchRequest.parse({ cpu: 'm', gpu: 't4' })), 'm.t4');
  assert.equal(chosenSizeId(ResizeRequest.parse({ cpu: 'xl' })), 'xl.none');
  assert.equal(chosenSizeId(SpawnOptions.parse({ size: 'gpu-t4' })), 'gpu-t4');
  for (const schema of [LaunchRequest, ResizeRequest, SpawnOptions]) {
    for (const bad of [
      {},
      { gpu: 't4' },
      { size: 'gpu-t4', cpu: 'm' },
      { cpu: 'xxl' },
      { cpu: 'm', gpu: 'k80' },
    ])
      assert.ok(!schema.safeParse(bad).success, JSON.stringify(bad));
  }
  const scenario = EstimateScenario.parse({
    instanceHours: [{ cpu: 'l', gpu: 'a100', hoursPerMonth: 10 }],
  });
  assert.equal(chosenSizeId(scenario.instanceHours[0]!), 'l.a100');
  assert.ok(!EstimateScenario.safeParse({ instanceHours: [{ hoursPerMonth: 1 }] }).success);
});
