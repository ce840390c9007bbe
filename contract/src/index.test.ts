import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LaunchRequest,
  ServerName,
  SpawnOptions,
  toApiServerName,
  toHubServerName,
} from './index.js';

test("the hub's default server is called 'default' in the API, and back", () => {
  assert.equal(toApiServerName(''), 'default');
  assert.equal(toApiServerName('exp-1'), 'exp-1');
  assert.equal(toHubServerName('default'), '');
  assert.equal(toHubServerName('exp-1'), 'exp-1');
});

test('server names are URL-safe and bounded', () => {
  for (const ok of ['default', 'a', 'exp-1', 'x'.repeat(40)])
    assert.ok(ServerName.safeParse(ok).success, ok);
  for (const bad of ['', '-a', 'a-', 'A', 'a b', 'a/b', 'x'.repeat(41), '../x'])
    assert.ok(!ServerName.safeParse(bad).success, bad);
});

test('a launch request fills defaults and refuses unknown fields', () => {
  assert.deepEqual(LaunchRequest.parse({ size: 'gpu-t4' }), {
    server: 'default',
    size: 'gpu-t4',
    spot: false,
  });
  assert.ok(!LaunchRequest.safeParse({ size: 'gpu-t4', extra: 1 }).success);
  assert.ok(!LaunchRequest.safeParse({ size: 'GPU T4' }).success);
  assert.ok(!SpawnOptions.safeParse({ size: 'gpu-t4', cloud: 'ibm' }).success);
});
