#!/usr/bin/env node
/**
 * TEST DOUBLE: there is no terraform binary here. This script stands in for `terraform` in the
 * executor's and the provisioner's tests, because the CI machine has neither terraform nor a cloud
 * account. It replays recorded `-json` lines in Terraform's documented machine-readable UI format
 * (testdata/*.jsonl), writes a fake terraform.tfstate on apply, answers `output -json`, and
 * appends its argv, cwd and environment variable NAMES (never values) to
 * `<cwd>/fake-terraform.calls.jsonl` so tests can check the sanitized environment.
 *
 * FAKE_TERRAFORM_SCENARIO:
 *   success         everything works (default)
 *   provider_error  apply fails half way with an error diagnostic; partial state is written
 *   instance_provider_error  the same, but only for a stack with a machine (home-disk stacks apply)
 *   spot_capacity   the apply of a SPOT machine fails with its cloud's recorded "no capacity" error
 *                   (testdata/capacity_<cloud>.apply.jsonl), partial state written; on-demand applies
 *   hang            plan/apply/destroy print a little, then hang; the first SIGINT is ignored
 *   slow            lines arrive 150 ms apart; SIGINT stops gracefully, saving partial state
 * FAKE_TERRAFORM_ADDRESS: the `address` output `output -json` reports (default: the recorded 10.0.3.17)
 *
 * FAKE_TERRAFORM_PG=1 emulates the pg state backend against the real Postgres in PG_CONN_STR, the
 * way terraform's internal/backend/remote-state/pg does it: every command creates the schema, the
 * shared `public.global_states_id_seq` and the `states` table; the first command that needs the
 * state of a workspace with no row yet takes the database-wide creation lock
 * (`pg_try_advisory_lock(-1)`, not honouring -lock-timeout) and fails with the backend's words when
 * another run holds it; plan/apply/destroy then lock the row's id together with -1, retried until
 * -lock-timeout runs out. The state itself stays in terraform.tfstate; the row gets a copy.
 * FAKE_TERRAFORM_PG_CREATE_MS: how long the creation lock is held (default 1500), a slow
 * creation so that two first runs reliably meet.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cwd = process.cwd();
const argv = process.argv.slice(2);
// FAKE_TERRAFORM_SCENARIO_FILE (when the file exists) wins, so a test can switch scenarios between runs
const scenarioFile = process.env.FAKE_TERRAFORM_SCENARIO_FILE;
const scenario =
  (scenarioFile && existsSync(scenarioFile) ? readFileSync(scenarioFile, 'utf8').trim() : '') ||
  process.env.FAKE_TERRAFORM_SCENARIO ||
  'success';
const callLog = join(cwd, 'fake-terraform.calls.jsonl');
const command = argv[0] ?? '';

function record(entry) {
  appendFileSync(callLog, JSON.stringify(entry) + '\n');
}
record({ argv, cwd, envKeys: Object.keys(process.env).sort(), scenario });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const emit = (line) => process.stdout.write(line.endsWith('\n') ? line : line + '\n');

function fixture(name) {
  const file = join(here, name);
  return (
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      // a provider that echoes a credential into its error: the executor must scrub it
      .map((l) => l.replace(/\{\{env:([A-Z0-9_]+)\}\}/g, (_, k) => process.env[k] ?? ''))
  );
}

function config() {
  const file = join(cwd, 'cdk.tf.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

function writeState(resources, outputs) {
  const state = {
    version: 4,
    terraform_version: '1.9.8',
    serial: Date.now(),
    lineage: 'fake-terraform-test-double',
    outputs: Object.fromEntries(
      Object.entries(outputs).map(([k, v]) => [k, { value: v.value, type: v.type }]),
    ),
    resources: resources.map(([addr, id]) => {
      const [type, name] = addr.split('.');
      return {
        mode: 'managed',
        type,
        name,
        provider: 'provider["registry.terraform.io/hashicorp/aws"]',
        instances: [{ attributes: { id } }],
      };
    }),
  };
  writeFileSync(join(cwd, 'terraform.tfstate'), JSON.stringify(state, null, 2));
}

function readState() {
  const file = join(cwd, 'terraform.tfstate');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

let sigints = 0;
let onInterrupt = () => process.exit(130);
process.on('SIGINT', () => {
  sigints += 1;
  record({ signal: 'SIGINT', count: sigints, command });
  onInterrupt();
});

async function replay(lines, { partial } = {}) {
  const delay = scenario === 'slow' ? 150 : 0;
  if (scenario === 'slow') {
    onInterrupt = () => {
      emit(
        JSON.stringify({
          '@level': 'info',
          '@message': 'Interrupt received. Gracefully shutting down...',
          '@module': 'terraform.ui',
          type: 'log',
        }),
      );
      if (partial) writeState(partial, {});
      process.exit(1);
    };
  }
  if (scenario === 'hang') {
    // terraform's first SIGINT asks providers to stop; a stuck provider never does
    onInterrupt = () => {
      if (sigints >= 2) process.exit(1);
      emit(
        JSON.stringify({
          '@level': 'info',
          '@message':
            'Interrupt received. Please wait for Terraform to exit or data loss may occur.',
          '@module': 'terraform.ui',
          type: 'log',
        }),
      );
    };
    for (const l of lines.slice(0, 2)) emit(l);
    await new Promise(() => setInterval(() => {}, 1000));
  }
  for (const l of lines) {
    emit(l);
    if (delay) await sleep(delay);
  }
}

const pgWanted = () => process.env.FAKE_TERRAFORM_PG === '1' && config()?.terraform?.backend?.pg;
let pg = null;

/** The backend's configure step: what every command does before anything else. */
async function pgConfigure() {
  const { default: postgres } = await import('postgres');
  const schema = config().terraform.backend.pg.schema_name ?? 'terraform_remote_state';
  pg = { sql: postgres(process.env.PG_CONN_STR, { max: 1, onnotice: () => {} }), schema };
  const ident = pg.sql(schema);
  await pg.sql`create schema if not exists ${ident}`;
  await pg.sql`create sequence if not exists public.global_states_id_seq as bigint`;
  await pg.sql`create table if not exists ${ident}.states (
    id bigint not null default nextval('public.global_states_id_seq') primary key,
    name text unique, data text)`;
}

