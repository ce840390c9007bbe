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
 *   hang            plan/apply/destroy print a little, then hang; the first SIGINT is ignored
 *   slow            lines arrive 150 ms apart; SIGINT stops gracefully, saving partial state
 * FAKE_TERRAFORM_ADDRESS: the `address` output `output -json` reports (default: the recorded 10.0.3.17)
 */
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
    default:
      process.stderr.write(`test double: unsupported command ${command}\n`);
      return 1;
  }
}

process.exitCode = await main();
