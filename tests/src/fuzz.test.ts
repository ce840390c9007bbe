/**
 * API fuzzing in `npm test` (issue 12): a bounded schemathesis pass over the whole OpenAPI
 * document, against a running product through the hub's proxy, as a researcher and as an admin
 * (tests/fuzz/run.ts). It passes with no response >= 500, every response as the document declares
 * it, invalid input refused and no trace or machine path in any body. The long pass (5,000+
 * cases) is `npm run fuzz -w tests`; docs/security.md has its figures.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe as report, fuzz } from '../fuzz/run.js';
import { ROOT } from './stack.js';

const PYTHON = join(process.env.NGSCI_VENV ?? join(ROOT, '.venv'), 'bin', 'python');

/** find_trace of tests/fuzz/hooks.py on each body: what it found, or null. */
function findTraces(bodies: string[]): (string | null)[] {
  const res = spawnSync(
    PYTHON,
    [
      '-c',
      'import json, sys, hooks; print(json.dumps([hooks.find_trace(b) for b in json.load(sys.stdin)]))',
    ],
    {
      input: JSON.stringify(bodies),
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: join(ROOT, 'tests', 'fuzz'), NGSCI_FUZZ_PATHS: ROOT },
    },
  );
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout) as (string | null)[];
}

describe('API fuzzing', () => {
  test('the trace check catches stack traces and machine paths, and passes error bodies', () => {
    const [node, python, path, bare, plain, quoted] = findTraces([
      JSON.stringify({
        message:
          'TypeError: x is undefined\n    at handler (file:///srv/app/dist/routes/a.js:10:5)',
      }),
      'Traceback (most recent call last):\n  File "x.py", line 3, in <module>',
      JSON.stringify({ code: 'internal', message: `cannot open ${ROOT}/data/x.db` }),
      JSON.stringify({
        code: 'bad_request',
        message: "TypeError: Cannot read properties of undefined (reading 'id')",
      }),
      JSON.stringify({
        code: 'validation_failed',
        message: 'invalid request: size: Invalid option: expected one of "cpu-small"|"gpu-t4"',
        requestId: '8cb7a47b-27a3-4633-bf9f-3a01d6c31463',
      }),
      JSON.stringify({ code: 'not_found', message: 'no route for GET /services/ngsci/api/v1/x' }),
    ]);
    assert.ok(node, 'a V8 stack frame is caught');
    assert.ok(python, 'a Python traceback is caught');
    assert.ok(path, 'the repository path is caught');
    assert.ok(bare, "an exception's text without a frame is caught");
    assert.equal(plain, null, 'a validation error is no trace');
    assert.equal(quoted, null, 'a URL path is no machine path');
  });

  test('a bounded pass: at least 500 cases, no server error, nothing off the document', async () => {
    const result = await fuzz({
      examples: Number(process.env.NGSCI_FUZZ_EXAMPLES ?? 5),
      seed: process.env.NGSCI_FUZZ_SEED,
      log: (l) => console.log(l),
    });
    console.log(report(result));
    assert.ok(result.cases >= 500, `only ${result.cases} cases ran (at least 500 expected)`);
    for (const role of result.roles) {
      assert.ok(role.cases >= 200, `${role.role}: only ${role.cases} cases`);
      assert.equal(
        role.exitCode === 0,
        role.failures.length === 0,
        `${role.role}: ${role.summary}`,
      );
    }
    // both credentials worked: the researcher reached their own things, the admin the admin API
    const [user, admin] = result.roles;
    assert.ok(user!.succeeded.includes('GET /api/v1/instances'), user!.succeeded.join(', '));
    assert.ok(admin!.succeeded.includes('GET /api/v1/admin/quotas'), admin!.succeeded.join(', '));
    assert.ok(
      !user!.succeeded.some((op) => op.includes('/admin/')),
      `the researcher's token reached an admin route: ${user!.succeeded.join(', ')}`,
    );
    assert.ok(result.operations >= 50, `only ${result.operations} operations were reached`);
    assert.equal(result.serverErrors, 0, report(result));
    assert.deepEqual(result.failures, [], report(result));
  });
});
