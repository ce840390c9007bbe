/**
 * The server-name rule against the shared examples in contract/server-names.json: the Python
 * packages check their copies against the same file, so a change to any one of them fails here
 * or there until all agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  DEFAULT_SERVER,
  SERVER_NAME_PATTERN,
  ServerName,
  isServerName,
  toApiServerName,
} from './server-name.js';
import { AuditBatch, GpuReport } from './index.js';

interface Examples {
  pattern: string;
  default: string;
  valid: string[];
  invalid: string[];
}

const examples = JSON.parse(
  readFileSync(new URL('../server-names.json', import.meta.url), 'utf8'),
) as Examples;

test('the pattern and the default are the ones the Python side reads', () => {
  assert.equal(SERVER_NAME_PATTERN, examples.pattern);
  assert.equal(DEFAULT_SERVER, examples.default);
  assert.equal(toApiServerName(''), examples.default);
});

test('valid names pass isServerName and the zod schema', () => {
  assert.ok(examples.valid.length > 0);
  for (const name of examples.valid) {
    assert.ok(isServerName(name), JSON.stringify(name));
    assert.ok(ServerName.safeParse(name).success, JSON.stringify(name));
  }
});

test('invalid names fail both, the same way', () => {
  assert.ok(examples.invalid.length > 0);
  for (const name of examples.invalid) {
    assert.ok(!isServerName(name), JSON.stringify(name));
    assert.ok(!ServerName.safeParse(name).success, JSON.stringify(name));
  }
});

test("the agent's and the audit's optional server fields use the same rule", () => {
  for (const name of examples.invalid) {
    assert.ok(!GpuReport.safeParse({ server: name, gpus: [] }).success, JSON.stringify(name));
    assert.ok(
      !AuditBatch.safeParse({
        server: name,
        events: [{ path: '/mnt/dataset/a', op: 'open', at: '2026-01-01T00:00:00Z' }],
      }).success,
      JSON.stringify(name),
    );
  }
  assert.ok(
    AuditBatch.safeParse({
      server: 'exp-1',
      events: [{ path: '/mnt/dataset/a', op: 'open', at: '2026-01-01T00:00:00Z' }],
    }).success,
  );
});
