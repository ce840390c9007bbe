/**
 * A test double stands in for terraform in every test here (testdata/fake-terraform.mjs): the CI
 * machine has no terraform binary and no cloud account. It replays Terraform's documented `-json`
 * output from recorded fixtures.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { freshPostgres, type FreshPostgres } from '../../testing/fresh-postgres.js';
import {
  CLI_CONFIG_FILE,
  TerraformError,
  TerraformExecutor,
  describeProviderMirror,
  type ExecutorProgress,
  type TerraformExecutorConfig,
} from './executor.js';

const FAKE_TERRAFORM = fileURLToPath(new URL('./testdata/fake-terraform.mjs', import.meta.url));
const AWS_SECRET = 'aws-secret-FAKE-wJalrXUtnFEMI';
const PG = 'postgres://ngsci:pg-password-FAKE@127.0.0.1:5432/ngsci';

const root = mkdtempSync(join(tmpdir(), 'ngsci-executor-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function workdir(backend: 'local' | 'pg' = 'local', schema = 'ngsci_tf_x'): string {
  const dir = join(root, `w${++n}`);
  const cfg =
    backend === 'pg'
      ? { terraform: { backend: { pg: { schema_name: schema } } } }
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
      'plan -json -input=false -lock-timeout=300s -out=plan.tfplan',
      'apply -json -input=false -lock-timeout=300s plan.tfplan',
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
    // cancel once terraform is inside plan (its output arrives after its SIGINT handler is set);
    // a fixed delay raced a slow start, when SIGINT during init ended it before it could ignore one
    const run = executor('hang', { killGraceMs: 300 }).up(dir, {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.message.includes('Refreshing')) ac.abort();
      },
    });
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

/** The synthesized instance stacks the terraform package snapshots (real cdktf output). */
function snapshot(name: 'aws-gpu' | 'azure-gpu'): {
  resource: Record<string, Record<string, unknown>>;
} {
  const file = new URL(`../../../../terraform/src/__snapshots__/${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(file, 'utf8')) as {
    resource: Record<string, Record<string, unknown>>;
  };
}

/** A workdir holding `config` and the state an apply of it left (as the test double writes it). */
function appliedWorkdir(config: object, addresses: string[]): string {
  const dir = workdir();
  writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(config));
  const resources = addresses.map((a) => {
    const [type, name] = a.split('.');
    return { mode: 'managed', type, name, instances: [{ attributes: { id: `${name}-id` } }] };
  });
  const state = { version: 4, serial: 1, lineage: 'executor-test', outputs: {}, resources };
  writeFileSync(join(dir, 'terraform.tfstate'), JSON.stringify(state));
  return dir;
}

const ATTACH = 'azurerm_virtual_machine_data_disk_attachment';

describe('executor: an Azure stop never hot-detaches the home disk (terraform test double)', () => {
  /** The Azure GPU instance stack, with a data set copy attached at LUN 1 as well. */
  function azureInstance(): { config: object; state: string[] } {
    const config = snapshot('azure-gpu');
    const attachments = config.resource[ATTACH] ?? {};
    attachments['instance_dataset-attachment_5D1A2B3C'] = { lun: 1, caching: 'ReadOnly' };
    config.resource.azurerm_managed_disk = { instance_dataset_0C9D8E7F: {} };
    const state = Object.entries(config.resource).flatMap(([type, byName]) =>
      Object.keys(byName).map((name) => `${type}.${name}`),
    );
    return { config, state };
  }

  it('forgets every disk attachment before the destroy, so the VM is deleted with its disks attached', async () => {
    const { config, state } = azureInstance();
    const dir = appliedWorkdir(config, state);
    const logs: { level: string; message: string }[] = [];
    const ex = executor('success', { log: (e) => logs.push(e) });
    await ex.down(dir, { onProgress: () => {} });

    const attachments = state.filter((a) => a.startsWith(`${ATTACH}.`)).sort();
    assert.equal(attachments.length, 2);
    const argvs = calls(dir)
      .filter((c) => c.argv)
      .map((c) => c.argv?.join(' '));
    assert.deepEqual(argvs, [
      'init -input=false -no-color',
      'state list',
      `state rm -lock-timeout=300s ${attachments.join(' ')}`,
      'destroy -json -auto-approve -input=false -lock-timeout=300s',
    ]);
    const rm = calls(dir).find((c) => 'stateRm' in c) as unknown as { remaining: string[] };
    assert.ok(
      rm.remaining.includes('azurerm_linux_virtual_machine.instance_machine_E40E43E0'),
      'the VM stays in the state, for the destroy to delete',
    );
    assert.deepEqual(
      rm.remaining.filter((a) => a.startsWith(ATTACH)),
      [],
      'the destroy that followed had no attachment left to detach',
    );
    assert.ok(
      logs.some((l) => l.level === 'info' && /forgot .*instance_home_33C3E8A9/.test(l.message)),
    );
    assert.ok(!logs.some((l) => l.level === 'warn'));
    const after = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
      resources: unknown[];
    };
    assert.deepEqual(after.resources, [], 'the destroy still removed the rest');
  });

  it('a stack whose apply never got to the attachments is destroyed as before', async () => {
    const { config } = azureInstance();
    const dir = appliedWorkdir(config, [
      'azurerm_network_security_group.instance_firewall_972D4FA3',
    ]);
    await executor('success').down(dir);
    assert.deepEqual(
      calls(dir).map((c) => c.argv?.[0] + ' ' + (c.argv?.[1] ?? '')),
      ['init -input=false', 'state list', 'destroy -json'],
    );
  });

  it('AWS instance stacks and Azure home stacks are destroyed as before: no state commands', async () => {
    const aws = snapshot('aws-gpu');
    const awsDir = appliedWorkdir(
      aws,
      Object.entries(aws.resource).flatMap(([t, byName]) =>
        Object.keys(byName).map((n) => `${t}.${n}`),
      ),
    );
    const home = {
      provider: { azurerm: [{ features: [{}] }] },
      resource: {
        azurerm_managed_disk: { home_disk_1A2B3C4D: { lifecycle: { prevent_destroy: false } } },
      },
    };
    const homeDir = appliedWorkdir(home, ['azurerm_managed_disk.home_disk_1A2B3C4D']);
    const ex = executor('success');
    await ex.down(awsDir);
    await ex.down(homeDir);
    for (const dir of [awsDir, homeDir])
      assert.deepEqual(
        calls(dir).map((c) => c.argv?.[0]),
        ['init', 'destroy'],
      );
  });

  it('when state rm fails, the plain destroy still removes the machine, with a warning', async () => {
    const { config, state } = azureInstance();
    const dir = appliedWorkdir(config, state);
    const logs: { level: string; message: string }[] = [];
    await executor('state_rm_error', { log: (e) => logs.push(e) }).down(dir);
    assert.deepEqual(
      calls(dir).map((c) => c.argv?.slice(0, 2).join(' ')),
      ['init -input=false', 'state list', 'state rm', 'destroy -json'],
    );
    const warn = logs.find((l) => l.level === 'warn');
    assert.match(warn?.message ?? '', /could not remove the disk attachments from the state/);
    assert.match(warn?.message ?? '', /Error saving the state/);
    const after = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
      resources: unknown[];
    };
    assert.deepEqual(after.resources, [], 'the machine and its attachments were destroyed');
  });
});

/**
 * The real Postgres at 127.0.0.1:5432, as the pg backend would use it: a new database, as on a
 * first deployment, where the backend's shared `public.global_states_id_seq` does not exist yet
 * (two first inits at once raced on creating it; the executor now creates it first).
 */
let REAL_PG = process.env.NGSCI_TEST_TF_PG_URL ?? '';
let freshDb: FreshPostgres | null = null;
before(async () => {
  if (REAL_PG) return;
  freshDb = await freshPostgres('ngsci_tf_pg');
  REAL_PG = `${freshDb.url}?sslmode=disable`;
});
const runId = Math.random().toString(36).slice(2, 8);
const schemas: string[] = [];
function schemaName(what: string): string {
  const name = `ngsci_tf_test_${runId}_${what}`;
  schemas.push(name);
  return name;
}
async function schemaExists(name: string): Promise<boolean> {
  const sql = postgres(REAL_PG, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_namespace where nspname = ${name}`;
    return rows.length === 1;
  } finally {
    await sql.end();
  }
}
after(async () => {
  const sql = postgres(REAL_PG, { max: 1, onnotice: () => {} });
  for (const s of schemas) await sql`drop schema if exists ${sql(s)} cascade`;
  await sql.end();
  await freshDb?.drop();
});
function pgExecutor(extra: Partial<TerraformExecutorConfig> = {}): TerraformExecutor {
  return executor('success', {
    backend: 'pg',
    pgConnString: REAL_PG,
    // a slow workspace creation (3 s under the lock), so that two first runs surely meet on a busy machine
    extraEnv: {
      FAKE_TERRAFORM_SCENARIO: 'success',
      FAKE_TERRAFORM_PG: '1',
      FAKE_TERRAFORM_PG_CREATE_MS: '3000',
    },
    ...extra,
  });
}

