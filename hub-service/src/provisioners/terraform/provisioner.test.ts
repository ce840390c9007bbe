/**
 * TerraformProvisioner against a test double of terraform (testdata/fake-terraform.mjs): there is no
 * terraform binary or cloud account on the CI machine. The stacks are real cdktf synth output.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Offer, Size } from '@ngsci/contract';
import type { ExitReport, ProgressReport, ProvisionRequest } from '../types.js';
import { TerraformExecutor } from './executor.js';
import {
  TerraformProvisioner,
  TerraformProvisionError,
  type ReadinessCheck,
} from './provisioner.js';
import { defaultReadiness } from './provisioner.js';
import { identityProblems, loadTerraformSettings } from './settings.js';

const FAKE_TERRAFORM = fileURLToPath(new URL('./testdata/fake-terraform.mjs', import.meta.url));
const HUB_TOKEN = 'hub-api-token-FAKE-8c1f2e';
const AGENT_TOKEN = 'ngsa_agent-credential-FAKE-3d4e';
const root = mkdtempSync(join(tmpdir(), 'ngsci-tfprov-'));
after(() => rmSync(root, { recursive: true, force: true }));

const settings = loadTerraformSettings(
  {
    NGSCI_TERRAFORM_WORKDIR: join(root, 'tf'),
    NGSCI_TERRAFORM_SERVICE_URL: 'https://hub.example.org/services/ngsci',
    NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
    NGSCI_TERRAFORM_STATE: 'local',
    NGSCI_TERRAFORM_READY_TIMEOUT: '1',
    NGSCI_AWS_VPC_ID: 'vpc-0abc',
    NGSCI_AWS_SUBNET_ID: 'subnet-0abc',
    AWS_ACCESS_KEY_ID: 'AKIAFAKE',
    AWS_SECRET_ACCESS_KEY: 'aws-secret-FAKE',
    JUPYTERHUB_API_TOKEN: 'must-not-be-picked',
  },
  join(root, 'data'),
);

const offer: Offer = {
  cloud: 'aws',
  region: 'us-east-1',
  instanceType: 'g4dn.xlarge',
  available: true,
  onDemandMicrosPerHour: 526_000,
  spotMicrosPerHour: 210_000,
};
const size: Size = {
  id: 'gpu-t4',
  label: 'T4',
  class: 'gpu',
  vcpu: 4,
  memoryGiB: 16,
  gpu: { model: 'T4', count: 1, memoryGiB: 16 },
  offers: [offer],
};

let n = 0;
function request(): ProvisionRequest {
  return {
    instanceId: `inst-${++n}`,
    user: 'alice',
    server: 'default',
    size,
    offer,
    spot: true,
    env: {
      JUPYTERHUB_API_TOKEN: HUB_TOKEN,
      JUPYTERHUB_USER: 'alice',
      JUPYTERHUB_SERVICE_URL: 'http://127.0.0.1:0/user/alice/',
    },
    baseUrl: '/user/alice/',
  };
}

function provisioner(
  scenario: string,
  ready: ReadinessCheck = async () => true,
  extra: Record<string, unknown> = {},
) {
  const issued: {
    instanceId: string;
    env: Record<string, string>;
    opts?: { agentToken?: string };
  }[] = [];
  const probes: string[] = [];
  const recorded: [string, string, number][] = [];
  const p = new TerraformProvisioner({
    settings,
    executor: new TerraformExecutor({
      binary: FAKE_TERRAFORM,
      pluginCacheDir: settings.pluginCacheDir,
      backend: 'local',
      credentials: settings.credentials,
      extraEnv: { FAKE_TERRAFORM_SCENARIO: scenario },
      killGraceMs: 300,
    }),
    issueBootstrapToken: async (instanceId, env, opts) => {
      issued.push({ instanceId, env, ...(opts?.agentToken ? { opts } : {}) });
      return `bootstrap-${instanceId}-FAKE`;
    },
    recordCloudInstance: async (instanceId: string, cloudInstanceId: string) => {
      recorded.push([instanceId, cloudInstanceId, probes.length]);
    },
    isReady: async (url, f, s) => {
      probes.push(url);
      return ready(url, f, s);
    },
    pollIntervalMs: 10,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    watchIntervalMs: 0,
    ...extra,
  });
  return { p, issued, probes, recorded };
}

function ctx(signal = new AbortController().signal) {
  const events: ProgressReport[] = [];
  return { events, ctx: { report: async (e: ProgressReport) => void events.push(e), signal } };
}

describe('TerraformProvisioner (terraform test double)', () => {
  it('TerraformProvisioner (terraform test double): start synthesizes, applies, polls <address>:<port><baseUrl>api and returns the target', async () => {
    const { p, issued, probes } = provisioner('success');
    const req = request();
    const { events, ctx: c } = ctx();
    const result = await p.start(req, c);
    assert.equal(result.targetUrl, 'http://10.0.3.17:8888/user/alice/');
    assert.deepEqual(probes, ['http://10.0.3.17:8888/user/alice/api']);
    assert.deepEqual(
      issued,
      [
        {
          instanceId: req.instanceId,
          env: { ...req.env, JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:8888/user/alice/' },
        },
      ],
      "the machine's server binds the single-user port, not the hub's placeholder 127.0.0.1:0",
    );
    assert.deepEqual(
      await p.liveInstanceIds(),
      [req.instanceId],
      'an applied workdir counts as live',
    );
    const ps = events.map((e) => e.progress);
    assert.deepEqual(
      ps,
      [...ps].sort((a, b) => a - b),
    );
    assert.equal(events.at(-1)?.state, 'starting');
    assert.ok(events.some((e) => e.state === 'provisioning'));

    const workdir = result.ref.workdir as string;
    const config = readFileSync(join(workdir, 'cdk.tf.json'), 'utf8');
    assert.ok(
      config.includes(`bootstrap-${req.instanceId}-FAKE`),
      'user-data carries the bootstrap token',
    );
    assert.ok(!config.includes(HUB_TOKEN), 'the hub token never reaches terraform');
    assert.ok(!readFileSync(join(workdir, 'terraform.tfstate'), 'utf8').includes(HUB_TOKEN));
    assert.ok(
      !JSON.stringify(result.ref).includes(HUB_TOKEN) &&
        !JSON.stringify(result.ref).includes('bootstrap-'),
    );
    assert.ok(
      existsSync(join(result.ref.homeWorkdir as string, 'terraform.tfstate')),
      'home stack applied',
    );

    assert.equal(await p.adopt(req.instanceId, result.ref), true);
    await p.stop(req.instanceId, result.ref, ctx().ctx);
    assert.equal(
      await p.adopt(req.instanceId, result.ref),
      false,
      'nothing left to adopt after stop',
    );
    assert.deepEqual(await p.liveInstanceIds(), [], 'a destroyed workdir is not live');
    await p.stop(req.instanceId, result.ref, ctx().ctx); // idempotent
    const homeState = JSON.parse(
      readFileSync(join(result.ref.homeWorkdir as string, 'terraform.tfstate'), 'utf8'),
    ) as { resources: unknown[] };
    assert.ok(homeState.resources.length > 0, 'stop leaves the home disk alone');
  });

  it('TerraformProvisioner (terraform test double): a provider error rejects with provision_failed and no secrets', async () => {
    const { p } = provisioner('provider_error');
    const err = await p.start(request(), ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError);
    assert.equal(err.code, 'provision_failed');
    assert.match(err.message, /InsufficientInstanceCapacity/);
    assert.ok(!err.message.includes('aws-secret-FAKE') && !err.message.includes(HUB_TOKEN));
  });

  it('TerraformProvisioner (terraform test double): a server that never answers is a ready_timeout; the state stays for stop', async () => {
    const { p } = provisioner('success', async () => false);
    const req = request();
    const err = await p.start(req, ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError);
    assert.equal(err.code, 'ready_timeout');
    assert.ok(existsSync(join(p.instanceWorkdir(req.instanceId), 'terraform.tfstate')));
    await p.stop(req.instanceId, {}, ctx().ctx);
  });

  it('TerraformProvisioner (terraform test double): cancelling a start stops terraform and says cancelled', async () => {
    const { p } = provisioner('hang');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await p.start(request(), ctx(ac.signal).ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError);
    assert.equal(err.code, 'cancelled');
  });

  it('TerraformProvisioner (terraform test double): a running machine that stops answering is reported once as process_lost', async () => {
    let healthy = true;
    const { p } = provisioner('success', async () => healthy, {
      watchIntervalMs: 20,
      lostAfter: 2,
    });
    const exits: ExitReport[] = [];
    p.onExit((r) => exits.push(r));
    const req = request();
    await p.start(req, ctx().ctx);
    healthy = false;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(exits.length, 1);
    assert.equal(exits[0]?.errorCode, 'process_lost');
    await p.close({ stopInstances: false });
  });

  it('TerraformProvisioner (terraform test double): refuses clouds the hub has not configured and types without the size GPUs', async () => {
    const { p } = provisioner('success');
    const gcp = await p
      .start(
        { ...request(), offer: { ...offer, cloud: 'gcp', instanceType: 'g2-standard-4' } },
        ctx().ctx,
      )
      .catch((e: unknown) => e);
    assert.ok(gcp instanceof TerraformProvisionError && gcp.code === 'size_unavailable');
    const wrong = await p
      .start({ ...request(), offer: { ...offer, instanceType: 'm6i.xlarge' } }, ctx().ctx)
      .catch((e: unknown) => e);
    assert.ok(wrong instanceof TerraformProvisionError && /GPUs/.test(wrong.message));
  });

  it('TerraformProvisioner (terraform test double): the agent credential goes into the sealed bootstrap only, never into terraform; the machine id is recorded before the first readiness poll', async () => {
    const { p, issued, recorded } = provisioner('success');
    const req = { ...request(), agentToken: AGENT_TOKEN };
    const result = await p.start(req, ctx().ctx);
    assert.deepEqual(issued[0]?.opts, { agentToken: AGENT_TOKEN });
    assert.ok(
      !Object.values(issued[0]?.env ?? {}).includes(AGENT_TOKEN),
      "not in the server's env",
    );
    assert.deepEqual(recorded, [[req.instanceId, 'i-0fake5678', 0]]);
    const workdir = result.ref.workdir as string;
    for (const f of ['cdk.tf.json', 'terraform.tfstate', 'fake-terraform.calls.jsonl'])
      assert.ok(!readFileSync(join(workdir, f), 'utf8').includes(AGENT_TOKEN), f);
    assert.ok(!JSON.stringify(result.ref).includes(AGENT_TOKEN));
    await p.stop(req.instanceId, result.ref, ctx().ctx);
  });

  it('TerraformProvisioner (terraform test double): the readiness and health checks send no credential to the machine', async () => {
    const seen: { url: string; headers: Headers }[] = [];
    const recordingFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      seen.push({ url: String(url), headers: new Headers(init?.headers) });
      return new Response('{"version":"5.0.0"}', { status: 200 });
    }) as typeof fetch;
    const { p } = provisioner('success', defaultReadiness, {
      fetch: recordingFetch,
      watchIntervalMs: 20,
    });
    const req = { ...request(), agentToken: AGENT_TOKEN };
    const result = await p.start(req, ctx().ctx);
    await new Promise((r) => setTimeout(r, 80));
    await p.close({ stopInstances: false });
    assert.ok(seen.length >= 2, 'the readiness poll and at least one health poll');
    for (const s of seen) {
      assert.equal(s.url, 'http://10.0.3.17:8888/user/alice/api');
      assert.equal(s.headers.get('authorization'), null);
      assert.equal(s.headers.get('cookie'), null);
      for (const [, v] of s.headers) assert.ok(!v.includes(HUB_TOKEN) && !v.includes(AGENT_TOKEN));
    }
    await p.stop(req.instanceId, result.ref, ctx().ctx);
  });

  it('TerraformProvisioner (terraform test double): a hub API URL the machine would reach over plain http refuses the start', async () => {
    const { p } = provisioner('success');
    const req = request();
    req.env.JUPYTERHUB_API_URL = 'http://10.0.0.2:8081/hub/api';
    const err = await p.start(req, ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError);
    assert.match(err.message, /not https.*NGSCI_ALLOW_HTTP_VM_URLS/);
  });

  it('VM-facing URLs must be https unless the development setting allows http; every placed cloud needs its identity certificate', () => {
    const base = { NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24', NGSCI_TERRAFORM_STATE: 'local' };
    assert.throws(
      () => loadTerraformSettings({ ...base, NGSCI_TERRAFORM_SERVICE_URL: 'http://h/s' }),
      /NGSCI_TERRAFORM_SERVICE_URL must be an https:\/\/ URL.*NGSCI_ALLOW_HTTP_VM_URLS/,
    );
    const dev = loadTerraformSettings({
      ...base,
      NGSCI_TERRAFORM_SERVICE_URL: 'http://h/s',
      NGSCI_ALLOW_HTTP_VM_URLS: 'true',
    });
    assert.equal(dev.allowHttpVmUrls, true);

    assert.deepEqual(
      identityProblems(settings, {}).map((m) => m.split(':')[0]),
      ['NGSCI_IDENTITY_AWS_CERT'],
      'aws is placed and has no certificate',
    );
    assert.deepEqual(identityProblems(settings, { NGSCI_IDENTITY_AWS_CERT: '/etc/aws.pem' }), []);
    assert.deepEqual(identityProblems(settings, { NGSCI_IDENTITY_REQUIRED: false }), []);
  });

  it('settings pick provider credentials by name and nothing else', () => {
    assert.deepEqual(Object.keys(settings.credentials).sort(), [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
    ]);
    assert.equal(settings.backend, 'local');
    const pg = loadTerraformSettings({
      NGSCI_TERRAFORM_SERVICE_URL: 'https://h/s',
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      DATABASE_URL: 'postgres://u:p@db/ngsci',
    });
    assert.equal(pg.backend, 'pg');
    assert.throws(
      () =>
        loadTerraformSettings({
          NGSCI_TERRAFORM_SERVICE_URL: 'https://h/s',
          NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
          NGSCI_TERRAFORM_PG_CONN_STR: 'secret-value-FAKE',
        }),
      (e: Error) =>
        /NGSCI_TERRAFORM_PG_CONN_STR/.test(e.message) && !e.message.includes('secret-value-FAKE'),
    );
  });
});

describe('TerraformProvisioner without a binary', () => {
  it('a missing terraform binary fails the start with provision_failed naming the setting, not a crash', async () => {
    const p = new TerraformProvisioner({
      settings: { ...settings, binary: join(root, 'no-such-terraform') },
      issueBootstrapToken: async () => 'bootstrap-FAKE-token',
      isReady: async () => true,
      watchIntervalMs: 0,
    });
    const err = await p.start(request(), ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError);
    assert.equal(err.code, 'provision_failed');
    assert.match(err.message, /not found; set NGSCI_TERRAFORM_BINARY/);
  });
});