function lockInfo(operation) {
  return `Lock Info:\n  ID:        ${randomUUID()}\n  Path:      \n  Operation: ${operation}\n  Who:       test-double@localhost\n  Version:   1.9.8\n  Created:   ${new Date().toISOString()}\n  Info:      `;
}

/** The cloud of the stack's machine when it asks for spot capacity, else null. */
function spotMachineCloud(cfg) {
  const first = (t) => Object.values(cfg?.resource?.[t] ?? {})[0];
  const aws = first('aws_instance');
  if (aws?.instance_market_options?.market_type === 'spot') return 'aws';
  if (first('google_compute_instance')?.scheduling?.provisioning_model === 'SPOT') return 'gcp';
  if (first('azurerm_linux_virtual_machine')?.priority === 'Spot') return 'azure';
  return null;
}

function diagnostic(summary, detail = '') {
  emit(
    JSON.stringify({
      '@level': 'error',
      '@message': `Error: ${summary}`,
      '@module': 'terraform.ui',
      diagnostic: { severity: 'error', summary, detail },
      type: 'diagnostic',
    }),
  );
}

/**
 * The backend's StateMgr: a workspace without a row is created under the creation lock, which
 * fails at once when another run holds it (-lock-timeout does not reach this path). Returns false
 * when it failed.
 */
async function pgStateMgr() {
  const ident = pg.sql(pg.schema);
  const rows = await pg.sql`select id from ${ident}.states where name = 'default'`;
  if (rows.length) return true;
  const [{ locked }] = await pg.sql`select pg_try_advisory_lock(-1) as locked`;
  if (!locked) {
    diagnostic(
      `error loading state: failed to lock state in Postgres: Already locked for workspace creation: default\n${lockInfo('init')}`,
    );
    return false;
  }
  await sleep(Number(process.env.FAKE_TERRAFORM_PG_CREATE_MS ?? 1500));
  await pg.sql`insert into ${ident}.states (name, data) values ('default', ${JSON.stringify({ version: 4, resources: [] })})`;
  await pg.sql`select pg_advisory_unlock(-1)`;
  return true;
}

