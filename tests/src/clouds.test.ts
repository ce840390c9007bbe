/**
 * Cloud choice end to end, with a TERRAFORM TEST DOUBLE standing in for the terraform binary:
 * there is no terraform binary and no cloud account on the CI machine. Everything else is real:
 * JupyterHub with the project's config, the spawner-bridge, hub-service on Postgres (so Terraform
 * state uses the pg backend), cdktf synthesis into the instance's workdir, the executor driving
 * init/plan/apply/output/destroy with `-json` parsing, the readiness check, the bootstrap exchange
 * and the proxy. The double reports 127.0.0.1 as the machine's address, and this file runs the
 * "machine": a tiny HTTP server on the single-user port that answers only once this file has
 * booted it, i.e. redeemed its bootstrap token with a cloud identity proof. The proofs come from
 * TEST DOUBLES of the clouds' signers whose test keys the hub is configured to trust (no real
 * metadata service is reachable here). The machine records every request it receives, so the
 * test can show the service never calls it with a credential of its own. The real path is one
 * setting away: NGSCI_TERRAFORM_BINARY=terraform (or tofu) with cloud credentials and the clouds'
 * real identity certificates (docs/clouds.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { ROOT, startStack, until, type Stack } from './stack.js';
import {
  TEST_DOUBLE_aws_identity_signer,
  TEST_DOUBLE_azure_identity_signer,
  TEST_DOUBLE_gcp_identity_signer,
} from '../../hub-service/src/bootstrap/identity-test-double.js';
import { azureNonceFor } from '../../hub-service/src/bootstrap/identity.js';

const SERVICE_URL = 'https://hub.example.org/services/ngsci';
const signers = {
  aws: TEST_DOUBLE_aws_identity_signer(),
  gcp: TEST_DOUBLE_gcp_identity_signer(),
  azure: TEST_DOUBLE_azure_identity_signer(),
};
/** what the terraform test double's `output` reports as instance_id (testdata/success.state.json) */
const CLOUD_INSTANCE_ID = 'i-0fake5678';

const FAKE_TERRAFORM = join(
  ROOT,
  'hub-service/src/provisioners/terraform/testdata/fake-terraform.mjs',
);

interface Inst {
  id: string;
  state: string;
  cloud: string;
  size: string;
  url: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}
interface Ev {
  id: number;
  state: string;
  progress: number;
  message: string;
}
interface Call {
  argv?: string[];
  envKeys?: string[];
}

