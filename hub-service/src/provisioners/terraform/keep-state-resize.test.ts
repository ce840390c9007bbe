/**
 * Keep-state on the VM path, against the terraform TEST DOUBLE (testdata/fake-terraform.mjs; the
 * stacks are real cdktf synth output): kernel variables kept across a resize live in
 * `~/.ngsci/state` (magic ngsci_magic/keep_state.py), so on a cloud machine they survive exactly
 * when the home disk does. A resize is the old instance's stop and a new instance's start for
 * the same (user, server); this runs that sequence and checks that the home stack is applied,
 * never destroyed, and that both machines attach the same home disk and mount it as the
 * notebooks' HOME, where the snapshot is written before the stop and read after the start.
 * What only a real cloud shows (the disk really re-attaching in the new machine's zone, the
 * image's ngsci_magic restoring) is in docs/researcher-guide.md.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Offer, Size } from '@ngsci/contract';
import type { ProgressReport, ProvisionRequest } from '../types.js';
import { TerraformExecutor } from './executor.js';
import { TerraformProvisioner } from './provisioner.js';
import { loadTerraformSettings } from './settings.js';

const FAKE_TERRAFORM = fileURLToPath(new URL('./testdata/fake-terraform.mjs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'ngsci-tf-keep-state-'));
after(() => rmSync(root, { recursive: true, force: true }));

const settings = loadTerraformSettings(
  {
    NGSCI_TERRAFORM_WORKDIR: join(root, 'tf'),
    NGSCI_VM_HUB_URL: 'https://hub.example.org',
    NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
    NGSCI_TERRAFORM_STATE: 'local',
    NGSCI_TERRAFORM_READY_TIMEOUT: '1',
    NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
    NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
    NGSCI_AWS_VPC_ID: 'vpc-0abc',
    NGSCI_AWS_SUBNET_ID: 'subnet-0abc',
    AWS_ACCESS_KEY_ID: 'AKIAFAKE',
    AWS_SECRET_ACCESS_KEY: 'aws-secret-FAKE',
  },
  join(root, 'data'),
);

const offer = (instanceType: string, onDemand: number): Offer => ({
  cloud: 'aws',
  region: 'us-east-1',
  instanceType,
  available: true,
  onDemandMicrosPerHour: onDemand,
  spotMicrosPerHour: Math.round(onDemand / 2),
});
const t4: Size = {
  id: 'gpu-t4',
  label: 'T4',
  class: 'gpu',
  vcpu: 4,
  memoryGiB: 16,
  gpu: { model: 'T4', count: 1, memoryGiB: 16 },
  offers: [offer('g4dn.xlarge', 526_000)],
};
const l4: Size = {
  id: 'gpu-l4',
  label: 'L4',
  class: 'gpu',
  vcpu: 4,
  memoryGiB: 16,
  gpu: { model: 'L4', count: 1, memoryGiB: 24 },
  offers: [offer('g6.xlarge', 805_000)],
};

function request(instanceId: string, size: Size): ProvisionRequest {
  return {
    instanceId,
    user: 'alice',
    server: 'default',
    size,
    offer: size.offers[0]!,
    spot: false,
    env: {
      JUPYTERHUB_API_TOKEN: 'hub-api-token-FAKE',
      JUPYTERHUB_USER: 'alice',
      JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api',
      JUPYTERHUB_SERVICE_URL: 'http://127.0.0.1:0/user/alice/',
      NGSCI_API_URL: '/services/ngsci/api/v1',
    },
    baseUrl: '/user/alice/',
  };
}

function ctx() {
  const events: ProgressReport[] = [];
  return {
    events,
    ctx: {
      report: async (e: ProgressReport) => void events.push(e),
      signal: new AbortController().signal,
    },
  };
}

/** The terraform verbs the double was called with in a workdir, in order. */
function verbs(dir: string): string[] {
  return readFileSync(join(dir, 'fake-terraform.calls.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { argv: string[] }).argv[0]!);
}

interface Stack {
  resource: Record<string, Record<string, Record<string, unknown>>>;
}

describe('keep-state on the VM path (terraform test double)', () => {
  it('a resize (stop the old machine, start the new size) keeps the home disk the snapshot is on', async () => {
    const p = new TerraformProvisioner({
      settings,
      executor: new TerraformExecutor({
        binary: FAKE_TERRAFORM,
        pluginCacheDir: settings.pluginCacheDir,
        backend: 'local',
        credentials: settings.credentials,
        extraEnv: { FAKE_TERRAFORM_SCENARIO: 'success' },
        killGraceMs: 300,
      }),
      issueBootstrapToken: async (id) => `bootstrap-${id}-FAKE`,
      isReady: async () => true,
      pollIntervalMs: 10,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      watchIntervalMs: 0,
    });

    const old = await p.start(request('inst-old', t4), ctx().ctx);
    // the resize: the old machine stops (the page and the magic saved the variables before)...
    await p.stop('inst-old', old.ref, ctx().ctx);
    // ...and the new size starts for the same server
    const { events, ctx: c } = ctx();
    const next = await p.start(request('inst-new', l4), c);
    assert.equal(events.at(-1)?.state, 'starting');

    // one home stack per (user, server), the same for both machines, never destroyed
    assert.equal(next.ref.homeWorkdir, old.ref.homeWorkdir);
    const homeVerbs = verbs(old.ref.homeWorkdir as string);
    assert.ok(!homeVerbs.includes('destroy'), `the home stack: ${homeVerbs.join(' ')}`);
    assert.equal(homeVerbs.filter((v) => v === 'apply').length, 2, 'applied at each start');
    const home = JSON.parse(
      readFileSync(join(old.ref.homeWorkdir as string, 'terraform.tfstate'), 'utf8'),
    ) as { resources: unknown[] };
    assert.ok(home.resources.length > 0, 'the home disk is still in its state');
    assert.ok(verbs(old.ref.workdir as string).includes('destroy'), 'the old machine is gone');

    // both machines attach the same home disk; neither stack creates or deletes a home volume
    assert.equal(next.ref.homeDiskId, old.ref.homeDiskId);
    for (const r of [old.ref, next.ref]) {
      const text = readFileSync(join(r.workdir as string, 'cdk.tf.json'), 'utf8');
      const stack = JSON.parse(text) as Stack;
      const attachments = Object.values(stack.resource.aws_volume_attachment ?? {});
      assert.deepEqual(
        attachments.map((a) => a.volume_id),
        [r.homeDiskId],
        'the home disk attached',
      );
      assert.equal(stack.resource.aws_ebs_volume, undefined, 'no home volume in a machine stack');
      // mounted as the notebooks' HOME: ~/.ngsci/state (the snapshot) is on the home disk
      assert.ok(text.includes('/home/jovyan'), 'the home disk is mounted at /home/jovyan');
      // the image's notebooks run with HOME /home/jovyan (docker/singleuser.Dockerfile), and the
      // container gets the home disk there
      assert.ok(
        text.includes('-v /home/jovyan:/home/jovyan'),
        "the notebooks' HOME in the container is the home disk",
      );
    }
    const newStack = JSON.parse(
      readFileSync(join(next.ref.workdir as string, 'cdk.tf.json'), 'utf8'),
    ) as Stack;
    const machine = Object.values(newStack.resource.aws_instance ?? {})[0];
    assert.equal(machine?.instance_type, 'g6.xlarge', 'the new machine is the new size');
  });
});
