/**
 * The secrets scan over an integration run. One stack (a real hub, the spawner-bridge, hub-service
 * on Postgres, with a TERRAFORM TEST DOUBLE standing in for the terraform binary, as in
 * clouds.test.ts: no terraform binary or cloud account here) lives through a cloud launch with
 * the bootstrap exchange and the machine's boot report, agent posts, notices by webhook (one
 * delivery refused, one accepted) and email, admin and bridge reads, a stolen bootstrap token, a
 * stop, and a launch whose provider error echoes the cloud secret key. Then every secret value
 * the run made is searched for in every file of the data dir (the log of the hub, proxy and
 * service, the hub's database, terraform workdirs: configuration, plans, state), in every row of
 * every table of the service's database while the machine runs and at the end (notices,
 * deliveries, events, security events, the pg backend's Terraform state) and in every response
 * body the service gave the test: 0 hits.
 *
 * Places that hold a secret by design are listed in `allowedPlaces` with the reason; nothing else
 * may.
 * The one secret allowed in Terraform's files is a machine's bootstrap token, and only in its own
 * instance's configuration and state (the machine's user-data; docs/security.md: single use, and
 * useless without the machine's signed identity).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { environOf, ROOT, startStack, until, type Stack } from './stack.js';
import {
  checkSecrets,
  databaseSnapshot,
  describeHits,
  scanFiles,
  scanPlaces,
  type Place,
  type Secret,
} from './scan.js';
import { TEST_DOUBLE_aws_identity_signer } from '../../hub-service/src/bootstrap/identity-test-double.js';

const SERVICE_URL = 'https://hub.example.org/services/ngsci';
const signer = TEST_DOUBLE_aws_identity_signer();
/** what the terraform test double's `output` reports as instance_id (testdata/success.state.json) */
const CLOUD_INSTANCE_ID = 'i-0fake5678';
const FAKE_TERRAFORM = join(
  ROOT,
  'hub-service/src/provisioners/terraform/testdata/fake-terraform.mjs',
);
const user = 'researcher';

/** Random values of the shape a cloud account's credentials have; no cloud is ever called. */
const cloudCredentials = {
  AWS_ACCESS_KEY_ID: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
  AWS_SECRET_ACCESS_KEY: randomBytes(30).toString('base64'),
  GOOGLE_CREDENTIALS: JSON.stringify({
    type: 'service_account',
    private_key_id: randomBytes(20).toString('hex'),
  }),
  ARM_CLIENT_SECRET: randomBytes(24).toString('base64url'),
};
/** the part of the Google key that is secret (the JSON around it is not) */
const googleKeyId = (JSON.parse(cloudCredentials.GOOGLE_CREDENTIALS) as { private_key_id: string })
  .private_key_id;
const smtpPassword = `smtp-${randomBytes(16).toString('base64url')}`;
/** a webhook URL carries its token in the path, as Slack's do */
const webhookToken = `T0K3N${randomBytes(16).toString('hex')}`;

const kinds = {
  serviceHubToken: "the service's hub token",
  proxyToken: "the proxy's API token",
  bridgeSecret: 'the bridge secret',
  testAdminToken: "the test harness's hub admin token",
  userToken: "the researcher's hub token",
  adminToken: "the admin's hub token",
  agentCredential: 'the agent credential',
  secretKey: 'NGSCI_SECRET_KEY',
  cookieSecret: "the hub's cookie secret",
  smtpPassword: 'the SMTP password',
  webhookToken: "the webhook URL's token",
  password: (u: string) => `the login password of ${u}`,
  serverSecret: (name: string) => `the server's ${name}`,
  bootstrapToken: (instanceId: string) => `the bootstrap token of ${instanceId}`,
  cloud: (name: string) => `the cloud credential ${name}`,
  /** a link's token in a mail (an address confirmation): the user's alone */
  mailToken: 'a token mailed to the user',
};

/**
 * The places that hold a secret on purpose, and only those kinds. Files are named relative to
 * the data dir, tables `database <schema>.<table> (<when>)`, response bodies `response <route>`.
 * `stateSchemas` maps each instance's Terraform state schema (the pg backend) to the instance.
 */