describe('cloud instances through terraform (terraform test double stands in for the binary)', () => {
  let stack: Stack;
  let token: string;
  let machine: Server;
  let machinePort = 0;
  const machineHits: string[] = [];
  const machineRequests: { url: string; headers: Record<string, string | string[] | undefined> }[] =
    [];
  /** base URLs of the servers whose machine has bootstrapped (before that, the "VM" is booting) */
  const booted = new Set<string>();
  const scratch = mkdtempSync(join(tmpdir(), 'ngsci-clouds-'));
  const user = 'researcher';

  before(async () => {
    // the "machine" the double's outputs point at: answers the readiness check and the proxy
    machine = createServer((req, res) => {
      machineHits.push(req.url ?? '');
      machineRequests.push({ url: req.url ?? '', headers: { ...req.headers } });
      const base = (req.url ?? '').replace(/api$/, '');
      if (!booted.has(base)) {
        res.statusCode = 503;
        res.end('booting');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ version: '5.0.0', fake: 'single-user server of a terraform test double' }),
      );
    });
    await new Promise<void>((r) => machine.listen(0, '127.0.0.1', r));
    machinePort = (machine.address() as AddressInfo).port;
    // NGSCI_TERRAFORM_BINARY names this wrapper exactly as it would name `terraform`
    const wrapper = join(scratch, 'terraform-test-double');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nFAKE_TERRAFORM_ADDRESS=127.0.0.1 FAKE_TERRAFORM_SCENARIO_FILE='${join(scratch, 'scenario')}' exec '${process.execPath}' '${FAKE_TERRAFORM}' "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    stack = await startStack({
      database: 'postgres',
      env: {
        NGSCI_PROVISIONER: 'terraform',
        NGSCI_TERRAFORM_BINARY: wrapper,
        NGSCI_TERRAFORM_SERVICE_URL: SERVICE_URL,
        // the clouds' identity certificates: the test doubles' keys stand in for them
        NGSCI_IDENTITY_AWS_CERT: signers.aws.certificate,
        NGSCI_IDENTITY_GCP_CERTS: signers.gcp.jwks,
        NGSCI_IDENTITY_AZURE_CERT: signers.azure.caCertificate,
        // the test hub has no TLS, so the hub API URL the machine is given is http
        NGSCI_ALLOW_HTTP_VM_URLS: 'true',
        NGSCI_TERRAFORM_HUB_CIDR: '127.0.0.1/32',
        NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
        NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
        NGSCI_TERRAFORM_SINGLEUSER_PORT: String(machinePort),
        NGSCI_AWS_VPC_ID: 'vpc-0test',
        NGSCI_AWS_SUBNET_ID: 'subnet-0test',
        NGSCI_GCP_PROJECT: 'ngsci-test-project',
        NGSCI_AZURE_RESOURCE_GROUP: 'ngsci-test-rg',
        NGSCI_AZURE_SUBNET_ID:
          '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ngsci-test-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s',
        NGSCI_AZURE_ADMIN_SSH_KEY:
          'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0000000000000000000000 test',
        NGSCI_HUB_EXTRA_CONFIG: JSON.stringify({ 'Spawner.poll_interval': 2 }),
      },
    });
    token = await stack.userToken(user);
  });

  after(async () => {
    await stack?.stop();
    machine?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const instance = async (server: string) =>
    (await (await stack.api(`/instances/${server}`, token)).json()) as Inst;
  const waitFor = (server: string, pred: (i: Inst) => boolean, what: string, seconds = 90) =>
    until(
      async () => {
        const i = await instance(server);
        return pred(i) ? i : null;
      },
      what,
      seconds,
      stack,
    );
  const workdir = (id: string) => join(stack.dataDir, 'terraform', 'instances', id);
  const calls = (dir: string): Call[] =>
    existsSync(join(dir, 'fake-terraform.calls.jsonl'))
      ? readFileSync(join(dir, 'fake-terraform.calls.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Call)
      : [];

  /**
   * The simulated VM boot: once the service has synthesized the machine's stack, read the
   * bootstrap token from its user-data, fetch the cloud's identity proof (a test double's) and
   * redeem it, retrying while the service answers 503 (terraform has not reported the machine
   * yet), as bootstrap.sh does. Then the machine's server answers.
   */
  async function bootMachine(
    server: string,
    cloud: 'aws' | 'gcp' | 'azure',
    baseUrl: string,
  ): Promise<{ id: string; token: string; env: Record<string, string>; agentToken: string }> {
    const { id } = await waitFor(server, (i) => Boolean(i.id), 'the instance row');
    const token = await until(
      async () => {
        const file = join(workdir(id), 'cdk.tf.json');
        if (!existsSync(file)) return null;
        const text = readFileSync(file, 'utf8');
        // Azure carries user-data base64-encoded in custom_data
        const customData = /"custom_data": "([A-Za-z0-9+/=]+)"/.exec(text)?.[1];
        const userData = customData ? Buffer.from(customData, 'base64').toString('utf8') : text;
        return /NGSCI_BOOTSTRAP_TOKEN=(ngb_[A-Za-z0-9_-]+)/.exec(userData)?.[1] ?? null;
      },
      'the machine stack with its user-data',
      90,
      stack,
    );
    const proof = () =>
      cloud === 'aws'
        ? signers.aws.prove(CLOUD_INSTANCE_ID)
        : cloud === 'gcp'
          ? signers.gcp.prove(CLOUD_INSTANCE_ID, SERVICE_URL)
          : signers.azure.prove(CLOUD_INSTANCE_ID, azureNonceFor(token));
    const answer = await until(
      async () => {
        const res = await fetch(`${stack.url}/services/ngsci/api/v1/bootstrap`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ instanceId: id, identity: proof() }),
        });
        if (res.status === 503) {
          assert.ok(res.headers.get('retry-after'), 'a 503 says when to come back');
          return null;
        }
        assert.equal(res.status, 200, await res.clone().text());
        return (await res.json()) as { env: Record<string, string>; agentToken: string };
      },
      'the bootstrap exchange',
      90,
      stack,
    );
    // the machine's own checks (hub reachable, GPU in the container, agent present) passed
    const report = await fetch(`${stack.url}/services/ngsci/api/v1/agent/boot`, {
      method: 'POST',
      headers: { authorization: `Bearer ${answer.agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stage: 'ready' }),
    });
    assert.equal(report.status, 202, await report.clone().text());
    booted.add(baseUrl);
    return { id, token, ...answer };
  }

  /** The server's events from the SSE stream, until `done` says enough. */
  async function events(server: string, done: (e: Ev[]) => boolean): Promise<Ev[]> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 20_000);
    const seen: Ev[] = [];
    try {
      const res = await stack.api(`/instances/${server}/events?after=0`, token, {
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (!/^event: instance$/m.test(block)) continue;
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data) seen.push(JSON.parse(data) as Ev);
        }
        if (done(seen)) break;
      }
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
    return seen;
  }

  test('aws: the user chooses aws; the service synthesizes the AWS stack, drives terraform to running, the machine bootstraps once, stop destroys', async () => {
    const res = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws' }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const boot = await bootMachine('default', 'aws', `/user/${user}/`);
    const running = await waitFor(
      'default',
      (i) => i.state === 'running' || i.state === 'failed',
      'the aws instance to run',
    );
    assert.equal(running.state, 'running', JSON.stringify(running));
    assert.equal(running.cloud, 'aws');

    // the synthesized AWS stack, in the instance's own workdir
    const dir = workdir(running.id);
    const config = readFileSync(join(dir, 'cdk.tf.json'), 'utf8');
    const tf = JSON.parse(config) as {
      resource: Record<string, Record<string, Record<string, unknown>>>;
      terraform: { backend: Record<string, unknown> };
    };
    const ec2 = Object.values(tf.resource.aws_instance ?? {})[0];
    assert.equal(ec2?.instance_type, 'g4dn.xlarge');
    assert.ok(
      tf.terraform.backend.pg,
      'state in the pg backend, because the service uses Postgres',
    );
    assert.ok(
      !config.includes(stack.databaseUrl ?? '\u0000'),
      'the connection string is not in the configuration',
    );

    // terraform ran init, plan, apply, output; with a sanitized environment (names only are logged)
    const ran = calls(dir);
    assert.deepEqual(ran.map((c) => c.argv?.[0]).filter(Boolean), [
      'init',
      'plan',
      'apply',
      'output',
    ]);
    const envKeys = ran[0]?.envKeys ?? [];
    assert.ok(envKeys.includes('PG_CONN_STR'), 'the pg backend gets its connection string');
    for (const k of ['DATABASE_URL', 'JUPYTERHUB_API_TOKEN', 'NGSCI_BRIDGE_SECRET'])
      assert.ok(!envKeys.includes(k), `${k} is kept from terraform`);

    // the machine traded its single-use token (from its user-data) and its identity proof for
    // the environment and the agent's credential; neither is anywhere terraform can see
    const bootstrapToken = boot.token;
    assert.equal(boot.id, running.id);
    assert.ok(config.includes(bootstrapToken), 'user-data carries the bootstrap token');
    const { env, agentToken } = boot;
    assert.match(agentToken, /^ngsa_/, 'the agent credential comes with the environment');
    assert.ok(!Object.values(env).includes(agentToken), "not in the server's environment");
    const hubToken = env.JUPYTERHUB_API_TOKEN;
    assert.ok(hubToken && hubToken.length >= 16, 'the environment holds the server’s hub token');
    assert.equal(env.JUPYTERHUB_SERVICE_URL, `http://0.0.0.0:${machinePort}/user/${user}/`);
    for (const where of [
      config,
      readFileSync(join(dir, 'terraform.tfstate'), 'utf8'),
      readFileSync(stack.logFile, 'utf8'),
    ]) {
      assert.ok(
        !where.includes(hubToken) && !where.includes(agentToken),
        'neither the hub token nor the agent credential is in terraform configuration, state or the log',
      );
    }
    // a retry by the same proven machine (a lost response) gets the same answer; anyone else,
    // and a caller without a proof, is refused
    const retry = await fetch(`${stack.url}/services/ngsci/api/v1/bootstrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bootstrapToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ identity: signers.aws.prove(CLOUD_INSTANCE_ID) }),
    });
    assert.equal(retry.status, 200);
    assert.equal(((await retry.json()) as { agentToken: string }).agentToken, agentToken);
    const thief = await fetch(`${stack.url}/services/ngsci/api/v1/bootstrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bootstrapToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ identity: signers.aws.prove('i-0someoneelse') }),
    });
    assert.equal(thief.status, 401);
    assert.equal(((await thief.json()) as { code: string }).code, 'identity_refused');
    const replay = await fetch(`${stack.url}/services/ngsci/api/v1/bootstrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bootstrapToken}` },
    });
    assert.equal(replay.status, 401);
    assert.equal(((await replay.json()) as { code: string }).code, 'identity_refused');
    // admins see the refused attempts as security events (read from the service's database)
    const sql = postgres(stack.databaseUrl ?? '', { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ kind: string; severity: string; reason: string }[]>`
        select kind, severity, details->>'reason' as reason from security_events
        where instance_id = ${running.id} and kind in ('identity_refused', 'bootstrap_refused')
        order by id`;
      assert.deepEqual(
        rows.map((r) => [r.kind, r.severity, r.reason]),
        [
          ['identity_refused', 'critical', 'wrong_machine'],
          ['identity_refused', 'critical', 'missing'],
        ],
      );
    } finally {
      await sql.end();
    }

    // the progress bar: terraform's -json lines as events, in order, ending at running
    const evs = await events('default', (e) => e.some((x) => x.state === 'running'));
    const messages = evs.map((e) => e.message);
    assert.ok(
      messages.some((m) => /aws_instance\.instance_machine_\w+: Creating\.\.\./.test(m)),
      messages.join('\n'),
    );
    assert.ok(messages.some((m) => /Apply complete!/.test(m)));
    const provisioning = evs.filter((e) => e.state === 'provisioning').map((e) => e.progress);
    assert.deepEqual(
      provisioning,
      [...provisioning].sort((a, b) => a - b),
      'progress never goes back',
    );
    assert.ok(
      machineHits.includes(`/user/${user}/api`),
      'the readiness check asked the machine itself',
    );

    // the hub routes the user to the machine
    const viaProxy = await fetch(`${stack.url}/user/${user}/api`, {
      headers: { authorization: `token ${token}` },
    });
    assert.equal(viaProxy.status, 200);
    assert.match(await viaProxy.text(), /terraform test double/);

    // the service never called the machine with a credential: its readiness and health checks
    // carry none, and the only credential that ever reached the machine is the user's own token
    // on the user's own request through the proxy
    const forbidden = [stack.bridgeSecret, stack.adminToken, hubToken, agentToken, bootstrapToken];
    assert.ok(machineRequests.length >= 2);
    for (const r of machineRequests) {
      const auth = r.headers.authorization;
      assert.ok(auth === undefined || auth === `token ${token}`, `${r.url}: authorization ${auth}`);
      for (const [name, value] of Object.entries(r.headers))
        for (const secret of forbidden)
          assert.ok(!String(value).includes(secret), `${r.url}: a secret in the ${name} header`);
    }
    assert.ok(
      machineRequests.some(
        (r) => r.url === `/user/${user}/api` && r.headers.authorization === undefined,
      ),
      'the readiness check asked the machine without any credential',
    );

    // stop = destroy of the instance stack; the home disk's stack stays
    const stop = await stack.api('/instances/default/stop', token, { method: 'POST' });
    assert.equal(stop.status, 202);
    await waitFor('default', (i) => i.state === 'stopped', 'stopped');
    assert.ok(calls(dir).some((c) => c.argv?.[0] === 'destroy'));
    const state = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
      resources: unknown[];
    };
    assert.equal(state.resources.length, 0, 'nothing left running');
  });

  for (const [cloud, server, check] of [
    [
      'gcp',
      'ongcp',
      (tf: string) =>
        /"machine_type": "n1-standard-4"/.test(tf) && /"type": "nvidia-tesla-t4"/.test(tf),
    ],
    ['azure', 'onazure', (tf: string) => /"size": "Standard_NC4as_T4_v3"/.test(tf)],
  ] as const) {
    test(`${cloud}: the same lifecycle through the terraform test double, with the ${cloud} stack`, async () => {
      const res = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'gpu-t4', cloud, server }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const boot = await bootMachine(server, cloud, `/user/${user}/${server}/`);
      assert.match(boot.agentToken, /^ngsa_/);
      const running = await waitFor(
        server,
        (i) => i.state === 'running' || i.state === 'failed',
        `the ${cloud} instance to run`,
      );
      assert.equal(running.state, 'running', JSON.stringify(running));
      const config = readFileSync(join(workdir(running.id), 'cdk.tf.json'), 'utf8');
      assert.ok(check(config), `the ${cloud} machine type in the stack`);
      assert.ok(!/JUPYTERHUB_API_TOKEN/.test(config));
      await stack.api(`/instances/${server}/stop`, token, { method: 'POST' });
      await waitFor(server, (i) => i.state === 'stopped', 'stopped');
      assert.ok(calls(workdir(running.id)).some((c) => c.argv?.[0] === 'destroy'));
    });
  }

  test('a provider error in the machine apply fails the start with provision_failed, and what the apply made is destroyed', async () => {
    writeFileSync(join(scratch, 'scenario'), 'instance_provider_error');
    try {
      const res = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', server: 'nocapacity' }),
      });
      // the double fails fast, so the hub may already answer the launch with the failure
      if (res.status !== 202) {
        assert.equal(res.status, 502);
        assert.equal(((await res.json()) as { code: string }).code, 'provision_failed');
      }
      const failed = await waitFor(
        'nocapacity',
        (i) => i.state === 'failed' || i.state === 'running',
        'the start to end',
      );
      assert.equal(failed.state, 'failed');
      assert.equal(failed.errorCode, 'provision_failed');
      assert.match(failed.errorMessage ?? '', /InsufficientInstanceCapacity/);
      const dir = workdir(failed.id);
      await until(
        async () => calls(dir).some((c) => c.argv?.[0] === 'destroy'),
        'the destroy after the failed start',
        30,
        stack,
      );
      await until(
        async () => {
          const state = JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')) as {
            resources: unknown[];
          };
          return state.resources.length === 0;
        },
        'no resources left',
        30,
        stack,
      );
    } finally {
      rmSync(join(scratch, 'scenario'), { force: true });
    }
  });
});