/** The operation's state lock (clistate): the row's id and -1 together, retried until -lock-timeout. */
async function pgLock(operation) {
  const arg = argv.find((a) => a.startsWith('-lock-timeout='));
  const timeoutMs = arg ? Number(arg.slice('-lock-timeout='.length).replace(/s$/, '')) * 1000 : 0;
  const deadline = Date.now() + timeoutMs;
  const ident = pg.sql(pg.schema);
  for (;;) {
    const [r] = await pg.sql`select states.id, pg_try_advisory_lock(states.id) as did_lock,
      pg_try_advisory_lock(-1) as did_lock_for_create from ${ident}.states where states.name = 'default'`;
    let why;
    if (!r.did_lock) {
      if (r.did_lock_for_create) await pg.sql`select pg_advisory_unlock(-1)`;
      why = 'Workspace is already locked: default';
    } else if (!r.did_lock_for_create) {
      await pg.sql`select pg_advisory_unlock(${r.id})`;
      why = 'Cannot lock workspace; already locked for workspace creation: default';
    } else {
      await pg.sql`select pg_advisory_unlock(-1)`;
      return true;
    }
    if (Date.now() >= deadline) {
      diagnostic(
        'Error acquiring the state lock',
        `Error message: ${why}\n${lockInfo(operation)}\n\nTerraform acquires a state lock to protect the state from being written\nby multiple users at the same time. Please resolve the issue above and try\nagain. For most commands, you can disable locking with the "-lock=false"\nflag, but this is not recommended.`,
      );
      return false;
    }
    await sleep(250);
  }
}

/** Runs a command inside the emulated backend; the session's locks go with the connection. */
async function withPg(command, run) {
  if (!pgWanted()) return run();
  try {
    await pgConfigure();
    if (command !== 'init') {
      if (!(await pgStateMgr())) return 1;
      if (
        ['plan', 'apply', 'destroy'].includes(command) &&
        !(await pgLock(`OperationType${command[0].toUpperCase()}${command.slice(1)}`))
      )
        return 1;
    }
    const code = await run();
    const state = readState();
    if (state && command !== 'init')
      await pg.sql`update ${pg.sql(pg.schema)}.states set data = ${JSON.stringify(state)} where name = 'default'`;
    return code;
  } finally {
    await pg?.sql.end({ timeout: 5 });
  }
}