function allowedPlaces(stateSchemas: Map<string, string>) {
  return (where: string, kind: string): boolean => {
    // the login file: each user's password and the bridge secret, 0600 (scripts/start.mjs)
    if (where === 'local-login.json')
      return kind === kinds.bridgeSecret || kind.startsWith('the login password of ');
    if (where === 'secret-key') return kind === kinds.secretKey;
    // the service's secrets, handed over in a 0600 file: JupyterHub would keep its environment
    // in the hub database (configure_hub's secrets_file)
    if (where === 'service-secrets.json')
      return (
        kind === kinds.bridgeSecret ||
        kind === kinds.secretKey ||
        kind === kinds.smtpPassword ||
        kind.startsWith('the cloud credential ')
      );
    if (where === 'hub/jupyterhub_cookie_secret') return kind === kinds.cookieSecret;
    // a machine's user-data carries its own bootstrap token: its stack's configuration and state
    const file = /^terraform\/instances\/([^/]+)\/(cdk\.tf\.json|terraform\.tfstate)$/.exec(where);
    if (file) return kind === kinds.bootstrapToken(file[1]!);
    const table = /^database (.+)\.states \(/.exec(where);
    const owner = table && stateSchemas.get(table[1]!);
    if (owner) return kind === kinds.bootstrapToken(owner);
    // the exchange exists to hand the proven machine its server's secrets and agent credential
    if (where === 'response POST /bootstrap')
      return kind === kinds.agentCredential || kind.startsWith("the server's ");
    return false;
  };
}

interface Inst {
  id: string;
  state: string;
  errorCode: string | null;
}

describe('secrets scan over an integration run (terraform test double stands in for the binary)', () => {
  let stack: Stack;
  let token: string;
  let adminToken: string;
  let serviceEnv: Record<string, string>;
  let proxyEnv: Record<string, string>;
  let machine: Server;
  let hooks: Server;
  let smtp: SMTPServer;
  const booted = new Set<string>();
  const hookPosts: string[] = [];
  const mails: string[] = [];
  /** every response body the service gave this test, by route */
  const bodies: Place[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'ngsci-scan-'));

  before(async () => {
    machine = createServer((req, res) => {
      const base = (req.url ?? '').replace(/api$/, '');
      if (!booted.has(base)) {
        res.statusCode = 503;
        res.end('booting');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ version: '5.0.0' }));
    });
    await new Promise<void>((r) => machine.listen(0, '127.0.0.1', r));
    // the receiver refuses the first post, so a failed delivery is recorded too
    hooks = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        hookPosts.push(raw);
        res.writeHead(hookPosts.length === 1 ? 500 : 200).end();
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth(auth, _session, cb) {
        if (auth.password === smtpPassword) cb(null, { user: auth.username });
        else cb(new Error('wrong password'));
      },
      onData(stream, _session, cb) {
        let data = '';
        stream.on('data', (d: Buffer) => (data += d.toString()));
        stream.on('end', () => {
          mails.push(data);
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    const smtpPort = (smtp.server.address() as AddressInfo).port;

    const wrapper = join(scratch, 'terraform-test-double');
    // FAKE_TERRAFORM_PG: the double keeps a copy of each state in Postgres, as the pg backend does
    writeFileSync(
      wrapper,
      `#!/bin/sh\nFAKE_TERRAFORM_ADDRESS=127.0.0.1 FAKE_TERRAFORM_PG=1 FAKE_TERRAFORM_PG_CREATE_MS=0 FAKE_TERRAFORM_SCENARIO_FILE='${join(scratch, 'scenario')}' exec '${process.execPath}' '${FAKE_TERRAFORM}' "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    stack = await startStack({
      database: 'postgres',
      env: {
        ...cloudCredentials,
        NGSCI_PROVISIONER: 'terraform',
        NGSCI_TERRAFORM_BINARY: wrapper,
        NGSCI_TERRAFORM_SERVICE_URL: SERVICE_URL,
        NGSCI_IDENTITY_AWS_CERT: signer.certificate,
        NGSCI_ALLOW_HTTP_VM_URLS: 'true',
        NGSCI_TERRAFORM_HUB_CIDR: '127.0.0.1/32',
        NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
        NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
        NGSCI_TERRAFORM_SINGLEUSER_PORT: String((machine.address() as AddressInfo).port),
        NGSCI_AWS_VPC_ID: 'vpc-0test',
        NGSCI_AWS_SUBNET_ID: 'subnet-0test',
        NGSCI_WEBHOOK_ALLOW: '127.0.0.1',
        NGSCI_SMTP_URL: `smtp://ngsci:${smtpPassword}@127.0.0.1:${smtpPort}?starttls=false`,
        NGSCI_SMTP_FROM: 'ngsci <hub@example.org>',
        NGSCI_HUB_EXTRA_CONFIG: JSON.stringify({ 'Spawner.poll_interval': 2 }),
      },
    });
    // the secrets the hub handed its children: the service's hub token, the proxy's API token
    serviceEnv = processEnv(
      'the service process',
      (argv, env) =>
        argv.some((a) => a.endsWith('hub-service/dist/index.js')) &&
        env.NGSCI_DATA_DIR === stack.dataDir,
    );
    // the hub keeps a service's environment in its database: the secrets come in a file instead
    assert.ok(serviceEnv.NGSCI_SECRETS_FILE, 'the service gets its secrets in a file');
    for (const k of [
      'NGSCI_BRIDGE_SECRET',
      'NGSCI_SECRET_KEY',
      'NGSCI_SMTP_URL',
      'AWS_SECRET_ACCESS_KEY',
    ])
      assert.equal(serviceEnv[k], undefined, `${k} is not in the service's environment`);
    proxyEnv = processEnv('the proxy process', (argv) =>
      argv.some((a, i) => a === '--api-port' && argv[i + 1] === String(stack.ports.proxyApi)),
    );
    token = await stack.userToken(user);
    adminToken = await stack.userToken(stack.users.admin);
  });

  after(async () => {
    await stack?.stop();
    machine?.close();
    hooks?.close();
    await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A call to the service, its body recorded under the route for the scan. */
  async function call(
    route: string,
    path: string,
    credential: { token: string } | { bearer: string } | null,
    init: RequestInit = {},
  ): Promise<{ status: number; text: string; json: <T>() => T }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (credential)
      headers.authorization =
        'token' in credential ? `token ${credential.token}` : `Bearer ${credential.bearer}`;
    const res = await fetch(`${stack.url}/services/ngsci/api/v1${path}`, { ...init, headers });
    const text = await res.text();
    bodies.push({ where: `response ${route}`, content: text });
    return { status: res.status, text, json: <T>() => JSON.parse(text) as T };
  }

  const instance = async (server: string) =>
    (await call('GET /instances/{server}', `/instances/${server}`, { token })).json<Inst>();
  const waitFor = (server: string, pred: (i: Inst) => boolean, what: string) =>
    until(
      async () => {
        const i = await instance(server);
        return pred(i) ? i : null;
      },
      what,
      90,
      stack,
    );
  const workdir = (id: string) => join(stack.dataDir, 'terraform', 'instances', id);
  const calls = (id: string) => {
    const f = join(workdir(id), 'fake-terraform.calls.jsonl');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };

  /** The bootstrap token in an instance's synthesized user-data, once it is there. */
  const bootstrapTokenOf = (id: string): string | null => {
    const file = join(workdir(id), 'cdk.tf.json');
    if (!existsSync(file)) return null;
    return (
      /NGSCI_BOOTSTRAP_TOKEN=(ngb_[A-Za-z0-9_-]+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? null
    );
  };

  test('the scanner reports a planted secret by place and kind, never by value, also base64-encoded', () => {
    const dir = join(scratch, 'planted');
    mkdirSync(join(dir, 'deep'), { recursive: true });
    const secret = { kind: 'a planted token', value: randomBytes(20).toString('hex') };
    writeFileSync(join(dir, 'clean.log'), 'nothing here\n');
    writeFileSync(join(dir, 'deep', 'leak.log'), `line\nAuthorization: token ${secret.value}\n`);
    writeFileSync(
      join(dir, 'user-data.b64'),
      Buffer.from(`#!/bin/sh\nexport T=${secret.value}\n`).toString('base64'),
    );
    writeFileSync(join(dir, 'allowed.json'), secret.value);
    const hits = scanFiles(dir, [secret], (where) => where === 'allowed.json');
    assert.deepEqual(
      hits.map((h) => h.where).sort(),
      ['deep/leak.log', 'user-data.b64'],
      'found where it was planted, encoded too; not in the allowed place',
    );
    assert.ok(hits.every((h) => h.kind === 'a planted token'));
    assert.ok(!describeHits(hits).includes(secret.value), 'the report names no value');
    assert.throws(() => checkSecrets([{ kind: 'an empty variable', value: '' }]), /empty variable/);
  });

  test('after a whole run, no secret the run created is in a log, a workdir, a state, a database row or a response', async () => {
    // notices go to a webhook whose URL carries a token, and by email through an SMTP login
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/services/${webhookToken}`;
    const prefs = await call(
      'PUT /notifications/preferences',
      '/notifications/preferences',
      { token },
      {
        method: 'PUT',
        body: JSON.stringify({
          webhookUrl: hookUrl,
          email: 'researcher@example.org',
          channels: { message: ['jupyterlab', 'email', 'webhook'] },
        }),
      },
    );
    assert.equal(prefs.status, 200, prefs.text);

    // a cloud launch: the machine boots, trades its bootstrap token and proof, reports ready
    const launch = await call(
      'POST /instances',
      '/instances',
      { token },
      {
        method: 'POST',
        body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws' }),
      },
    );
    assert.equal(launch.status, 202, launch.text);
    const { id } = await waitFor('default', (i) => Boolean(i.id), 'the instance row');
    const bootstrapToken = await until(
      async () => bootstrapTokenOf(id),
      'the machine stack with its user-data',
      90,
      stack,
    );
    const answer = await until(
      async () => {
        const res = await call(
          'POST /bootstrap',
          '/bootstrap',
          { bearer: bootstrapToken },
          {
            method: 'POST',
            body: JSON.stringify({ instanceId: id, identity: signer.prove(CLOUD_INSTANCE_ID) }),
          },
        );
        if (res.status === 503) return null;
        assert.equal(res.status, 200, res.text);
        return res.json<{ env: Record<string, string>; agentToken: string }>();
      },
      'the bootstrap exchange',
      90,
      stack,
    );
    const agent = { bearer: answer.agentToken };
    const boot = await call('POST /agent/boot', '/agent/boot', agent, {
      method: 'POST',
      body: JSON.stringify({ stage: 'ready' }),
    });
    assert.equal(boot.status, 202, boot.text);
    booted.add(`/user/${user}/`);
    await waitFor('default', (i) => i.state === 'running', 'the aws instance to run');

    // the agent reports; a thief with the spent token and another machine's proof is refused
    for (const [route, body] of [
      [
        '/agent/gpu',
        {
          gpus: [
            {
              index: 0,
              name: 'Tesla T4',
              utilizationPercent: 40,
              memoryUsedMiB: 1024,
              memoryTotalMiB: 15360,
            },
          ],
        },
      ],
      ['/agent/kernels', { total: 1, busy: 0 }],
    ] as const) {
      const res = await call(`POST ${route}`, route, agent, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 202, res.text);
    }
    const thief = await call(
      'POST /bootstrap (thief)',
      '/bootstrap',
      { bearer: bootstrapToken },
      {
        method: 'POST',
        body: JSON.stringify({ identity: signer.prove('i-0someoneelse') }),
      },
    );
    assert.equal(thief.status, 401);

    // two notices: the webhook refuses the first, takes the second; mail goes out
    for (const message of ['first', 'second']) {
      const res = await call(
        'POST /notify',
        '/notify',
        { token },
        {
          method: 'POST',
          body: JSON.stringify({ message: `training run ${message} done` }),
        },
      );
      assert.equal(res.status, 202, res.text);
      await until(
        async () => hookPosts.length >= (message === 'first' ? 1 : 2),
        'the webhook post',
        30,
        stack,
      );
    }

    // the service logged in to the mail server (a notice, or the address's confirmation)
    await until(async () => mails.length >= 1, 'a mail', 30, stack);

    // what users, admins and the spawner read
    for (const [route, path, who] of [
      ['GET /me', '/me', token],
      ['GET /instances', '/instances', token],
      ['GET /instances/{server}/gpu', '/instances/default/gpu', token],
      ['GET /usage', '/usage', token],
      ['GET /budget', '/budget', token],
      ['GET /notifications', '/notifications', token],
      ['GET /notifications/preferences', '/notifications/preferences', token],
      ['GET /admin/instances', '/admin/instances', adminToken],
      ['GET /admin/users', '/admin/users', adminToken],
      ['GET /admin/security-events', '/admin/security-events', adminToken],
      ['GET /admin/meter', '/admin/meter', adminToken],
    ] as const) {
      const res = await call(route, path, { token: who });
      assert.equal(res.status, 200, `${route}: ${res.text}`);
    }
    const bridge = await call('GET /bridge/instances/{id}', `/bridge/instances/${id}`, {
      bearer: stack.bridgeSecret,
    });
    assert.equal(bridge.status, 200, bridge.text);
    const events = await call(
      'GET /bridge/instances/{id}/events',
      `/bridge/instances/${id}/events?after=0`,
      { bearer: stack.bridgeSecret },
    );
    assert.equal(events.status, 200, events.text);

    // the machine's Terraform state lives in the database until the destroy drops its schema
    const whileRunning = await databaseSnapshot(stack.databaseUrl!, 'while running');

    // stop: terraform destroys the machine
    const stop = await call(
      'POST /instances/{server}/stop',
      '/instances/default/stop',
      { token },
      {
        method: 'POST',
      },
    );
    assert.equal(stop.status, 202, stop.text);
    await waitFor('default', (i) => i.state === 'stopped', 'stopped');

    // a provider whose error echoes the secret key: the failure the user sees must be scrubbed
    writeFileSync(join(scratch, 'scenario'), 'instance_provider_error');
    const broken = await call(
      'POST /instances (provider error)',
      '/instances',
      { token },
      {
        method: 'POST',
        body: JSON.stringify({ size: 'gpu-t4', cloud: 'aws', server: 'broken' }),
      },
    );
    assert.ok([202, 502].includes(broken.status), broken.text);
    const failed = await waitFor('broken', (i) => i.state === 'failed', 'the failed start');
    assert.equal(failed.errorCode, 'provision_failed');
    await until(async () => calls(failed.id).includes('"destroy"'), 'the destroy', 30, stack);
    rmSync(join(scratch, 'scenario'), { force: true });

    // every secret the run made
    const serverSecrets = Object.entries(answer.env)
      .filter(([k, v]) => /TOKEN|SECRET|PASSWORD|KEY/.test(k) && v.length >= 12)
      .map(([k, v]) => ({ kind: kinds.serverSecret(k), value: v }));
    assert.ok(
      serverSecrets.some((s) => s.kind === kinds.serverSecret('JUPYTERHUB_API_TOKEN')),
      "the server's hub token came with the exchange",
    );
    const instanceIds = readdirSync(join(stack.dataDir, 'terraform', 'instances'));
    const bootstrapTokens = instanceIds
      .map((d) => ({ id: d, value: bootstrapTokenOf(d) }))
      .filter((t): t is { id: string; value: string } => t.value !== null)
      .map((t) => ({ kind: kinds.bootstrapToken(t.id), value: t.value }));
    assert.equal(bootstrapTokens.length, 2, 'both machines had user-data with a token');
    const stateSchemas = new Map(
      instanceIds.map((d) => {
        const tf = JSON.parse(readFileSync(join(workdir(d), 'cdk.tf.json'), 'utf8')) as {
          terraform: { backend: { pg: { schema_name: string } } };
        };
        return [tf.terraform.backend.pg.schema_name, d];
      }),
    );
    const allowed = allowedPlaces(stateSchemas);
    // quoted-printable mail bodies: soft line breaks joined, `=3D` back to `=`
    const mailText = mails.map((m) => m.replace(/=\r?\n/g, '').replace(/=3D/g, '='));
    const mailed = mailText.flatMap((m) =>
      [...m.matchAll(/[?&]token=([A-Za-z0-9_-]{16,})/g)].map((x) => ({
        kind: kinds.mailToken,
        value: x[1]!,
      })),
    );
    const secrets: Secret[] = [
      { kind: kinds.serviceHubToken, value: serviceEnv.JUPYTERHUB_API_TOKEN ?? '' },
      { kind: kinds.proxyToken, value: proxyEnv.CONFIGPROXY_AUTH_TOKEN ?? '' },
      { kind: kinds.bridgeSecret, value: stack.bridgeSecret },
      { kind: kinds.testAdminToken, value: stack.adminToken },
      { kind: kinds.userToken, value: token },
      { kind: kinds.adminToken, value: adminToken },
      { kind: kinds.agentCredential, value: answer.agentToken },
      {
        kind: kinds.secretKey,
        value: readFileSync(join(stack.dataDir, 'secret-key'), 'utf8').trim(),
      },
      {
        kind: kinds.cookieSecret,
        value: readFileSync(join(stack.dataDir, 'hub', 'jupyterhub_cookie_secret'), 'utf8').trim(),
      },
      { kind: kinds.smtpPassword, value: smtpPassword },
      { kind: kinds.webhookToken, value: webhookToken },
      ...Object.entries(stack.passwords).map(([u, value]) => ({ kind: kinds.password(u), value })),
      ...serverSecrets,
      ...bootstrapTokens,
      { kind: kinds.cloud('AWS_ACCESS_KEY_ID'), value: cloudCredentials.AWS_ACCESS_KEY_ID },
      { kind: kinds.cloud('AWS_SECRET_ACCESS_KEY'), value: cloudCredentials.AWS_SECRET_ACCESS_KEY },
      { kind: kinds.cloud('GOOGLE_CREDENTIALS'), value: googleKeyId },
      { kind: kinds.cloud('ARM_CLIENT_SECRET'), value: cloudCredentials.ARM_CLIENT_SECRET },
      ...mailed,
    ];
    checkSecrets(secrets);

    // ... searched for everywhere the run left something
    const atEnd = await databaseSnapshot(stack.databaseUrl!, 'at the end');
    const places = [...whileRunning, ...atEnd, ...bodies];
    const hits = [
      ...scanFiles(stack.dataDir, secrets, allowed),
      ...scanPlaces(places, secrets, allowed),
    ];
    assert.equal(hits.length, 0, `secrets where they must never be:\n${describeHits(hits)}`);

    // the places scanned are the ones the secrets went through
    const scanned = places.map((p) => p.where);
    const [machineSchema] = [...stateSchemas].find(([, owner]) => owner === id)!;
    for (const table of [
      `${machineSchema}.states (while running)`,
      'public.notification_deliveries (at the end)',
      'public.security_events (at the end)',
    ])
      assert.ok(scanned.includes(`database ${table}`), `${table} was scanned`);
    // the provider's error carried the secret key through the log, the events, the user's notice
    // and the answers: the scan searched the paths a leak would take, and found it scrubbed
    const echoed = 'request signed with AWS_SECRET_ACCESS_KEY=';
    assert.ok(readFileSync(stack.logFile, 'utf8').includes(echoed), 'the log');
    for (const where of [
      'database public.instance_events (at the end)',
      'database public.notifications (at the end)',
      'response POST /instances (provider error)',
    ])
      assert.ok(
        places.some((p) => p.where === where && String(p.content).includes(echoed)),
        where,
      );
  });
});

/** The environment of the one process that `matches` its command line and environment. */
function processEnv(
  what: string,
  matches: (argv: string[], env: Record<string, string>) => boolean,
): Record<string, string> {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const env = environOf(Number(d));
      if (matches(argv, env)) return env;
    } catch {
      // a process that ended meanwhile, or another account's
    }
  }
  throw new Error(`${what} was not found`);
}
