/**
 * The base stacks, synthesized per cloud (no terraform apply, no cloud account: what a real apply
 * would add is listed in docs/clouds.md). What matters is asserted: private subnets, no SSH from
 * everywhere (none at all by default), instances reachable from the hub only, a database without
 * a public address and without a password in the JSON, least-privilege identities; plus snapshots.
 * With NGSCI_TF_VALIDATE=1 and the AWS provider in /opt/tf-plugins, `terraform validate` runs too.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matchSnapshot, only, resources, scrubVolatile, strings } from '../test-fixtures.js';
import type { TerraformJson } from '../synth.js';
import { AWS_INSTANCE_ROLE_PREFIX } from './aws.js';
import { AZURE_TERRAFORM_ACTIONS } from './azure.js';
import { GCP_TERRAFORM_PERMISSIONS } from './gcp.js';
import {
  BASE_OUTPUTS,
  baseSubnets,
  resolveBaseOptions,
  subnet24,
  type BaseOptions,
} from './options.js';
import { synthBase } from './stack.js';

const KEY_VAULT =
  '/subscriptions/0000/resourceGroups/ops/providers/Microsoft.KeyVault/vaults/ngsci-ops';

function base(cloud: BaseOptions['cloud'], extra: Partial<BaseOptions> = {}): BaseOptions {
  return {
    cloud,
    region: { aws: 'us-east-1', gcp: 'us-central1', azure: 'eastus' }[cloud],
    dnsHost: 'hub',
    dnsZone: 'example.org',
    datasetBucket: cloud === 'azure' ? 'ngscilabdata' : 'ngsci-lab-data',
    backend: { kind: 'local', path: 'base.tfstate' },
    gcp: { project: 'ngsci-test', dbPasswordSecret: 'ngsci-db-password' },
    azure: {
      resourceGroup: 'ngsci',
      keyVaultId: KEY_VAULT,
      dbPasswordSecretName: 'ngsci-db-password',
      adminSshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests ngsci-admin',
    },
    ...extra,
  };
}

const SSH_CIDR = '192.0.2.0/24';
const synth = {
  aws: synthBase(base('aws')),
  awsSsh: synthBase(base('aws', { sshCidr: SSH_CIDR })),
  awsNoBucket: synthBase(base('aws', { datasetBucket: undefined })),
  gcp: synthBase(base('gcp')),
  gcpSsh: synthBase(base('gcp', { sshCidr: SSH_CIDR })),
  azure: synthBase(base('azure')),
  azureSsh: synthBase(base('azure', { sshCidr: SSH_CIDR })),
};

type R = Record<string, any>;
const named = (json: TerraformJson, type: string): Record<string, R> =>
  (json.resource?.[type] ?? {}) as Record<string, R>;
const byKey = (json: TerraformJson, type: string, part: string): R => {
  const hit = Object.entries(named(json, type)).find(([k]) => k.includes(part));
  if (!hit) throw new Error(`no ${type} named like ${part}`);
  return hit[1];
};
const ref = (json: TerraformJson, type: string, part: string, attr = 'id'): string => {
  const key = Object.keys(named(json, type)).find((k) => k.includes(part));
  if (!key) throw new Error(`no ${type} named like ${part}`);
  return `\${${type}.${key}.${attr}}`;
};
const coversPort = (rule: R, port: number) =>
  rule.from_port <= port && port <= rule.to_port && rule.protocol !== 'icmp';

describe('base options', () => {
  it('fills the defaults the price list uses', () => {
    const o = resolveBaseOptions(base('aws'));
    assert.equal(o.hubMachineType, 't3.medium');
    assert.equal(o.dbTier, 'db.t4g.small');
    assert.equal(o.dbStorageGiB, 20);
    assert.equal(o.natGateway, true);
    assert.equal(o.sshCidr, undefined, 'SSH is off unless asked for');
  });

  it('carves /24 subnets from the network', () => {
    assert.equal(subnet24('10.40.0.0/16', 2), '10.40.2.0/24');
    assert.equal(subnet24('172.16.16.0/20', 15), '172.16.31.0/24');
    assert.throws(() => subnet24('172.16.16.0/20', 16), /no room/);
    assert.deepEqual(baseSubnets('10.40.0.0/16'), {
      hub: ['10.40.0.0/24', '10.40.1.0/24'],
      instances: '10.40.2.0/24',
      db: ['10.40.4.0/24', '10.40.5.0/24'],
    });
  });

  it('refuses bad inputs with the option named', () => {
    const bad: [Partial<BaseOptions>, RegExp][] = [
      [{ sshCidr: '0.0.0.0/0' }, /sshCidr: 0\.0\.0\.0\/0 is the whole internet/],
      [{ sshCidr: '10.0.0.1/24' }, /sshCidr: .*host bits/],
      [{ networkCidr: '10.0.0.0/8' }, /networkCidr: give a \/16 to \/20/],
      [{ networkCidr: '10.0.0.0/16x' }, /networkCidr/],
      [{ dnsZone: 'not a domain' }, /dnsZone/],
      [{ dnsHost: 'Hub!' }, /dnsHost/],
      [{ webCidrs: [] }, /webCidrs/],
      [{ webCidrs: ['10.0.0.0/33'] }, /webCidrs\[0\]/],
      [{ dbStorageGiB: 5 }, /dbStorageGiB must be an integer between 20/],
      [{ hubDiskGiB: 1.5 }, /hubDiskGiB/],
      [{ singleuserPort: 22 }, /singleuserPort/],
      [{ name: 'Ngsci' }, /name:/],
      [{ hubMachineType: 't3.medium"; rm' }, /hubMachineType/],
      [{ datasetBucket: 'Bad_Bucket' }, /datasetBucket/],
      [
        { aws: { zones: ['us-west-2a', 'us-west-2b'] } },
        /aws\.zones: us-west-2a is not in us-east-1/,
      ],
      [{ backend: { kind: 'pg', connStringEnv: 'X' as 'PG_CONN_STR' } }, /PG_CONN_STR/],
    ];
    for (const [extra, message] of bad)
      assert.throws(() => resolveBaseOptions(base('aws', extra)), message, JSON.stringify(extra));
    assert.throws(() => resolveBaseOptions(base('gcp', { gcp: undefined })), /gcp: \{ project/);
    assert.throws(
      () =>
        resolveBaseOptions(
          base('azure', { azure: { ...base('azure').azure!, keyVaultId: 'vault' } }),
        ),
      /azure\.keyVaultId/,
    );
    assert.throws(
      () => resolveBaseOptions(base('azure', { datasetBucket: 'has-dashes' })),
      /storage account name/,
    );
  });
});

describe('every base stack', () => {
  it('declares the outputs the docs map to settings', () => {
    for (const json of [synth.aws, synth.gcp, synth.azure])
      for (const name of BASE_OUTPUTS) assert.ok(json.output?.[name], name);
  });
});

describe('AWS base stack', () => {
  const j = synth.aws;

  it('instances and the database live in private subnets; only the hub subnet routes to the internet', () => {
    const instanceSubnet = byKey(j, 'aws_subnet', 'instance-subnet');
    assert.equal(instanceSubnet.cidr_block, '10.40.2.0/24');
    for (const s of resources(j, 'aws_subnet')) assert.equal(s.map_public_ip_on_launch, false);
    const routes = resources(j, 'aws_route') as R[];
    const igwRoute = routes.find((r) => r.gateway_id);
    const natRoute = routes.find((r) => r.nat_gateway_id);
    assert.equal(igwRoute?.route_table_id, ref(j, 'aws_route_table', 'public-routes'));
    assert.equal(natRoute?.route_table_id, ref(j, 'aws_route_table', 'private-routes'));
    assert.equal(routes.length, 2, 'the database route table has no way out');
    const assoc = resources(j, 'aws_route_table_association') as R[];
    const of = (subnet: string) =>
      assoc.find((a) => a.subnet_id === ref(j, 'aws_subnet', subnet))?.route_table_id;
    assert.equal(of('instance-subnet'), ref(j, 'aws_route_table', 'private-routes'));
    assert.equal(of('db-subnet-0'), ref(j, 'aws_route_table', 'db-routes'));
    assert.equal(of('db-subnet-1'), ref(j, 'aws_route_table', 'db-routes'));
    assert.equal(only(j, 'aws_nat_gateway').subnet_id, ref(j, 'aws_subnet', 'hub-subnet'));
  });

  it('no SSH anywhere by default; with sshCidr, the hub from that network and instances from the hub', () => {
    for (const sg of resources(j, 'aws_security_group') as R[])
      for (const rule of sg.ingress) assert.ok(!coversPort(rule, 22), `${sg.name} opens 22`);
    const ssh = synth.awsSsh;
    const hub = byKey(ssh, 'aws_security_group', 'hub-firewall');
    const hubSsh = hub.ingress.filter((r: R) => coversPort(r, 22));
    assert.deepEqual(
      hubSsh.map((r: R) => r.cidr_blocks),
      [[SSH_CIDR]],
    );
    const inst = byKey(ssh, 'aws_security_group', 'instances-firewall');
    const instSsh = inst.ingress.filter((r: R) => coversPort(r, 22));
    assert.equal(instSsh.length, 1);
    assert.deepEqual(instSsh[0].security_groups, [ref(ssh, 'aws_security_group', 'hub-firewall')]);
    assert.ok(!instSsh[0].cidr_blocks?.length);
    for (const sg of resources(ssh, 'aws_security_group') as R[])
      for (const rule of sg.ingress)
        if (coversPort(rule, 22)) assert.ok(!rule.cidr_blocks?.includes('0.0.0.0/0'));
  });

  it("the instances' security group admits the hub's group only, on the single-user port", () => {
    const inst = byKey(j, 'aws_security_group', 'instances-firewall');
    assert.equal(inst.ingress.length, 1);
    const [rule] = inst.ingress;
    assert.deepEqual([rule.from_port, rule.to_port, rule.protocol], [8888, 8888, 'tcp']);
    assert.deepEqual(rule.security_groups, [ref(j, 'aws_security_group', 'hub-firewall')]);
    assert.ok(!rule.cidr_blocks?.length, 'no CIDR: the hub group only');
    const hub = byKey(j, 'aws_security_group', 'hub-firewall');
    assert.deepEqual(hub.ingress.map((r: R) => r.from_port).sort(), [443, 80], 'the hub: web only');
    assert.equal(j.output?.hub_cidr?.value, `${ref(j, 'aws_instance', 'hub', 'private_ip')}/32`);
  });

  it('Postgres: not public, encrypted, reachable from the hub only, password kept by RDS', () => {
    const db = only(j, 'aws_db_instance');
    assert.equal(db.publicly_accessible, false);
    assert.equal(db.storage_encrypted, true);
    assert.equal(db.deletion_protection, true);
    assert.equal(db.manage_master_user_password, true);
    assert.equal(db.password, undefined);
    assert.equal(db.instance_class, 'db.t4g.small');
    const group = only(j, 'aws_db_subnet_group');
    assert.deepEqual(group.subnet_ids, [
      ref(j, 'aws_subnet', 'db-subnet-0'),
      ref(j, 'aws_subnet', 'db-subnet-1'),
    ]);
    const sg = byKey(j, 'aws_security_group', 'db-firewall');
    assert.deepEqual(db.vpc_security_group_ids, [ref(j, 'aws_security_group', 'db-firewall')]);
    assert.equal(sg.ingress.length, 1);
    assert.equal(sg.ingress[0].from_port, 5432);
    assert.deepEqual(sg.ingress[0].security_groups, [ref(j, 'aws_security_group', 'hub-firewall')]);
    assert.deepEqual(sg.egress, []);
  });

  it('no password or secret value in the JSON: password fields are references only', () => {
    const checked: Record<string, number> = {};
    for (const [cloud, json] of Object.entries({
      aws: synth.aws,
      gcp: synth.gcp,
      azure: synth.azure,
    })) {
      checked[cloud] = 0;
      for (const [path, value] of strings(json)) {
        if (!path.startsWith('$.resource.')) continue; // data sources name the secret; outputs describe it
        const key = path.split('.').pop() ?? '';
        if (!/password|secret|private_key|access_key/i.test(key)) continue;
        if (typeof value === 'boolean') continue;
        checked[cloud]! += 1;
        assert.match(
          value,
          /^\$\{data\.[a-z_]+\.[^.]+\.(secret_data|value)\}$/,
          `${cloud} ${path}`,
        );
      }
    }
    // AWS has no password field at all (RDS makes it); GCP and Azure have exactly one, a reference
    assert.deepEqual(checked, { aws: 0, gcp: 1, azure: 1 });
  });

  it('the DNS record points at the hub address, in the existing zone unless asked to create one', () => {
    const rec = only(j, 'aws_route53_record');
    assert.equal(rec.name, 'hub.example.org');
    assert.deepEqual(rec.records, [ref(j, 'aws_eip', 'hub-ip', 'public_ip')]);
    assert.equal(resources(j, 'aws_route53_zone').length, 0);
    assert.ok(j.data?.aws_route53_zone);
    const own = synthBase(base('aws', { createDnsZone: true }));
    assert.equal(only(own, 'aws_route53_zone').name, 'example.org');
  });

  it('the data set bucket is private and encrypted', () => {
    assert.equal(only(j, 'aws_s3_bucket').bucket, 'ngsci-lab-data');
    const block = only(j, 'aws_s3_bucket_public_access_block');
    for (const k of [
      'block_public_acls',
      'block_public_policy',
      'ignore_public_acls',
      'restrict_public_buckets',
    ])
      assert.equal(block[k], true, k);
    assert.equal(j.output?.dataset?.value, 'bucket:ngsci-lab-data');
    assert.equal(resources(synth.awsNoBucket, 'aws_s3_bucket').length, 0);
  });

  const policy = (json: TerraformJson) =>
    JSON.parse(only(json, 'aws_iam_role_policy').policy) as {
      Statement: {
        Sid: string;
        Effect: string;
        Action: string[];
        Resource: string[];
        Condition?: R;
      }[];
    };

  it("the hub's role: least privilege for the instance stacks", () => {
    const p = policy(j);
    const allows = p.Statement.filter((s) => s.Effect === 'Allow');
    for (const s of allows) {
      for (const a of s.Action) assert.doesNotMatch(a, /\*/, `${s.Sid}: wildcard action ${a}`);
      if (s.Resource.includes('*'))
        assert.ok(
          s.Action.every((a) => /^ec2:Describe/.test(a)),
          `${s.Sid}: only EC2 Describe calls may have Resource *`,
        );
    }
    const sid = (name: string) => p.Statement.find((s) => s.Sid === name)!;
    const account = Object.keys(j.data?.aws_caller_identity ?? {})[0];
    assert.deepEqual(
      sid('RunInTheInstanceSubnet').Resource[0],
      `arn:aws:ec2:us-east-1:\${data.aws_caller_identity.${account}.account_id}:subnet/${ref(j, 'aws_subnet', 'instance-subnet')}`,
    );
    assert.deepEqual(sid('ManageOwnResources').Condition, {
      StringEquals: { 'ec2:ResourceTag/managed-by': 'ngsci' },
    });
    assert.deepEqual(sid('RunTaggedOnly').Condition, {
      StringEquals: { 'aws:RequestTag/managed-by': 'ngsci' },
    });
    assert.deepEqual(sid('ReadTheDatabasePassword').Resource, [
      ref(j, 'aws_db_instance', 'db', 'master_user_secret[0].secret_arn'),
    ]);
    // bucket data sets need a role per instance: IAM limited to ngsci-* roles, passed to EC2 only
    const iam = allows.filter((s) => s.Action.some((a) => a.startsWith('iam:')));
    assert.ok(iam.length > 0);
    for (const s of iam)
      for (const r of s.Resource) assert.match(r, /:(role|instance-profile)\/ngsci-\*$/, s.Sid);
    assert.deepEqual(sid('PassInstanceRolesToEc2Only').Condition, {
      StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' },
    });
    const role = only(j, 'aws_iam_role');
    assert.ok(
      !role.name.startsWith(AWS_INSTANCE_ROLE_PREFIX),
      'the hub role is not one it may edit',
    );
    assert.equal(
      only(j, 'aws_instance').iam_instance_profile,
      ref(j, 'aws_iam_instance_profile', 'hub-profile', 'name'),
    );
  });

  it('no IAM rights at all without a bucket data set', () => {
    const p = policy(synth.awsNoBucket);
    assert.ok(p.Statement.every((s) => s.Action.every((a) => !a.startsWith('iam:'))));
  });

  it('the hub host: IMDSv2, encrypted disk, no automatic public address (an Elastic IP)', () => {
    const hub = only(j, 'aws_instance');
    assert.equal(hub.instance_type, 't3.medium');
    assert.equal(hub.metadata_options.http_tokens, 'required');
    assert.equal(hub.root_block_device.encrypted, true);
    assert.equal(hub.associate_public_ip_address, false);
    assert.equal(hub.subnet_id, ref(j, 'aws_subnet', 'hub-subnet'));
  });

  it('matches the snapshot', () => {
    const { expected, actual } = matchSnapshot('base-aws', scrubVolatile(j));
    assert.deepEqual(actual, expected);
  });

  it(
    'terraform validate accepts it (NGSCI_TF_VALIDATE=1, AWS provider in /opt/tf-plugins)',
    {
      skip:
        process.env.NGSCI_TF_VALIDATE !== '1' ||
        !existsSync('/opt/tf-plugins/registry.terraform.io/hashicorp/aws'),
    },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'ngsci-base-validate-'));
      try {
        const json = synthBase(base('aws', { sshCidr: SSH_CIDR, createDnsZone: true })) as R;
        // the mirror holds one provider version; the schema of what the stack uses is the same
        json.terraform.required_providers.aws.version = '>= 5.100.0';
        writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(json));
        writeFileSync(
          join(dir, 'cli.tfrc'),
          'provider_installation {\n  filesystem_mirror { path = "/opt/tf-plugins" }\n}\n',
        );
        const env = { ...process.env, TF_CLI_CONFIG_FILE: join(dir, 'cli.tfrc') };
        const run = (args: string[]) =>
          spawnSync('terraform', args, { cwd: dir, env, encoding: 'utf8' });
        const init = run(['init', '-backend=false', '-input=false', '-no-color']);
        assert.equal(init.status, 0, init.stderr);
        const validate = run(['validate', '-no-color']);
        assert.equal(validate.status, 0, validate.stdout + validate.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('GCP base stack', () => {
  const j = synth.gcp;

  it('a custom network; only the instance subnet goes out through Cloud NAT', () => {
    assert.equal(only(j, 'google_compute_network').auto_create_subnetworks, false);
    const inst = byKey(j, 'google_compute_subnetwork', 'instance-subnet');
    assert.equal(inst.ip_cidr_range, '10.40.2.0/24');
    const nat = only(j, 'google_compute_router_nat');
    assert.equal(nat.source_subnetwork_ip_ranges_to_nat, 'LIST_OF_SUBNETWORKS');
    assert.deepEqual(
      nat.subnetwork.map((s: R) => s.name),
      [ref(j, 'google_compute_subnetwork', 'instance-subnet')],
    );
  });

  it('no SSH by default; with sshCidr, to the hub from that network and to instances from the hub tag', () => {
    for (const fw of resources(j, 'google_compute_firewall') as R[])
      for (const a of fw.allow ?? []) assert.ok(!(a.ports ?? []).includes('22'), fw.name);
    const ssh = synth.gcpSsh;
    const hubSsh = byKey(ssh, 'google_compute_firewall', 'hub-ssh');
    assert.deepEqual(hubSsh.source_ranges, [SSH_CIDR]);
    for (const fw of resources(ssh, 'google_compute_firewall') as R[])
      if ((fw.allow ?? []).some((a: R) => (a.ports ?? []).includes('22')))
        assert.ok(!(fw.source_ranges ?? []).includes('0.0.0.0/0'), fw.name);
  });

  it("instances admit the hub's tag only, on the single-user port", () => {
    const fw = byKey(j, 'google_compute_firewall', 'instances-from-hub');
    assert.deepEqual(fw.source_tags, ['ngsci-hub']);
    assert.equal(fw.source_ranges, undefined);
    assert.deepEqual(fw.allow, [{ protocol: 'tcp', ports: ['8888'] }]);
    assert.deepEqual(only(j, 'google_compute_instance').tags, ['ngsci-hub']);
  });

  it('Cloud SQL: private IP only, TLS only, password a Secret Manager reference', () => {
    const db = only(j, 'google_sql_database_instance');
    assert.equal(db.settings.ip_configuration.ipv4_enabled, false);
    assert.equal(
      db.settings.ip_configuration.private_network,
      ref(j, 'google_compute_network', 'network'),
    );
    assert.equal(db.settings.ip_configuration.ssl_mode, 'ENCRYPTED_ONLY');
    assert.equal(db.deletion_protection, true);
    const user = only(j, 'google_sql_user');
    assert.match(
      user.password,
      /^\$\{data\.google_secret_manager_secret_version\.[^.]+\.secret_data\}$/,
    );
  });

  it("the hub's service account: a custom role with no wildcard and no IAM administration", () => {
    const role = only(j, 'google_project_iam_custom_role');
    assert.deepEqual(role.permissions, [...GCP_TERRAFORM_PERMISSIONS]);
    for (const p of role.permissions) {
      assert.doesNotMatch(p, /\*/);
      assert.doesNotMatch(p, /^(resourcemanager|iam)\./, p);
    }
    const actAs = only(j, 'google_service_account_iam_member');
    assert.equal(actAs.role, 'roles/iam.serviceAccountUser');
    assert.equal(
      actAs.service_account_id,
      ref(j, 'google_service_account', 'instance-account', 'name'),
    );
    assert.equal(
      only(j, 'google_project_iam_member').role,
      ref(j, 'google_project_iam_custom_role', 'terraform-role', 'name'),
    );
    const bucket = only(j, 'google_storage_bucket');
    assert.equal(bucket.public_access_prevention, 'enforced');
    assert.equal(only(j, 'google_storage_bucket_iam_member').role, 'roles/storage.objectViewer');
  });

  it('matches the snapshot', () => {
    const { expected, actual } = matchSnapshot('base-gcp', scrubVolatile(j));
    assert.deepEqual(actual, expected);
  });
});

describe('Azure base stack', () => {
  const j = synth.azure;
  const rules = (json: TerraformJson, part: string): R[] =>
    byKey(json, 'azurerm_network_security_group', part).security_rule;
  const opens22 = (r: R) => r.access === 'Allow' && r.destination_port_range === '22';

  it('the instance and database subnets have no default outbound access; instances use the NAT gateway', () => {
    for (const part of ['instance-subnet', 'db-subnet'])
      assert.equal(byKey(j, 'azurerm_subnet', part).default_outbound_access_enabled, false, part);
    assert.equal(
      only(j, 'azurerm_subnet_nat_gateway_association').subnet_id,
      ref(j, 'azurerm_subnet', 'instance-subnet'),
    );
  });

  it('no SSH by default; with sshCidr, never from everywhere', () => {
    for (const nsg of resources(j, 'azurerm_network_security_group') as R[])
      assert.ok(!nsg.security_rule.some(opens22), nsg.name);
    const ssh = rules(synth.azureSsh, 'hub-firewall').filter(opens22);
    assert.deepEqual(
      ssh.map((r) => r.source_address_prefix),
      [SSH_CIDR],
    );
    assert.deepEqual(
      rules(synth.azureSsh, 'instances-firewall')
        .filter(opens22)
        .map((r) => r.source_address_prefix),
      ['10.40.0.0/24'],
    );
  });

  it('instances admit the hub subnet only; everything else inbound is denied', () => {
    const r = rules(j, 'instances-firewall');
    const allowed = r.filter((x) => x.access === 'Allow');
    assert.deepEqual(
      allowed.map((x) => [x.destination_port_range, x.source_address_prefix]),
      [['8888', '10.40.0.0/24']],
    );
    assert.ok(r.some((x) => x.access === 'Deny' && x.source_address_prefix === '*'));
  });

  it('PostgreSQL: no public access, in its delegated subnet, password a Key Vault reference', () => {
    const db = only(j, 'azurerm_postgresql_flexible_server');
    assert.equal(db.public_network_access_enabled, false);
    assert.equal(db.delegated_subnet_id, ref(j, 'azurerm_subnet', 'db-subnet'));
    assert.match(db.administrator_password, /^\$\{data\.azurerm_key_vault_secret\.[^.]+\.value\}$/);
    assert.equal(db.sku_name, 'B_Standard_B1ms');
    const pg = rules(j, 'db-firewall').filter((x) => x.access === 'Allow');
    assert.deepEqual(
      pg.map((x) => [x.destination_port_range, x.source_address_prefix]),
      [['5432', '10.40.0.0/24']],
    );
  });

  it('the hub identity: a custom role on the resource group, no wildcards, no role assignments but the conditioned one', () => {
    const role = byKey(j, 'azurerm_role_definition', 'terraform-role');
    assert.deepEqual(role.permissions[0].actions, [...AZURE_TERRAFORM_ACTIONS]);
    for (const a of role.permissions[0].actions) {
      assert.doesNotMatch(a, /\*/);
      assert.doesNotMatch(a, /^Microsoft\.Authorization\//);
    }
    assert.deepEqual(role.assignable_scopes, [ref(j, 'azurerm_resource_group', 'group')]);
    const assigner = byKey(j, 'azurerm_role_assignment', 'dataset-assigner');
    assert.match(assigner.condition, /2a2b9908-6ea1-4ae2-8e65-a410df84e7d1/);
    assert.equal(assigner.scope, ref(j, 'azurerm_storage_account', 'dataset-account'));
    const account = only(j, 'azurerm_storage_account');
    assert.equal(account.allow_nested_items_to_be_public, false);
    assert.equal(account.shared_access_key_enabled, false);
    assert.equal(only(j, 'azurerm_storage_container').container_access_type, 'private');
  });

  it('matches the snapshot', () => {
    const { expected, actual } = matchSnapshot('base-azure', scrubVolatile(j));
    assert.deepEqual(actual, expected);
  });
});