async function main() {
  const stateFixture = JSON.parse(readFileSync(join(here, 'success.state.json'), 'utf8'));
  switch (command) {
    case 'version':
    case '-version':
      emit('Terraform v1.9.8 (test double)');
      return 0;
    case 'init': {
      const cfg = config();
      if (!cfg) {
        process.stderr.write('Error: No configuration files\n');
        return 1;
      }
      if (!process.env.TF_PLUGIN_CACHE_DIR) {
        process.stderr.write('test double: TF_PLUGIN_CACHE_DIR not set\n');
        return 1;
      }
      if (cfg.terraform?.backend?.pg && !process.env.PG_CONN_STR) {
        process.stderr.write(
          'Error: Missing conn_str: the pg backend needs conn_str or PG_CONN_STR\n',
        );
        return 1;
      }
      mkdirSync(join(cwd, '.terraform'), { recursive: true });
      writeFileSync(join(cwd, '.terraform.lock.hcl'), '# test double\n');
      emit('Initializing the backend...');
      emit('Initializing provider plugins...');
      emit('Terraform has been successfully initialized!');
      return 0;
    }
    case 'plan': {
      const out = argv.find((a) => a.startsWith('-out='));
      if (!out || !argv.includes('-json')) {
        process.stderr.write('test double: plan expects -json and -out=\n');
        return 1;
      }
      await replay(fixture('success.plan.jsonl'));
      writeFileSync(join(cwd, out.slice(5)), 'test double plan\n');
      return 0;
    }
    case 'apply': {
      const planFile = argv[argv.length - 1];
      if (!planFile || !existsSync(join(cwd, planFile))) {
        process.stderr.write(`Error: Failed to load "${planFile}" as a plan file\n`);
        return 1;
      }
      const machineStack = [
        'aws_instance',
        'google_compute_instance',
        'azurerm_linux_virtual_machine',
      ].some((t) => config()?.resource?.[t]);
      const spotCloud = scenario === 'spot_capacity' ? spotMachineCloud(config()) : null;
      if (spotCloud) {
        for (const l of fixture(`capacity_${spotCloud}.apply.jsonl`)) emit(l);
        writeState(stateFixture.resources.slice(0, 1), {});
        return 1;
      }
      if (
        scenario === 'provider_error' ||
        (scenario === 'instance_provider_error' && machineStack)
      ) {
        for (const l of fixture('provider_error.apply.jsonl')) emit(l);
        writeState(stateFixture.resources.slice(0, 1), {});
        return 1;
      }
      await replay(fixture('success.apply.jsonl'), { partial: stateFixture.resources.slice(0, 1) });
      writeState(stateFixture.resources, stateFixture.outputs);
      return 0;
    }
    case 'output': {
      const state = readState();
      const outputs = Object.fromEntries(
        Object.entries(state?.outputs ?? {}).map(([k, v]) => [
          k,
          { sensitive: false, type: v.type ?? 'string', value: v.value },
        ]),
      );
      // FAKE_TERRAFORM_ADDRESS: the machine's address, so a test can answer the readiness check itself
      if (outputs.address && process.env.FAKE_TERRAFORM_ADDRESS)
        outputs.address.value = process.env.FAKE_TERRAFORM_ADDRESS;
      emit(JSON.stringify(outputs));
      return 0;
    }
    case 'destroy': {
      const state = readState();
      if (!state || state.resources.length === 0) {
        emit(
          JSON.stringify({
            '@level': 'info',
            '@message': 'Terraform 1.9.8',
            '@module': 'terraform.ui',
            terraform: '1.9.8',
            type: 'version',
            ui: '1.2',
          }),
        );
        emit(
          JSON.stringify({
            '@level': 'info',
            '@message': 'Destroy complete! Resources: 0 destroyed.',
            '@module': 'terraform.ui',
            changes: { add: 0, change: 0, remove: 0, operation: 'destroy' },
            type: 'change_summary',
          }),
        );
        return 0;
      }
      await replay(fixture('success.destroy.jsonl'), { partial: state.resources });
      writeState([], {});
      return 0;
    }
    case 'state': {
      // `state list` prints the state's addresses, sorted as terraform does; `state rm
      // [-lock-timeout=..] ADDRESS...` forgets them (the cloud is not touched) and records what the
      // state still holds, so a test can see what the next destroy got. Scenario state_rm_error:
      // `state rm` fails, removing nothing.
      const sub = argv[1];
      const state = readState();
      if (!state) {
        process.stderr.write('No state file was found!\n');
        return 1;
      }
      const address = (r) => `${r.type}.${r.name}`;
      if (sub === 'list') {
        for (const a of state.resources.map(address).sort()) emit(a);
        return 0;
      }
      if (sub !== 'rm') {
        process.stderr.write(`test double: unsupported command state ${sub}\n`);
        return 1;
      }
      const targets = argv.slice(2).filter((a) => !a.startsWith('-'));
      if (scenario === 'state_rm_error') {
        process.stderr.write(
          'Error saving the state: the backend refused the write (test double)\n\nThe state was not saved. No items were removed from the persisted state.\n',
        );
        return 1;
      }
      const missing = targets.filter((t) => !state.resources.some((r) => address(r) === t));
      if (!targets.length || missing.length) {
        process.stderr.write(`Error: Invalid target address: no matching objects found\n`);
        return 1;
      }
      state.resources = state.resources.filter((r) => !targets.includes(address(r)));
      state.serial += 1;
      writeFileSync(join(cwd, 'terraform.tfstate'), JSON.stringify(state, null, 2));
      for (const t of targets) emit(`Removed ${t}`);
      emit(`Successfully removed ${targets.length} resource instance(s).`);
      record({ stateRm: targets, remaining: state.resources.map(address) });
      return 0;
    }
    default:
      process.stderr.write(`test double: unsupported command ${command}\n`);
      return 1;
  }
}

process.exitCode = await withPg(command, main);