describe('executor: the pg state backend (terraform test double emulating its locks on real Postgres)', () => {
  it('two first applies at once both succeed: the creation lock is waited for, not fatal', async () => {
    const a = workdir('pg', schemaName('a'));
    const b = workdir('pg', schemaName('b'));
    const logs: string[] = [];
    const ex = pgExecutor({ log: (e) => logs.push(e.message) });
    const [ra, rb] = await Promise.all([ex.up(a), ex.up(b)]);
    assert.equal(ra.instance_id?.value, 'i-0fake5678');
    assert.equal(rb.instance_id?.value, 'i-0fake5678');
    assert.ok(
      logs.some((l) => /locked by another terraform run/.test(l)),
      'the two runs did meet on the lock',
    );
  });

  it('without a lock timeout the same two first applies collide (what happened before)', async () => {
    const a = workdir('pg', schemaName('c'));
    const b = workdir('pg', schemaName('d'));
    const ex = pgExecutor({ lockTimeoutSeconds: 0 });
    const results = await Promise.allSettled([ex.up(a), ex.up(b)]);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 1, 'exactly one of the two first applies fails');
    const err = (failed[0] as PromiseRejectedResult).reason as TerraformError;
    assert.equal(err.step, 'plan');
    assert.match(err.message, /already locked for workspace creation/i);
    assert.ok(!err.message.includes(REAL_PG));
  });

  it('down() of an instance stack drops its state schema; a home stack keeps its own', async () => {
    const ex = pgExecutor();
    const instanceSchema = schemaName('inst');
    const homeSchema = schemaName('home');
    const inst = workdir('pg', instanceSchema);
    const home = workdir('pg', homeSchema);
    await Promise.all([ex.up(inst), ex.up(home)]);
    assert.ok(await schemaExists(instanceSchema), 'the state schema exists after the apply');
    await ex.down(inst, { dropStateSchema: true });
    await ex.down(home);
    assert.equal(await schemaExists(instanceSchema), false, 'the instance state schema is dropped');
    assert.ok(await schemaExists(homeSchema), "the home stack's state schema is kept");
  });

  it('a state schema holding anything but an empty state is never dropped', async () => {
    const ex = pgExecutor();
    const schema = schemaName('busy');
    const dir = workdir('pg', schema);
    await ex.up(dir);
    const sql = postgres(REAL_PG, { max: 1, onnotice: () => {} });
    await sql`create table ${sql(schema)}.not_terraform (x int)`;
    await sql.end();
    const logs: string[] = [];
    await pgExecutor({ log: (e) => logs.push(e.message) }).down(dir, { dropStateSchema: true });
    assert.ok(await schemaExists(schema));
    assert.ok(logs.some((l) => l.includes(`state schema ${schema} kept`)));
  });
});

