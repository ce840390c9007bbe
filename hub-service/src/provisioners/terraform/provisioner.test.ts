/**
 * TerraformProvisioner against a test double of terraform (testdata/fake-terraform.mjs): there is no
 * terraform binary or cloud account on the CI machine. The stacks are real cdktf synth output.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Offer, Size } from '@ngsci/contract';
import { WITH_L40S } from './testdata/machine-types.js';
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

/** ngsci's own single-user images, as an operator names them after pushing them */
const IMAGES = {
  NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
  NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
};

const settings = loadTerraformSettings(
  {
    NGSCI_TERRAFORM_WORKDIR: join(root, 'tf'),
    NGSCI_VM_HUB_URL: 'https://hub.example.org',
    NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
    NGSCI_TERRAFORM_STATE: 'local',
    NGSCI_TERRAFORM_READY_TIMEOUT: '1',
    NGSCI_TERRAFORM_EGRESS_ALLOW: '203.0.113.0/24,198.51.100.0/24',
    ...IMAGES,
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
    // what the hub computes for a server on its own host (hub API bound to loopback)
    env: {
      JUPYTERHUB_API_TOKEN: HUB_TOKEN,
      JUPYTERHUB_USER: 'alice',
      JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api',
      JUPYTERHUB_ACTIVITY_URL: 'http://127.0.0.1:8081/hub/api/users/alice/activity',
      JUPYTERHUB_OAUTH_CALLBACK_URL: '/user/alice/oauth_callback',
      JUPYTERHUB_SERVICE_URL: 'http://127.0.0.1:0/user/alice/',
      NGSCI_API_URL: '/services/ngsci/api/v1',
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
          env: {
            ...req.env,
            JUPYTERHUB_API_URL: 'https://hub.example.org/hub/api',
            JUPYTERHUB_ACTIVITY_URL: 'https://hub.example.org/hub/api/users/alice/activity',
            NGSCI_API_URL: 'https://hub.example.org/services/ngsci/api/v1',
            JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:8888/user/alice/',
          },
        },
      ],
      "the machine reaches the hub and the service at NGSCI_VM_HUB_URL, and its server binds the single-user port, not the hub's placeholder 127.0.0.1:0",
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
    assert.ok(
      events.some((e) => e.state === 'provisioning'),
      'a provisioning event',
    );

    const workdir = result.ref.workdir as string;
    const config = readFileSync(join(workdir, 'cdk.tf.json'), 'utf8');
    assert.ok(
      config.includes(`bootstrap-${req.instanceId}-FAKE`),
      'user-data carries the bootstrap token',
    );
    assert.ok(!config.includes(HUB_TOKEN), 'the hub token never reaches terraform');
    assert.ok(
      !readFileSync(join(workdir, 'terraform.tfstate'), 'utf8').includes(HUB_TOKEN),
      'the hub token never reaches the state',
    );
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
    assert.ok(err instanceof TerraformProvisionError, 'the start fails');
    assert.equal(err.code, 'provision_failed');
    assert.match(err.message, /InsufficientInstanceCapacity/);
    assert.ok(
      !err.message.includes('aws-secret-FAKE') && !err.message.includes(HUB_TOKEN),
      'no secret in the message',
    );
  });

  it('TerraformProvisioner (terraform test double): no spot capacity, fallback allowed: the spot machine is destroyed and an on-demand one starts', async () => {
    const { p } = provisioner('spot_capacity');
    const req = request();
    const { events, ctx: c } = ctx();
    let asked = 0;
    const result = await p.start(req, {
      ...c,
      switchToOnDemand: async () => {
        asked++;
        return true;
      },
    });
    assert.equal(asked, 1, 'the service is asked once to bill the start on demand');
    assert.ok(
      events.some((e) =>
        /no spot capacity for g4dn\.xlarge in us-east-1\w*: starting on demand instead \(you allowed it\)/.test(
          e.message,
        ),
      ),
      `the progress says so: ${events.map((e) => e.message).join(' | ')}`,
    );
    const dir = p.instanceWorkdir(req.instanceId);
    const calls = readFileSync(join(dir, 'fake-terraform.calls.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { argv: string[] }).argv[0]);
    const destroyAt = calls.indexOf('destroy');
    assert.ok(destroyAt > calls.indexOf('apply'), 'the failed spot apply is destroyed');
    assert.ok(calls.lastIndexOf('apply') > destroyAt, 'then the on-demand stack is applied');
    const applied = JSON.parse(readFileSync(join(dir, 'cdk.tf.json'), 'utf8')) as {
      resource: { aws_instance: Record<string, Record<string, unknown>> };
    };
    const machine = Object.values(applied.resource.aws_instance)[0];
    assert.equal(machine?.instance_market_options, undefined, 'the machine is on demand');
    assert.equal(
      (JSON.parse(result.ref.stack as string) as { spot: boolean }).spot,
      false,
      'a later destroy synthesizes the on-demand stack',
    );
  });

  it('TerraformProvisioner (terraform test double): no spot capacity without fallback fails with what to do; the partial machine is left for the stop job', async () => {
    for (const switchToOnDemand of [undefined, async () => false]) {
      const { p } = provisioner('spot_capacity');
      const req = request();
      const { events, ctx: c } = ctx();
      const err = await p
        .start(req, { ...c, ...(switchToOnDemand ? { switchToOnDemand } : {}) })
        .catch((e: unknown) => e);
      assert.ok(err instanceof TerraformProvisionError, 'the start fails');
      assert.equal(err.code, 'provision_failed');
      assert.match(
        err.message,
        /^no spot capacity for g4dn\.xlarge in us-east-1\w* \(InsufficientInstanceCapacity\); start again, or allow on-demand$/,
      );
      assert.ok(!events.some((e) => /on demand instead/.test(e.message)), 'no fallback announced');
      assert.ok(
        (await p.liveInstanceIds()).includes(req.instanceId),
        "what the failed apply created is still there for the failed start's stop job",
      );
      await p.stop(req.instanceId, {}, ctx().ctx);
    }
  });

  it('TerraformProvisioner (terraform test double): an on-demand start never asks to switch', async () => {
    const { p } = provisioner('spot_capacity');
    const { ctx: c } = ctx();
    let asked = false;
    await p.start(
      { ...request(), spot: false },
      {
        ...c,
        switchToOnDemand: async () => {
          asked = true;
          return true;
        },
      },
    );
    assert.equal(asked, false);
  });

  it('TerraformProvisioner (terraform test double): a server that never answers is a ready_timeout; the state stays for stop', async () => {
    const { p } = provisioner('success', async () => false);
    const req = request();
    const err = await p.start(req, ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError, 'the start fails');
    assert.equal(err.code, 'ready_timeout');
    assert.ok(
      existsSync(join(p.instanceWorkdir(req.instanceId), 'terraform.tfstate')),
      'the state stays',
    );
    await p.stop(req.instanceId, {}, ctx().ctx);
  });

  it('TerraformProvisioner (terraform test double): cancelling a start stops terraform and says cancelled', async () => {
    const { p } = provisioner('hang');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await p.start(request(), ctx(ac.signal).ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError, 'the start fails');
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
    assert.ok(
      gcp instanceof TerraformProvisionError && gcp.code === 'size_unavailable',
      'an unplaced cloud is size_unavailable',
    );
    const wrong = await p
      .start({ ...request(), offer: { ...offer, instanceType: 'm6i.xlarge' } }, ctx().ctx)
      .catch((e: unknown) => e);
    assert.ok(
      wrong instanceof TerraformProvisionError &&
        /m6i.xlarge has 0 GPU\(s\), size gpu-t4 promises 1/.test(wrong.message),
      'a type without the GPUs is refused',
    );
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
    assert.ok(!JSON.stringify(result.ref).includes(AGENT_TOKEN), 'not in the ref');
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
      for (const [k, v] of s.headers)
        assert.ok(!v.includes(HUB_TOKEN) && !v.includes(AGENT_TOKEN), `no credential in ${k}`);
    }
    await p.stop(req.instanceId, result.ref, ctx().ctx);
  });

  it('TerraformProvisioner (terraform test double): no URL the machine gets points at the hub host itself, whatever address the hub computed', async () => {
    for (const internal of ['http://127.0.0.1:8081', 'http://10.0.0.2:8081', 'http://[::1]:8081']) {
      const { p, issued } = provisioner('success');
      const req = request();
      req.env.JUPYTERHUB_API_URL = `${internal}/hub/api`;
      req.env.JUPYTERHUB_ACTIVITY_URL = `${internal}/hub/api/users/alice/activity`;
      await p.start(req, ctx().ctx);
      const env = issued[0]?.env ?? {};
      assert.equal(env.JUPYTERHUB_API_URL, 'https://hub.example.org/hub/api', internal);
      assert.equal(
        env.JUPYTERHUB_ACTIVITY_URL,
        'https://hub.example.org/hub/api/users/alice/activity',
        internal,
      );
      for (const [k, v] of Object.entries(env))
        assert.ok(!v.includes(internal.slice(7)), `${k} still names ${internal}`);
    }
  });

  it('TerraformProvisioner (terraform test double): GPU sizes run the CUDA image, CPU sizes the CPU image; the egress policy reaches the stack', async () => {
    const { p } = provisioner('success');
    const gpu = await p.start(request(), ctx().ctx);
    const gpuConfig = readFileSync(join(gpu.ref.workdir as string, 'cdk.tf.json'), 'utf8');
    assert.ok(gpuConfig.includes('ngsci/singleuser:cuda12'), 'a GPU size pulls the CUDA build');
    assert.ok(!gpuConfig.includes('ngsci/singleuser:cpu'), 'and not the CPU image');
    assert.ok(
      gpuConfig.includes('203.0.113.0/24'),
      'NGSCI_TERRAFORM_EGRESS_ALLOW reaches the stack',
    );

    const cpuOffer: Offer = { ...offer, instanceType: 'm6i.xlarge' };
    const cpuSize: Size = {
      ...size,
      id: 'cpu-medium',
      class: 'cpu',
      gpu: null,
      offers: [cpuOffer],
    };
    const cpu = await p.start({ ...request(), size: cpuSize, offer: cpuOffer }, ctx().ctx);
    const cpuConfig = readFileSync(join(cpu.ref.workdir as string, 'cdk.tf.json'), 'utf8');
    assert.ok(cpuConfig.includes('ngsci/singleuser:cpu'), 'a CPU size pulls the CPU image');
    assert.ok(!cpuConfig.includes('cuda12'), 'and not the CUDA build');
  });

  it('TerraformProvisioner (terraform test double): a machine type from the operator’s catalog file reaches the stack; a retired type never reaches terraform', async () => {
    const table = WITH_L40S;
    const { p } = provisioner('success', async () => true, { machineTypes: table });
    const l40s: Offer = { ...offer, instanceType: 'g6e.xlarge' };
    const started = await p.start(
      { ...request(), size: { ...size, id: 'gpu-l40s', offers: [l40s] }, offer: l40s },
      ctx().ctx,
    );
    const config = readFileSync(join(started.ref.workdir as string, 'cdk.tf.json'), 'utf8');
    assert.match(config, /"instance_type": "g6e.xlarge"/, 'the file’s machine is what is applied');

    const retired: Offer = { ...offer, instanceType: 'p3.2xlarge' };
    const v100: Size = { ...size, id: 'gpu-v100', gpu: { model: 'V100', count: 1, memoryGiB: 16 } };
    const before = readdirSync(join(settings.workRoot, 'instances')).length;
    const refused = await p.start({ ...request(), size: v100, offer: retired }, ctx().ctx).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof TerraformProvisionError, 'the start is refused');
    assert.equal(refused.code, 'size_unavailable');
    assert.match(refused.message, /p3.2xlarge: .*a V100 \(Volta\) gets no driver/);
    assert.equal(
      readdirSync(join(settings.workRoot, 'instances')).length,
      before,
      'no stack was synthesized for it',
    );
  });

  it('TerraformProvisioner (terraform test double): a machine whose boot checks failed fails its start at once, saying what failed; a machine that has not reported is not ready even if /api answers', async () => {
    // the machine cannot reach the hub: its report arrives before any timeout could
    const reports: string[] = [];
    const failed = provisioner('success', async () => true, {
      bootStatus: async (id: string) => {
        reports.push(id);
        return { state: 'failed', code: 'hub_unreachable', message: 'curl: (7) Failed to connect' };
      },
      settings: { ...settings, readyTimeoutMs: 60_000 },
    });
    const req = request();
    const started = Date.now();
    const err = await failed.p.start(req, ctx().ctx).catch((e: unknown) => e);
    assert.ok(err instanceof TerraformProvisionError, 'the start fails');
    assert.equal(err.code, 'provision_failed');
    assert.match(
      err.message,
      /cannot reach the hub at https:\/\/hub\.example\.org\/hub\/api \(curl: \(7\)/,
    );
    assert.ok(Date.now() - started < 30_000, 'without waiting for the ready timeout');
    assert.deepEqual(reports, [req.instanceId]);
    assert.deepEqual(failed.probes, [], 'a failed machine is not polled');
    assert.ok(
      existsSync(join(failed.p.instanceWorkdir(req.instanceId), 'terraform.tfstate')),
      'its state stays for the stop job that destroys it',
    );

    // the GPU is not visible in the container
    const noGpu = provisioner('success', async () => true, {
      bootStatus: async () => ({
        state: 'failed',
        code: 'gpu_unavailable',
        message: 'nvidia-smi: not found',
      }),
    });
    const gpuErr = await noGpu.p.start(request(), ctx().ctx).catch((e: unknown) => e);
    assert.ok(gpuErr instanceof TerraformProvisionError, 'the start fails');
    assert.match(gpuErr.message, /GPU is not usable.*nvidia-smi: not found/);

    // /api answers but the machine has not reported: pending until it does, then ready
    let polls = 0;
    const pending = provisioner('success', async () => true, {
      bootStatus: async () => (++polls < 3 ? { state: 'pending' } : { state: 'ready' }),
    });
    const { events, ctx: c } = ctx();
    await pending.p.start(request(), c);
    assert.equal(polls, 3);
    assert.equal(pending.probes.length, 1, '/api is asked only once the boot report says ready');
    assert.ok(
      events.some((e) => /boot checks/.test(e.message ?? '')),
      'the user sees what is awaited',
    );

    // never reported: a ready_timeout that says so
    const silent = provisioner('success', async () => true, {
      bootStatus: async () => ({ state: 'pending' }),
    });
    const timeout = await silent.p.start(request(), ctx().ctx).catch((e: unknown) => e);
    assert.ok(timeout instanceof TerraformProvisionError, 'the start fails');
    assert.equal(timeout.code, 'ready_timeout');
    assert.match(timeout.message, /did not report its boot checks/);
  });

  it('VM-facing URLs must be https unless the development setting allows http; every placed cloud needs its identity certificate', () => {
    const base = {
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      NGSCI_TERRAFORM_STATE: 'local',
      NGSCI_GCP_PROJECT: 'ngsci-test',
      ...IMAGES,
    };
    assert.throws(
      () => loadTerraformSettings({ ...base, NGSCI_TERRAFORM_SERVICE_URL: 'http://h/s' }),
      /NGSCI_TERRAFORM_SERVICE_URL: must be https:\/\/.*NGSCI_ALLOW_HTTP_VM_URLS/,
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
      NGSCI_VM_HUB_URL: 'https://h',
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      NGSCI_GCP_PROJECT: 'ngsci-test',
      ...IMAGES,
      DATABASE_URL: 'postgres://u:p@db/ngsci',
    });
    assert.equal(pg.backend, 'pg');
    assert.throws(
      () =>
        loadTerraformSettings({
          NGSCI_VM_HUB_URL: 'https://h',
          NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
          NGSCI_GCP_PROJECT: 'ngsci-test',
          ...IMAGES,
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
    assert.ok(err instanceof TerraformProvisionError, 'the start fails');
    assert.equal(err.code, 'provision_failed');
    assert.match(err.message, /not found; set NGSCI_TERRAFORM_BINARY/);
  });
});
