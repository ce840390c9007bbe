/**
 * The terraform provisioner's settings and their start-up checks (preflight.ts): every problem a
 * cloud would only reveal at a user's launch or a machine's boot refuses the service's start, each
 * naming its variable and never its value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  imageProblem,
  terraformPreflight,
  unreachableHost,
  vmUrlProblem,
  type PreflightInput,
} from './preflight.js';
import {
  identityTrust,
  loadTerraformSettings,
  TerraformSettingsError,
  vmUrls,
} from './settings.js';

/** ngsci's own single-user images, as an operator names them after pushing them */
const IMAGES = {
  NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
  NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
};

/** A complete, valid terraform configuration; each case changes one thing. */
const GOOD: PreflightInput = {
  NGSCI_VM_HUB_URL: 'https://hub.example.org',
  NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
  ...IMAGES,
  NGSCI_AWS_VPC_ID: 'vpc-0abc',
  NGSCI_AWS_SUBNET_ID: 'subnet-0abc',
};

const problemsOf = (change: PreflightInput) => terraformPreflight({ ...GOOD, ...change }).problems;

describe('start-up checks of the cloud settings', () => {
  it('a valid configuration has no problem', () => {
    assert.deepEqual(terraformPreflight(GOOD), { problems: [], warnings: [] });
  });

  it('the hub CIDR must be a canonical IPv4 network the AWS provider accepts, said with a reason', () => {
    const cases: [string, RegExp][] = [
      ['0.0.0.0/0', /whole internet/],
      ['not-a-cidr/99', /not an IPv4 CIDR/],
      ['10.0.0.1/24', /host bits set; the network is 10\.0\.0\.0\/24/],
      ['2001:db8::/32', /IPv6/],
      ['10.0.0.0/33', /prefix length above 32/],
    ];
    for (const [cidr, why] of cases) {
      const problems = problemsOf({ NGSCI_TERRAFORM_HUB_CIDR: cidr });
      assert.equal(problems.length, 1, cidr);
      assert.match(problems[0]!, /^NGSCI_TERRAFORM_HUB_CIDR: /, cidr);
      assert.match(problems[0]!, why, cidr);
    }
    assert.match(
      problemsOf({ NGSCI_TERRAFORM_HUB_CIDR: undefined })[0]!,
      /^NGSCI_TERRAFORM_HUB_CIDR: required/,
    );
    assert.match(
      problemsOf({ NGSCI_TERRAFORM_SSH_CIDR: '192.168.1.5/16' })[0]!,
      /^NGSCI_TERRAFORM_SSH_CIDR: .*192\.168\.0\.0\/16/,
    );
    assert.deepEqual(
      problemsOf({ NGSCI_TERRAFORM_EGRESS_ALLOW: '203.0.113.0/24, 0.0.0.0/0,fd00::/8' }),
      [
        'NGSCI_TERRAFORM_EGRESS_ALLOW: 0.0.0.0/0 is the whole internet; name the networks meant',
        'NGSCI_TERRAFORM_EGRESS_ALLOW: fd00::/8 is IPv6; give an IPv4 network such as 10.0.0.0/24',
      ],
    );
    assert.deepEqual(
      problemsOf({ NGSCI_TERRAFORM_EGRESS_ALLOW: '203.0.113.0/24,198.51.100.0/24' }),
      [],
    );
  });

  it('the VM-facing URLs are refused when a machine could not reach the hub there', () => {
    const refused: [string, RegExp][] = [
      ['https://127.0.0.1', /loopback/],
      ['https://127.1.2.3:8443', /loopback/],
      ['https://2130706433', /loopback/], // 127.0.0.1 written as one number
      ['https://localhost', /loopback/],
      ['https://hub.localhost', /loopback/],
      ['https://[::1]', /loopback/],
      ['https://[::ffff:127.0.0.1]', /loopback/],
      ['https://0.0.0.0', /unspecified/],
      ['https://[::]', /unspecified/],
      ['https://169.254.169.254', /link-local/],
      ['https://[fe80::1]', /link-local/],
      ['/hub', /is a path/],
      ['hub.example.org', /not a URL/],
      ['ftp://hub.example.org', /must be an https/],
      ['http://hub.example.org', /must be https:\/\/.*NGSCI_ALLOW_HTTP_VM_URLS/],
      ['https://hub.example.org/hub/', /the hub's address only/],
      ['https://hub.example.org/?x=1', /query/],
    ];
    for (const [url, why] of refused) {
      const p = vmUrlProblem('NGSCI_VM_HUB_URL', url, { allowHttp: false, originOnly: true });
      assert.ok(p, `${url} is refused`);
      assert.match(p, /^NGSCI_VM_HUB_URL: /, url);
      assert.match(p, why, url);
    }
    for (const url of [
      'https://hub.example.org',
      'https://10.0.0.5:8443/',
      'https://[2001:db8::5]',
    ])
      assert.equal(
        vmUrlProblem('NGSCI_VM_HUB_URL', url, { allowHttp: false, originOnly: true }),
        null,
        url,
      );
    assert.equal(
      vmUrlProblem('NGSCI_VM_HUB_URL', 'http://10.0.0.5:8000', {
        allowHttp: true,
        originOnly: true,
      }),
      null,
      'development may allow http, never loopback',
    );
    assert.match(
      vmUrlProblem('NGSCI_VM_HUB_URL', 'http://127.0.0.1:8000', {
        allowHttp: true,
        originOnly: true,
      })!,
      /loopback/,
    );
    assert.equal(unreachableHost('hub.example.org'), null);

    // both settings are checked; one of them is required
    assert.match(
      problemsOf({ NGSCI_TERRAFORM_SERVICE_URL: 'https://127.0.0.1:10101/services/ngsci' })[0]!,
      /^NGSCI_TERRAFORM_SERVICE_URL: .*loopback/,
    );
    assert.match(problemsOf({ NGSCI_VM_HUB_URL: undefined })[0]!, /^NGSCI_VM_HUB_URL: required/);
  });

  it('image settings must be docker:<reference> or pip:<requirements>', () => {
    const refused: [string, RegExp][] = [
      ['quay.io/jupyter/pytorch-notebook', /docker:<image> or pip:<requirements>/],
      ['docker:', /needs an image reference/],
      ['docker:Registry.example.org/NGSCI/singleuser:cpu', /lowercase/],
      ['docker:ngsci/singleuser:cpu; rm -rf /', /spaces/],
      ['docker:ngsci/singleuser:c$pu', /not a docker image reference/],
      ['pip:', /needs the requirements/],
      ['pip:jupyterhub\nngsci', /one line/],
    ];
    for (const [value, why] of refused) {
      const p = imageProblem('NGSCI_TERRAFORM_GPU_IMAGE', value);
      assert.ok(p, `${JSON.stringify(value)} is refused`);
      assert.match(p, why, value);
    }
    for (const ok of [
      'docker:ngsci/singleuser:cuda12',
      'docker:registry.example.org:5000/team/ngsci-singleuser:0.4.0-cuda',
      'docker:quay.io/jupyter/pytorch-notebook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      'pip:jupyterhub==5.2.1 ngsci',
    ])
      assert.equal(imageProblem('NGSCI_TERRAFORM_IMAGE', ok), null, ok);
  });

  it('a half-configured cloud is an error naming what is missing, not a cloud silently dropped', () => {
    assert.deepEqual(problemsOf({ NGSCI_AWS_SUBNET_ID: undefined }), [
      'NGSCI_AWS_SUBNET_ID: required to place machines on AWS (NGSCI_AWS_VPC_ID is set); set all of NGSCI_AWS_VPC_ID, NGSCI_AWS_SUBNET_ID, or none of the AWS settings',
    ]);
    const azure = problemsOf({
      NGSCI_AZURE_RESOURCE_GROUP: 'ngsci-rg',
      NGSCI_AZURE_ZONE: '1',
    });
    assert.equal(azure.length, 1);
    assert.match(
      azure[0]!,
      /^NGSCI_AZURE_SUBNET_ID, NGSCI_AZURE_ADMIN_SSH_KEY: required to place machines on Azure/,
    );
    assert.match(
      problemsOf({ NGSCI_GCP_NETWORK: 'research' })[0]!,
      /^NGSCI_GCP_PROJECT: required .*NGSCI_GCP_NETWORK is set/,
    );
    assert.match(
      problemsOf({ NGSCI_AWS_VPC_ID: 'subnet-0abc' })[0]!,
      /^NGSCI_AWS_VPC_ID: is not an AWS VPC id/,
    );
    assert.match(
      problemsOf({ NGSCI_AWS_ZONE: 'us-east-1' })[0]!,
      /^NGSCI_AWS_ZONE: is not an availability zone/,
    );
  });

  it('all problems are listed at once, and no value that may be secret is ever echoed', () => {
    const key = 'ssh-rsa AAAA-not-base64-SECRETISH';
    const problems = problemsOf({
      NGSCI_VM_HUB_URL: 'https://admin:hunter2-PASSWORD@127.0.0.1',
      NGSCI_TERRAFORM_HUB_CIDR: '0.0.0.0/0',
      NGSCI_TERRAFORM_IMAGE: 'pip:',
      NGSCI_TERRAFORM_GPU_IMAGE:
        'pip:--index-url https://u:pip-PASSWORD@pypi.example.org/simple\nngsci',
      NGSCI_AZURE_RESOURCE_GROUP: 'rg',
      NGSCI_AZURE_SUBNET_ID:
        '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s',
      NGSCI_AZURE_ADMIN_SSH_KEY: key,
    });
    assert.deepEqual(
      problems.map((p) => p.split(':')[0]),
      [
        'NGSCI_VM_HUB_URL',
        'NGSCI_TERRAFORM_HUB_CIDR',
        'NGSCI_TERRAFORM_IMAGE',
        'NGSCI_TERRAFORM_GPU_IMAGE',
        'NGSCI_AZURE_ADMIN_SSH_KEY',
      ],
    );
    for (const p of problems) assert.ok(!/PASSWORD|SECRETISH|hunter2/.test(p), p);
  });

  it('settings: every machine URL comes from NGSCI_VM_HUB_URL; NGSCI_TERRAFORM_SERVICE_URL overrides the service URL, and alone is deprecated', () => {
    const base = {
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      NGSCI_TERRAFORM_STATE: 'local',
      NGSCI_GCP_PROJECT: 'ngsci-test',
      ...IMAGES,
    };
    const s = loadTerraformSettings({
      ...base,
      NGSCI_VM_HUB_URL: 'https://hub.example.org/',
      JUPYTERHUB_SERVICE_PREFIX: '/jupyter/services/ngsci/',
    });
    assert.equal(s.vmHubOrigin, 'https://hub.example.org');
    assert.equal(s.serviceUrl, 'https://hub.example.org/jupyter/services/ngsci');
    assert.deepEqual(
      s.image,
      { kind: 'docker', ref: 'registry.example.org/ngsci/singleuser:cpu' },
      'CPU sizes: the operator’s build of ngsci’s image',
    );
    assert.deepEqual(
      s.gpuImage,
      { kind: 'docker', ref: 'registry.example.org/ngsci/singleuser:cuda12' },
      'GPU sizes: its CUDA build',
    );
    assert.equal(s.lockTimeoutSeconds, 300);
    assert.equal(s.egressAllowCidrs, undefined, 'unset: unrestricted');
    assert.ok(
      s.notices.some((n) => /public registries/.test(n.message)),
      'the log names where providers come from',
    );

    const override = loadTerraformSettings({
      ...base,
      NGSCI_VM_HUB_URL: 'https://hub.example.org',
      NGSCI_TERRAFORM_SERVICE_URL: 'https://ngsci.internal.example.org/services/ngsci/',
    });
    assert.equal(override.vmHubOrigin, 'https://hub.example.org');
    assert.equal(override.serviceUrl, 'https://ngsci.internal.example.org/services/ngsci');

    const old = loadTerraformSettings({
      ...base,
      NGSCI_TERRAFORM_SERVICE_URL: 'https://hub.example.org/services/ngsci',
    });
    assert.equal(old.vmHubOrigin, 'https://hub.example.org');
    assert.ok(
      old.notices.some((n) =>
        /NGSCI_TERRAFORM_SERVICE_URL without NGSCI_VM_HUB_URL is deprecated/.test(n.message),
      ),
    );

    // the GCP identity token's audience is the URL the machine calls
    assert.equal(
      identityTrust({
        NGSCI_VM_HUB_URL: 'https://hub.example.org',
        JUPYTERHUB_SERVICE_PREFIX: '/services/ngsci/',
      }).audience,
      'https://hub.example.org/services/ngsci',
    );
    assert.equal(vmUrls({}), null, 'a hub without the terraform provisioner has none');
  });

  it('settings: terraform state on the service’s Postgres connects as the service does; an explicit connection string is used as given', () => {
    const base = {
      NGSCI_VM_HUB_URL: 'https://hub.example.org',
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      NGSCI_GCP_PROJECT: 'ngsci-test',
      ...IMAGES,
    };
    const derived = loadTerraformSettings({
      ...base,
      DATABASE_URL: 'postgres://u:db-PASSWORD@db.example.org/ngsci',
    });
    assert.equal(derived.backend, 'pg');
    assert.match(derived.pgConnString ?? '', /sslmode=disable/);
    const note = derived.notices.find((n) => /without TLS/.test(n.message));
    assert.ok(note, 'the start-up log says terraform connects without TLS, like the service');
    assert.ok(!note.message.includes('db-PASSWORD'), 'no password in the note');

    const given = 'postgres://u:p@db.example.org/state?sslmode=verify-full';
    assert.equal(
      loadTerraformSettings({
        ...base,
        DATABASE_URL: 'postgres://x@y/z',
        NGSCI_TERRAFORM_PG_CONN_STR: given,
      }).pgConnString,
      given,
    );
    const tuned = loadTerraformSettings({
      ...base,
      NGSCI_TERRAFORM_STATE: 'local',
      NGSCI_TERRAFORM_LOCK_TIMEOUT: '60',
      NGSCI_TERRAFORM_EGRESS_ALLOW: '203.0.113.0/24, 198.51.100.0/24',
    });
    assert.equal(tuned.lockTimeoutSeconds, 60);
    assert.deepEqual(tuned.egressAllowCidrs, ['203.0.113.0/24', '198.51.100.0/24']);
  });

  it('settings: a bad setting throws one error listing every problem', () => {
    const err = (() => {
      try {
        loadTerraformSettings({
          NGSCI_VM_HUB_URL: 'http://127.0.0.1:8081',
          NGSCI_TERRAFORM_HUB_CIDR: 'not-a-cidr/99',
          NGSCI_TERRAFORM_STATE: 'local',
          NGSCI_AWS_VPC_ID: 'vpc-0abc',
        });
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof TerraformSettingsError, 'the settings are refused');
    assert.deepEqual(
      err.problems.map((p) => p.split(':')[0]),
      [
        'NGSCI_VM_HUB_URL',
        'NGSCI_TERRAFORM_HUB_CIDR',
        'NGSCI_TERRAFORM_IMAGE',
        'NGSCI_TERRAFORM_GPU_IMAGE',
        'NGSCI_AWS_SUBNET_ID',
      ],
      'no default image: a name nobody here controls would be pulled from a public registry',
    );
  });
});

describe('the service with bad cloud settings', () => {
  it('refuses to start (exit 2) before it opens its database, listing every problem by variable and no secret', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ngsci-preflight-'));
    try {
      const index = fileURLToPath(new URL('../../index.ts', import.meta.url));
      const res = spawnSync(process.execPath, ['--import', 'tsx', index], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          JUPYTERHUB_API_TOKEN: 'hub-token-FAKE-0123456789',
          NGSCI_BRIDGE_SECRET: 'bridge-secret-FAKE-0123456789',
          NGSCI_SECRET_KEY: 'a'.repeat(64),
          NGSCI_DATA_DIR: dataDir,
          NGSCI_PROVISIONER: 'terraform',
          NGSCI_VM_HUB_URL: 'http://127.0.0.1:8081',
          NGSCI_TERRAFORM_SERVICE_URL: 'https://svc:svc-PASSWORD@hub.example.org/services/ngsci',
          NGSCI_TERRAFORM_HUB_CIDR: '0.0.0.0/0',
          NGSCI_TERRAFORM_IMAGE: 'docker:Not An Image',
          NGSCI_GCP_PROJECT: 'ngsci-test',
          NGSCI_IDENTITY_GCP_CERTS: '{"keys":[]}',
          NGSCI_AWS_VPC_ID: 'vpc-0abc',
        },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(res.status, 2, res.stderr);
      for (const v of [
        'NGSCI_VM_HUB_URL',
        'NGSCI_TERRAFORM_SERVICE_URL',
        'NGSCI_TERRAFORM_HUB_CIDR',
        'NGSCI_TERRAFORM_IMAGE',
        'NGSCI_AWS_SUBNET_ID',
      ])
        assert.match(res.stderr, new RegExp(`^  ${v}: `, 'm'), `${v} is named`);
      assert.ok(!res.stderr.includes('svc-PASSWORD'), 'no secret in the message');
      assert.deepEqual(readdirSync(dataDir), [], 'nothing was opened or created');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
