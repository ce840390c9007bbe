/**
 * The machine's side of the bootstrap exchange, run for real: the bootstrap.sh and
 * bootstrap-json.py that user-data installs, executed with bash, curl and python3 in a scratch
 * root, against a TEST DOUBLE of each cloud's metadata service and a TEST DOUBLE of hub-service
 * (both tiny HTTP servers in this file; no cloud is reachable from CI). It checks what the
 * machine sends (the identity proof, the token) and what it keeps where (the agent's credential
 * in a root-only file, never in the server's environment).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { renderUserData, type CloudInitOptions } from './cloud-init.js';
import type { Cloud } from './options.js';

const TOKEN = 'ngb_TEST-DOUBLE-bootstrap-token-0123456789';
const AGENT = 'ngsa_TEST-DOUBLE-agent-credential-0123456789';
const HUB_TOKEN = 'hub-token-TEST-DOUBLE-5566';
const API_URL = 'https://hub.example.org/services/ngsci/api/v1';
const SERVER_URL = 'http://0.0.0.0:8888/user/alice/';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

function server(
  handler: (req: Seen) => { status: number; headers?: Record<string, string>; body: string },
) {
  const seen: Seen[] = [];
  const s: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(r);
      const a = handler(r);
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body);
    });
  });
  return { s, seen, url: () => `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

/** TEST DOUBLE of the clouds' metadata services, answering fixed identity proofs. */
const metadata = server((r) => {
  if (r.url === '/latest/api/token' && r.method === 'PUT')
    return { status: 200, body: 'imds-session-token' };
  if (r.url.startsWith('/latest/dynamic/instance-identity/')) {
    if (r.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token')
      return { status: 401, body: '' };
    return r.url.endsWith('/document')
      ? { status: 200, body: '{\n  "instanceId" : "i-0testdouble"\n}' }
      : { status: 200, body: 'TUlJ\nVEVTVERPVUJMRQ==' };
  }
  if (r.url.startsWith('/computeMetadata/v1/instance/service-accounts/default/identity')) {
    if (r.headers['metadata-flavor'] !== 'Google') return { status: 403, body: '' };
    return { status: 200, body: 'aGVhZA.Ym9keQ.c2ln' };
  }
  if (r.url.startsWith('/metadata/attested/document')) {
    if (r.headers.metadata !== 'true') return { status: 400, body: '' };
    return { status: 200, body: JSON.stringify({ encoding: 'pkcs7', signature: 'QVpVUkVURVNU' }) };
  }
  return { status: 404, body: '' };
});

/** TEST DOUBLE of hub-service's bootstrap endpoint; `answers` is consumed in order. */
let answers: { status: number; headers?: Record<string, string>; body: string }[] = [];
const service = server(() => answers.shift() ?? { status: 500, body: '{}' });

before(async () => {
  await new Promise<void>((r) => metadata.s.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => service.s.listen(0, '127.0.0.1', r));
});
after(() => {
  metadata.s.close();
  service.s.close();
});

const scratch = mkdtempSync(join(tmpdir(), 'ngsci-bootstrap-sh-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Installs the user-data's files under a fresh root; answers that root. */
function install(cloud: Cloud, extra: Partial<CloudInitOptions> = {}): string {
  const root = mkdtempSync(join(scratch, `${cloud}-`));
  const ud = renderUserData({
    cloud,
    instanceId: '11111111-2222-3333-4444-555555555555',
    serviceUrl: service.url(),
    bootstrapToken: TOKEN,
    singleuserPort: 8888,
    image: { kind: 'pip', spec: 'jupyterhub' },
    gpu: false,
    homeDevices: ['/dev/sdb'],
    dataset: { kind: 'disk', devices: ['/dev/sdc'] },
    allowHttp: true,
    ...extra,
  });
  const doc = JSON.parse(ud.replace(/^#cloud-config\n/, '')) as {
    write_files: { path: string; content: string; permissions: string }[];
  };
  for (const f of doc.write_files) {
    const p = join(root, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content, { mode: Number.parseInt(f.permissions, 8) });
  }
  return root;
}

function boot(root: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(root, 'usr/local/lib/ngsci/bootstrap.sh')], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NGSCI_TEST_ROOT: root,
        NGSCI_TEST_METADATA_URL: metadata.url(),
        NGSCI_TEST_RETRY_SECONDS: '0',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const ok = () => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    env: {
      JUPYTERHUB_API_TOKEN: HUB_TOKEN,
      A: 'b',
      NGSCI_API_URL: API_URL,
      JUPYTERHUB_SERVICE_URL: SERVER_URL,
    },
    agentToken: AGENT,
  }),
});
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('bootstrap.sh on the machine (metadata service and hub-service are test doubles)', () => {
  it('aws: sends the IMDSv2 identity document and PKCS7 with the token, waits out a 503, and keeps the agent credential apart in a root-only file', async () => {
    const root = install('aws');
    const before = service.seen.length;
    answers = [
      { status: 503, headers: { 'retry-after': '1' }, body: '{"code":"identity_pending"}' },
      ok(),
    ];
    const r = await boot(root);
    assert.equal(r.code, 0, r.stderr);
    const calls = service.seen.slice(before);
    assert.equal(calls.length, 2, 'one retry after the 503');
    for (const c of calls) {
      assert.equal(c.headers.authorization, `Bearer ${TOKEN}`);
      const body = JSON.parse(c.body) as { instanceId: string; identity: Record<string, string> };
      assert.equal(body.instanceId, '11111111-2222-3333-4444-555555555555');
      assert.deepEqual(body.identity, {
        cloud: 'aws',
        document: '{\n  "instanceId" : "i-0testdouble"\n}',
        pkcs7: 'TUlJ\nVEVTVERPVUJMRQ==',
      });
    }
    const envJson = join(root, 'run/ngsci/env.json');
    const agentEnv = join(root, 'etc/ngsci/agent.env');
    assert.deepEqual(JSON.parse(readFileSync(envJson, 'utf8')), {
      env: {
        JUPYTERHUB_API_TOKEN: HUB_TOKEN,
        A: 'b',
        NGSCI_API_URL: API_URL,
        JUPYTERHUB_SERVICE_URL: SERVER_URL,
      },
    });
    assert.ok(
      !readFileSync(envJson, 'utf8').includes(AGENT),
      "the agent credential is not in the server's environment",
    );
    assert.equal(mode(agentEnv), '600');
    assert.equal(mode(envJson), '600');
    assert.equal(
      readFileSync(agentEnv, 'utf8'),
      `NGSCI_AGENT_TOKEN=${AGENT}\nNGSCI_INSTANCE_ID=11111111-2222-3333-4444-555555555555\nNGSCI_CLOUD=aws\nNGSCI_DATASET_PATH=/mnt/dataset\nNGSCI_API_URL=${API_URL}\nJUPYTERHUB_SERVICE_URL=${SERVER_URL}\n`,
      'the agent knows where to report',
    );
    assert.match(
      readFileSync(join(root, 'etc/ngsci/bootstrap.env'), 'utf8'),
      /^NGSCI_BOOTSTRAP_TOKEN=$/m,
      'the token is forgotten',
    );
    assert.ok(!existsSync(join(root, 'run/ngsci/bootstrap')), 'no proof or answer left behind');

    // a second run in the same boot finds the files and asks nobody
    const again = await boot(root);
    assert.equal(again.code, 0);
    assert.equal(service.seen.length, before + 2);
  });

  it('gcp: asks for a full-format identity token whose audience is the service URL', async () => {
    const root = install('gcp');
    const before = metadata.seen.length;
    answers = [ok()];
    const r = await boot(root);
    assert.equal(r.code, 0, r.stderr);
    const asked = metadata.seen.slice(before).find((s) => s.url.includes('/identity?'));
    const q = new URL(asked?.url ?? '/', 'http://x').searchParams;
    assert.equal(q.get('audience'), service.url());
    assert.equal(q.get('format'), 'full');
    const body = JSON.parse(service.seen.at(-1)?.body ?? '{}') as { identity: unknown };
    assert.deepEqual(body.identity, { cloud: 'gcp', jwt: 'aGVhZA.Ym9keQ.c2ln' });
  });

  it('azure: asks for attested data with a nonce derived from the token, the one the service expects', async () => {
    const root = install('azure');
    const before = metadata.seen.length;
    answers = [ok()];
    const r = await boot(root);
    assert.equal(r.code, 0, r.stderr);
    const asked = metadata.seen.slice(before).find((s) => s.url.includes('/attested/'));
    const q = new URL(asked?.url ?? '/', 'http://x').searchParams;
    assert.equal(q.get('api-version'), '2021-02-01');
    // the same derivation as hub-service's azureNonceFor()
    const expected = String(
      Number.parseInt(createHash('sha256').update(TOKEN).digest('hex').slice(0, 8), 16),
    ).padStart(10, '0');
    assert.equal(q.get('nonce'), expected);
    const body = JSON.parse(service.seen.at(-1)?.body ?? '{}') as { identity: unknown };
    assert.deepEqual(body.identity, { cloud: 'azure', attested: 'QVpVUkVURVNU' });
  });

  it('a refusal (401) is final: no retry, no files, the token kept for an admin to look at', async () => {
    const root = install('aws');
    const before = service.seen.length;
    answers = [{ status: 401, body: '{"code":"identity_refused","message":"no"}' }, ok()];
    const r = await boot(root);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused this machine \(401\).*identity_refused/);
    assert.equal(service.seen.length, before + 1);
    assert.ok(!existsSync(join(root, 'etc/ngsci/agent.env')));
    assert.ok(!existsSync(join(root, 'run/ngsci/env.json')));
    answers = [];
  });

  it('after a reboot (credential on disk, environment gone with /run) it reports `rebooted` with the agent credential and stays down, never retrying the spent token', async () => {
    const root = install('gcp');
    answers = [ok()];
    assert.equal((await boot(root)).code, 0);
    rmSync(join(root, 'run'), { recursive: true, force: true }); // /run is tmpfs
    const before = service.seen.length;
    answers = [{ status: 202, body: '{"ok":true}' }];
    const r = await boot(root);
    assert.equal(r.code, 1, 'the server unit must not start');
    assert.match(r.stderr, /machine restarted/);
    const calls = service.seen.slice(before);
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.url}`),
      ['POST /api/v1/agent/boot'],
      'one boot report, no bootstrap attempt',
    );
    assert.equal(calls[0]?.headers.authorization, `Bearer ${AGENT}`);
    const report = JSON.parse(calls[0]?.body ?? '{}') as Record<string, string>;
    assert.equal(report.stage, 'failed');
    assert.equal(report.code, 'rebooted');
    assert.match(report.message ?? '', /restarted.*token is spent/);
    assert.ok(!existsSync(join(root, 'run/ngsci/env.json')));
  });

  it('refuses to send anything over plain http unless the development setting is on', async () => {
    const root = install('aws', { allowHttp: false });
    const before = service.seen.length;
    const r = await boot(root);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to fetch secrets over plain http/);
    assert.equal(service.seen.length, before, 'no request left the machine');
  });
});
