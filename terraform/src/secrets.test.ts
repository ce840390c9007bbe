/**
 * The hub API token and the agent's credential must never reach Terraform: not the JSON, not the
 * user-data, not the state. The bootstrap token may appear, and only in user-data. On the machine
 * the agent runs as root with its credential in a root-only file, the notebook as NOTEBOOK_UID.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NOTEBOOK_GID, NOTEBOOK_UID } from './cloud-init.js';
import type { Cloud, InstanceOptions } from './options.js';
import { synthHome, synthInstance } from './synth.js';
import { BOOTSTRAP_TOKEN, options, strings, userData, type SizeClass } from './test-fixtures.js';

const HUB_TOKEN = 'hubtoken-FAKE-5f0c2a9e7d1b4c3a';
const PG_SECRET = 'postgres://ngsci:pg-password-FAKE@db:5432/ngsci';
const AGENT_TOKEN = 'ngsa_agent-credential-FAKE-77aa';

// every place a careless caller could hand the hub token in: the environment synth runs in,
// unknown option keys (the hub's spawn env, a token field), and nested placement objects
const saved = { ...process.env };
process.env.JUPYTERHUB_API_TOKEN = HUB_TOKEN;
process.env.NGSCI_HUB_TOKEN = HUB_TOKEN;
process.env.PG_CONN_STR = PG_SECRET;
process.env.DATABASE_URL = PG_SECRET;
after(() => {
  for (const k of ['JUPYTERHUB_API_TOKEN', 'NGSCI_HUB_TOKEN', 'PG_CONN_STR', 'DATABASE_URL']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function leaky(
  cloud: Cloud,
  size: SizeClass,
  dataset: InstanceOptions['dataset'],
): InstanceOptions {
  const base = options(cloud, size, {
    dataset,
    allowSsh: true,
    sshAuthorizedKeys: ['ssh-ed25519 AAAA test'],
  });
  return {
    ...base,
    env: {
      JUPYTERHUB_API_TOKEN: HUB_TOKEN,
      DATABASE_URL: PG_SECRET,
      NGSCI_AGENT_TOKEN: AGENT_TOKEN,
    },
    agentToken: AGENT_TOKEN,
    apiToken: HUB_TOKEN,
    hubToken: HUB_TOKEN,
    backend: { kind: 'pg', connStringEnv: 'PG_CONN_STR' },
    aws: { ...base.aws, token: HUB_TOKEN },
    gcp: { ...base.gcp, accessToken: HUB_TOKEN },
    azure: { ...base.azure, clientSecret: HUB_TOKEN },
  } as unknown as InstanceOptions;
}

const AZURE_CONTAINER =
  '/subscriptions/0/resourceGroups/d/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/c';
const cases: [string, InstanceOptions][] = [];
for (const cloud of ['aws', 'gcp', 'azure'] as Cloud[]) {
  for (const size of ['cpu', 'gpu', 'multi-gpu'] as SizeClass[])
    cases.push([`${cloud}/${size}`, leaky(cloud, size, null)]);
  cases.push([
    `${cloud}/disk`,
    leaky(cloud, 'gpu', {
      kind: 'disk',
      ref: cloud === 'aws' ? 'snap-1' : cloud === 'gcp' ? 'disk-1' : '/subscriptions/0/snapshots/s',
    }),
  ]);
  cases.push([
    `${cloud}/bucket`,
    leaky(cloud, 'gpu', { kind: 'bucket', ref: cloud === 'azure' ? AZURE_CONTAINER : 'bucket-1' }),
  ]);
}
const synthesized = cases.map(([name, o]) => [name, synthInstance(o), synthHome(o)] as const);

describe('secrets', () => {
  it('the hub token and the Postgres connection string appear nowhere in any synthesized stack', () => {
    for (const [name, instance, home] of synthesized) {
      for (const json of [instance, home]) {
        for (const [path, value] of strings(json)) {
          assert.ok(!value.includes(HUB_TOKEN), `${name}: hub token at ${path}`);
          assert.ok(!value.includes(AGENT_TOKEN), `${name}: agent credential at ${path}`);
          assert.ok(!/ngsa_/.test(value), `${name}: something like an agent credential at ${path}`);
          assert.ok(!value.includes('pg-password-FAKE'), `${name}: Postgres password at ${path}`);
        }
      }
    }
  });

  it('the bootstrap token appears only in user-data, once, in a root-only file', () => {
    for (const [name, instance, home] of synthesized) {
      const hits = strings(instance)
        .filter(([, v]) => v.includes(BOOTSTRAP_TOKEN))
        .map(([p]) => p);
      assert.ok(hits.length > 0, `${name}: bootstrap token missing`);
      for (const p of hits)
        assert.match(
          p,
          /(\.user_data|\.user_data_base64|\.metadata\.user-data|\.custom_data\(base64\))$/,
          `${name}: bootstrap token at ${p}`,
        );
      assert.ok(
        !JSON.stringify(home).includes(BOOTSTRAP_TOKEN),
        `${name}: bootstrap token in the home stack`,
      );
      const ud = userData(instance);
      assert.equal(
        ud.split(BOOTSTRAP_TOKEN).length - 1,
        1,
        `${name}: bootstrap token more than once`,
      );
      // Terraform interpolations (a volume id) hold raw quotes until Terraform renders them
      const doc = JSON.parse(ud.replace(/^#cloud-config\n/, '').replace(/\$\{[^}]*\}/g, 'X')) as {
        write_files: { path: string; content: string; permissions: string }[];
      };
      const file = doc.write_files.find((f) => f.content.includes(BOOTSTRAP_TOKEN));
      assert.equal(file?.path, '/etc/ngsci/bootstrap.env');
      assert.equal(file?.permissions, '0600');
    }
  });

  it('user-data trades the bootstrap token at POST <serviceUrl>/api/v1/bootstrap with a Bearer header, then starts the server and the agent', () => {
    const ud = userData(synthesized[0]?.[1] as never);
    // the header goes to curl from a root-only file, so the token never shows in a process list
    assert.match(
      ud,
      /printf 'Authorization: Bearer %s\\\\n' \\"\$NGSCI_BOOTSTRAP_TOKEN\\" > \\"\$work\/auth\\"/,
    );
    assert.match(ud, /-X POST -H \\"@\$work\/auth\\"/);
    assert.match(ud, /NGSCI_SERVICE_URL=https:\/\/hub\.example\.org\/services\/ngsci\\n/);
    assert.match(ud, /\$NGSCI_SERVICE_URL\/api\/v1\/bootstrap/);
    assert.match(ud, /ngsci-singleuser\.service/);
    assert.match(ud, /jupyterhub-singleuser --ip=0\.0\.0\.0 --port=8888/);
    assert.match(ud, /ngsci agent/);
    assert.match(ud, /Requires=ngsci-bootstrap\.service/);
  });

  it('the bootstrap sends an identity proof, over https only, and retries while the service answers 503', () => {
    const ud = userData(synthesized[0]?.[1] as never);
    assert.match(ud, /NGSCI_ALLOW_HTTP=0\\n/, 'http is off unless the development setting is on');
    assert.match(ud, /refusing to fetch secrets over plain http/);
    assert.match(ud, /--proto \\"\$proto\\"/);
    assert.match(ud, /latest\/dynamic\/instance-identity\/pkcs7/);
    assert.match(ud, /retry-after/i);
  });

  for (const image of [
    { kind: 'docker', ref: 'quay.io/jupyter/pytorch-notebook:latest' },
    { kind: 'pip', spec: 'jupyterhub ngsci' },
  ] as const) {
    it(`${image.kind}: the agent runs as root under systemd with its credential in a root-only file; the notebook as NOTEBOOK_UID without it`, () => {
      const json = synthInstance(options('aws', 'gpu', { image }));
      const ud = userData(json);
      const doc = JSON.parse(ud.replace(/^#cloud-config\n/, '').replace(/\$\{[^}]*\}/g, 'X')) as {
        write_files: { path: string; content: string; permissions: string; owner: string }[];
      };
      const file = (p: string) => doc.write_files.find((f) => f.path === p);
      const agent = file('/etc/systemd/system/ngsci-agent.service')?.content ?? '';
      const server = file('/etc/systemd/system/ngsci-singleuser.service')?.content ?? '';
      assert.match(agent, /^User=root$/m);
      assert.match(agent, /^EnvironmentFile=\/etc\/ngsci\/agent\.env$/m);
      assert.match(agent, /^Restart=always$/m);
      assert.doesNotMatch(agent, /setpriv|--user [1-9]/, 'the agent keeps root');
      assert.doesNotMatch(server, /agent\.env/, "the server's unit never reads the agent's file");
      if (image.kind === 'pip')
        assert.ok(
          server.includes(`setpriv --reuid=${NOTEBOOK_UID} --regid=${NOTEBOOK_GID} --init-groups`),
          server,
        );
      else assert.ok(server.includes(`--user ${NOTEBOOK_UID}:${NOTEBOOK_GID}`), server);
      // the bootstrap writes the credential 0600 (umask 077 and an explicit chmod), the env without it
      const helper = file('/usr/local/lib/ngsci/bootstrap-json.py');
      assert.equal(helper?.permissions, '0700');
      assert.match(helper?.content ?? '', /os\.chmod\(agent_env, 0o600\)/);
      assert.match(helper?.content ?? '', /env\.pop\("NGSCI_AGENT_TOKEN", None\)/);
      assert.match(file('/usr/local/lib/ngsci/bootstrap.sh')?.content ?? '', /^umask 077$/m);
      for (const f of doc.write_files) assert.equal(f.owner, 'root:root', f.path);
    });
  }

  it('pip images install into a venv and run as the notebook user', () => {
    const json = synthInstance(
      options('gcp', 'cpu', { image: { kind: 'pip', spec: 'jupyterhub==5.3.0 jupyterlab ngsci' } }),
    );
    const ud = userData(json);
    assert.match(ud, /pip install --no-cache-dir jupyterhub==5.3.0 jupyterlab ngsci/);
    assert.match(
      ud,
      new RegExp(
        `setpriv --reuid=${NOTEBOOK_UID} --regid=${NOTEBOOK_GID} --init-groups [^\\n]*/opt/ngsci/venv/bin/jupyterhub-singleuser`,
      ),
    );
    assert.doesNotMatch(ud, /\/usr\/bin\/docker|docker pull|docker\.io/);
  });
});
