/**
 * A test double stands in for terraform in every test here (testdata/fake-terraform.mjs): the CI
 * machine has no terraform binary and no cloud account. It replays Terraform's documented `-json`
 * output from recorded fixtures.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TerraformError,
  TerraformExecutor,
  type ExecutorProgress,
  type TerraformExecutorConfig,
} from './executor.js';

const FAKE_TERRAFORM = fileURLToPath(new URL('./testdata/fake-terraform.mjs', import.meta.url));
const AWS_SECRET = 'aws-secret-FAKE-wJalrXUtnFEMI';
const PG = 'postgres://ngsci:pg-password-FAKE@127.0.0.1:5432/ngsci';

const root = mkdtempSync(join(tmpdir(), 'ngsci-executor-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function workdir(backend: 'local' | 'pg' = 'local'): string {
  const dir = join(root, `w${++n}`);
  const cfg =
    backend === 'pg'
      ? { terraform: { backend: { pg: { schema_name: 'ngsci_tf_x' } } } }
      : { terraform: { backend: { local: { path: 'terraform.tfstate' } } } };
  rmSync(dir, { recursive: true, force: true });
  // the executor never writes the config; a real workdir gets it from synthInstance
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(cfg));
  return dir;
}
function executor(
  scenario: string,
  extra: Partial<TerraformExecutorConfig> = {},
): TerraformExecutor {
  return new TerraformExecutor({
    binary: FAKE_TERRAFORM,
    pluginCacheDir: join(root, 'plugin-cache'),
    backend: 'local',
    credentials: { AWS_ACCESS_KEY_ID: 'AKIAFAKE', AWS_SECRET_ACCESS_KEY: AWS_SECRET },
    extraEnv: { FAKE_TERRAFORM_SCENARIO: scenario },
    killGraceMs: 300,
    ...extra,
  });
}

function calls(dir: string): { argv?: string[]; envKeys?: string[]; signal?: string }[] {
  return readFileSync(join(dir, 'fake-terraform.calls.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('executor (terraform test double)', () => {
  it('executor (terraform test double): apply success streams monotonic progress and parses outputs', async () => {
    const dir = workdir();
    const events: ExecutorProgress[] = [];
    const outputs = await executor('success').up(dir, { onProgress: (e) => events.push(e) });
    assert.deepEqual(outputs.address, { sensitive: false, type: 'string', value: '10.0.3.17' });
    assert.equal(outputs.instance_id?.value, 'i-0fake5678');
    assert.equal(outputs.home_disk_id?.value, 'vol-0fakehome');
    const ps = events.map((e) => e.progress);
    assert.deepEqual(
      ps,
      [...ps].sort((a, b) => a - b),
      'progress never goes back',
    );
    assert.equal(ps.at(-1), 100);
    assert.ok(events.some((e) => /Creation complete/.test(e.message)));
    // 3 planned changes: each apply_complete is a third of the apply range (15..100)
    const completes = events
      .filter((e) => /Creation complete/.test(e.message))
      .map((e) => e.progress);
    assert.deepEqual(completes, [43, 72, 100]);
    assert.ok(existsSync(join(dir, 'terraform.tfstate')), 'state kept');
    assert.ok(!existsSync(join(dir, 'plan.tfplan')), 'the saved plan is removed after apply');
    const argvs = calls(dir).map((c) => c.argv?.join(' '));
    assert.deepEqual(argvs, [
      'init -input=false -no-color',
      'plan -json -input=false -out=plan.tfplan',
      'apply -json -input=false plan.tfplan',
      'output -json',
    ]);
  });

  it('executor (terraform test double): provider error is a typed failure with the diagnostic, secrets scrubbed, state kept', async () => {
    const dir = workdir();
    const err = await executor('provider_error')
      .up(dir, { secrets: ['never-seen'] })
      .then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof TerraformError);
    assert.equal(err.code, 'terraform_failed');
    assert.equal(err.step, 'apply');
    assert.match(err.message, /InsufficientInstanceCapacity/);
    assert.equal(err.diagnostics[0]?.severity, 'error');
    assert.equal(err.diagnostics[0]?.address, 'aws_instance.instance_machine_E40E43E0');
    assert.ok(!err.message.includes(AWS_SECRET), 'credential scrubbed from the message');
    assert.ok(
      !JSON.stringify(err.diagnostics).includes(AWS_SECRET),
      'credential scrubbed from diagnostics',
    );
    assert.match(err.diagnostics[0]?.detail ?? '', /\[redacted\]/);
    const state = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
      resources: unknown[];
    };
    assert.equal(state.resources.length, 1, 'the partial state is kept for the next destroy');
  });

  it('executor (terraform test double): a step that outlives its timeout is stopped with SIGINT and reported as timeout', async () => {
    const dir = workdir();
    const started = Date.now();
    const err = await executor('slow', { timeoutsMs: { plan: 250 } })
      .up(dir)
      .catch((e: unknown) => e);
    assert.ok(err instanceof TerraformError);
    assert.equal(err.code, 'timeout');
    assert.equal(err.step, 'plan');
    assert.ok(Date.now() - started < 5000);
    const signals = calls(dir).filter((c) => c.signal);
    assert.deepEqual(
      signals.map((c) => c.signal),
      ['SIGINT'],
      'a graceful stop was enough: no SIGKILL needed',
    );
    assert.notEqual(err.signal, 'SIGKILL');
  });

  it('executor (terraform test double): cancel sends SIGINT, then SIGKILL when terraform ignores it', async () => {
    const dir = workdir();
    const ac = new AbortController();
    const run = executor('hang', { killGraceMs: 300 }).up(dir, { signal: ac.signal });
    setTimeout(() => ac.abort(), 400);
    const err = await run.catch((e: unknown) => e);
    assert.ok(err instanceof TerraformError);
    assert.equal(err.code, 'cancelled');
    assert.equal(err.signal, 'SIGKILL');
    assert.match(err.message, /killed after it ignored SIGINT/);
    assert.deepEqual(
      calls(dir)
        .filter((c) => c.signal)
        .map((c) => c.signal),
      ['SIGINT'],
    );
  });

  it('executor (terraform test double): an already aborted signal never starts terraform', async () => {
    const dir = workdir();
    const ac = new AbortController();
    ac.abort();
    const err = await executor('success')
      .up(dir, { signal: ac.signal })
      .catch((e: unknown) => e);
    assert.ok(err instanceof TerraformError && err.code === 'cancelled');
    assert.ok(!existsSync(join(dir, 'fake-terraform.calls.jsonl')));
  });

  it('executor (terraform test double): the child env is an allow-list; service secrets never reach it', async () => {
    const saved = { ...process.env };
    process.env.NGSCI_BRIDGE_SECRET = 'bridge-secret-FAKE';
    process.env.JUPYTERHUB_API_TOKEN = 'hub-token-FAKE';
    process.env.DATABASE_URL = PG;
    process.env.SOME_OTHER = 'x';
    try {
      const dir = workdir();
      await executor('success').up(dir);
      for (const c of calls(dir).filter((c) => c.envKeys)) {
        const keys = c.envKeys ?? [];
        assert.deepEqual(
          keys.filter((k) => /^(NGSCI_|JUPYTERHUB_|DATABASE_URL|SOME_OTHER|PG_CONN_STR)/.test(k)),
          [],
        );
        for (const k of keys) {
          assert.match(
            k,
            /^(PATH|HOME|TF_[A-Z_]+|AWS_[A-Z_]+|CHECKPOINT_DISABLE|FAKE_TERRAFORM_SCENARIO)$/,
            `unexpected ${k}`,
          );
        }
        assert.ok(keys.includes('TF_PLUGIN_CACHE_DIR') && keys.includes('AWS_SECRET_ACCESS_KEY'));
      }
    } finally {
      for (const k of [
        'NGSCI_BRIDGE_SECRET',
        'JUPYTERHUB_API_TOKEN',
        'DATABASE_URL',
        'SOME_OTHER',
      ]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('executor (terraform test double): credentials must be provider variables', () => {
    assert.throws(
      () => executor('success', { credentials: { DATABASE_URL: PG } }),
      /not credential variables: DATABASE_URL/,
    );
    assert.throws(
      () => executor('success', { credentials: { NGSCI_SECRET_KEY: 'x' } }),
      /NGSCI_SECRET_KEY/,
    );
  });

  it('executor (terraform test double): pg backend gets PG_CONN_STR, local backend does not', async () => {
    const pgDir = workdir('pg');
    await executor('success', { backend: 'pg', pgConnString: PG }).init(pgDir);
    assert.ok(calls(pgDir)[0]?.envKeys?.includes('PG_CONN_STR'));

    const localDir = workdir('local');
    await executor('success', { backend: 'local', pgConnString: PG }).init(localDir);
    assert.ok(!calls(localDir)[0]?.envKeys?.includes('PG_CONN_STR'));

    // a pg workdir without the connection string fails at init, as terraform does, and says why
    const err = await executor('success')
      .init(workdir('pg'))
      .catch((e: unknown) => e);
    assert.ok(err instanceof TerraformError);
    assert.match(err.message, /PG_CONN_STR/);
    assert.ok(!err.message.includes('pg-password-FAKE'));
    assert.throws(() => executor('success', { backend: 'pg' }), /needs pgConnString/);
  });

  it('executor (terraform test double): destroy after apply empties the state and keeps the file', async () => {
    const dir = workdir();
    const ex = executor('success');
    await ex.up(dir);
    const events: ExecutorProgress[] = [];
    await ex.down(dir, { onProgress: (e) => events.push(e) });
    const state = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
      resources: unknown[];
    };
    assert.deepEqual(state.resources, []);
    assert.equal(events.at(-1)?.progress, 100);
    assert.ok(events.some((e) => /Destruction complete/.test(e.message)));
    assert.deepEqual(await ex.output(dir), {});
    await ex.down(dir); // idempotent
  });

  it('executor (terraform test double): a missing binary is a clear error', async () => {
    const err = await executor('success', { binary: join(root, 'no-such-terraform') })
      .init(workdir())
      .catch((e: unknown) => e);
    assert.ok(err instanceof TerraformError);
    assert.equal(err.code, 'binary_not_found');
    assert.match(err.message, /NGSCI_TERRAFORM_BINARY/);
  });
});