describe('executor: provider mirror', () => {
  function config(dir: string): string {
    return readFileSync(join(dir, CLI_CONFIG_FILE), 'utf8');
  }

  it('a directory becomes a filesystem_mirror in the CLI config terraform is pointed at', async () => {
    const dir = workdir();
    await executor('success', { providerMirror: '/srv/terraform-providers' }).up(dir);
    assert.match(
      config(dir),
      /provider_installation \{\s*filesystem_mirror \{\s*path = "\/srv\/terraform-providers"\s*\}\s*\}/,
    );
    assert.ok(!/direct/.test(config(dir)), 'no fallback to the registries');
    assert.ok(calls(dir).every((c) => !c.envKeys || c.envKeys.includes('TF_CLI_CONFIG_FILE')));
    assert.match(
      describeProviderMirror('/srv/terraform-providers'),
      /filesystem mirror \/srv\/terraform-providers/,
    );
  });

  it('an https URL becomes a network_mirror (with the trailing slash terraform needs)', async () => {
    const dir = workdir();
    await executor('success', { providerMirror: 'https://mirror.example.org/providers' }).init(dir);
    assert.match(
      config(dir),
      /network_mirror \{\s*url = "https:\/\/mirror.example.org\/providers\/"/,
    );
    assert.match(describeProviderMirror('https://mirror.example.org/providers'), /network mirror/);
  });

  it('no mirror: no CLI config, and the start-up line says the registries are used', async () => {
    const dir = workdir();
    await executor('success').init(dir);
    assert.ok(!existsSync(join(dir, CLI_CONFIG_FILE)));
    assert.ok(!calls(dir)[0]?.envKeys?.includes('TF_CLI_CONFIG_FILE'));
    assert.match(describeProviderMirror(undefined), /public registries/);
  });

  it('a mirror that is neither an absolute directory nor an https URL is refused', () => {
    for (const bad of [
      'relative/dir',
      'http://mirror.example.org/',
      'https://u:p@m.example.org/',
      '/a"b',
      '/x/${y}',
    ])
      assert.throws(() => executor('success', { providerMirror: bad }), /provider mirror/, bad);
  });
});
