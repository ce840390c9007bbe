import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { INSTANCE_TYPES } from './instance-types.js';
import type { Cloud } from './options.js';
import { synthHome, synthInstance, type TerraformJson } from './synth.js';
import {
  HUB_CIDR,
  matchSnapshot,
  only,
  options,
  resources,
  scrubVolatile,
  userData,
  type SizeClass,
} from './test-fixtures.js';

const CLOUDS: Cloud[] = ['aws', 'gcp', 'azure'];
const SIZES: SizeClass[] = ['cpu', 'gpu', 'multi-gpu'];

// synthesized once, shared by every test below: cdktf synth is the slow part
const synth: Record<string, TerraformJson> = {};
for (const cloud of CLOUDS)
  for (const size of SIZES) synth[`${cloud}/${size}`] = synthInstance(options(cloud, size));
const get = (cloud: Cloud, size: SizeClass): TerraformJson =>
  synth[`${cloud}/${size}`] as TerraformJson;

describe('InstanceStack: machine type and GPUs', () => {
  it('aws uses the instance type as is; GPUs come with the type', () => {
    assert.equal(only(get('aws', 'cpu'), 'aws_instance').instance_type, 'm6i.xlarge');
    assert.equal(only(get('aws', 'gpu'), 'aws_instance').instance_type, 'g4dn.xlarge');
    assert.equal(only(get('aws', 'multi-gpu'), 'aws_instance').instance_type, 'g5.12xlarge');
    assert.equal(only(get('aws', 'gpu'), 'aws_instance').root_block_device.volume_size, 100);
  });

  it('gcp N1 gets a guest accelerator; A2 carries its own GPUs; GPU machines terminate on maintenance', () => {
    const n1 = only(get('gcp', 'gpu'), 'google_compute_instance');
    assert.equal(n1.machine_type, 'n1-standard-4');
    assert.deepEqual(n1.guest_accelerator, [{ type: 'nvidia-tesla-t4', count: 1 }]);
    assert.equal(n1.scheduling.on_host_maintenance, 'TERMINATE');
    const a2 = only(get('gcp', 'multi-gpu'), 'google_compute_instance');
    assert.equal(a2.machine_type, 'a2-highgpu-4g');
    assert.equal(a2.guest_accelerator, undefined);
    assert.equal(a2.scheduling.on_host_maintenance, 'TERMINATE');
    const cpu = only(get('gcp', 'cpu'), 'google_compute_instance');
    assert.equal(cpu.guest_accelerator, undefined);
    assert.equal(cpu.scheduling.on_host_maintenance, 'MIGRATE');
  });

  it('azure sizes map one to one', () => {
    assert.equal(
      only(get('azure', 'cpu'), 'azurerm_linux_virtual_machine').size,
      'Standard_D4s_v5',
    );
    assert.equal(
      only(get('azure', 'gpu'), 'azurerm_linux_virtual_machine').size,
      'Standard_NC4as_T4_v3',
    );
    assert.equal(
      only(get('azure', 'multi-gpu'), 'azurerm_linux_virtual_machine').size,
      'Standard_NC24s_v3',
    );
    assert.equal(
      only(get('azure', 'gpu'), 'azurerm_linux_virtual_machine').source_image_reference.offer,
      'ubuntu-hpc',
    );
  });

  it('refuses a type whose GPUs differ from the size', () => {
    assert.throws(
      () => synthInstance(options('aws', 'gpu', { gpu: { model: 'T4', count: 4 } })),
      /g4dn.xlarge has 1x T4/,
    );
    assert.throws(
      () => synthInstance(options('aws', 'cpu', { instanceType: 'g2-standard-4' })),
      /not a known aws instance type/,
    );
  });
});

describe('InstanceStack: spot', () => {
  it('aws: one-time spot that terminates on interruption; on-demand has no market options', () => {
    const spot = only(get('aws', 'gpu'), 'aws_instance').instance_market_options;
    assert.deepEqual(spot, {
      market_type: 'spot',
      spot_options: { instance_interruption_behavior: 'terminate', spot_instance_type: 'one-time' },
    });
    assert.equal(only(get('aws', 'cpu'), 'aws_instance').instance_market_options, undefined);
  });

  it('aws: a spot machine is never stopped to detach its disks (EC2 refuses it); on-demand is', () => {
    const spotHome = only(get('aws', 'gpu'), 'aws_volume_attachment');
    assert.equal(spotHome.skip_destroy, true, 'destroy forgets the attachment; terminate detaches');
    assert.equal(spotHome.stop_instance_before_detaching, undefined);
    const onDemandHome = only(get('aws', 'cpu'), 'aws_volume_attachment');
    assert.equal(onDemandHome.stop_instance_before_detaching, true);
    assert.equal(onDemandHome.skip_destroy, undefined);
  });

  it('gcp: SPOT provisioning, preemptible, no automatic restart, STOP on termination', () => {
    assert.deepEqual(only(get('gcp', 'gpu'), 'google_compute_instance').scheduling, {
      automatic_restart: false,
      instance_termination_action: 'STOP',
      on_host_maintenance: 'TERMINATE',
      preemptible: true,
      provisioning_model: 'SPOT',
    });
    assert.equal(
      only(get('gcp', 'cpu'), 'google_compute_instance').scheduling.provisioning_model,
      'STANDARD',
    );
  });

  it('azure: priority Spot, evict by Deallocate, max bid -1', () => {
    const vm = only(get('azure', 'gpu'), 'azurerm_linux_virtual_machine');
    assert.equal(vm.priority, 'Spot');
    assert.equal(vm.eviction_policy, 'Deallocate');
    assert.equal(vm.max_bid_price, -1);
    const cpu = only(get('azure', 'cpu'), 'azurerm_linux_virtual_machine');
    assert.equal(cpu.priority, 'Regular');
    assert.equal(cpu.eviction_policy, undefined);
  });
});

describe('disks: the home disk outlives the machine', () => {
  for (const cloud of CLOUDS) {
    it(`${cloud}: the instance stack attaches the home disk but never creates or deletes it`, () => {
      const json = get(cloud, 'gpu');
      const home = options(cloud, 'gpu').homeDiskId;
      assert.equal(
        resources(json, 'aws_ebs_volume').length +
          resources(json, 'google_compute_disk').length +
          resources(json, 'azurerm_managed_disk').length,
        0,
      );
      assert.deepEqual(json.output?.home_disk_id, { value: home });
      if (cloud === 'aws') assert.equal(only(json, 'aws_volume_attachment').volume_id, home);
      if (cloud === 'gcp')
        assert.deepEqual(only(json, 'google_compute_instance').attached_disk, [
          { source: home, device_name: 'ngsci-home', mode: 'READ_WRITE' },
        ]);
      if (cloud === 'azure') {
        const a = only(json, 'azurerm_virtual_machine_data_disk_attachment');
        assert.equal(a.managed_disk_id, home);
        assert.equal(a.caching, 'ReadWrite');
      }
    });

    it(`${cloud}: the home stack holds one disk with prevent_destroy, its size set only at creation`, () => {
      const o = options(cloud, 'gpu');
      const json = synthHome(o);
      const disks = [
        ...resources(json, 'aws_ebs_volume'),
        ...resources(json, 'google_compute_disk'),
        ...resources(json, 'azurerm_managed_disk'),
      ] as Record<string, any>[];
      assert.equal(disks.length, 1);
      const lifecycle = disks[0]?.lifecycle as {
        prevent_destroy: boolean;
        ignore_changes: string[];
      };
      assert.equal(lifecycle.prevent_destroy, true);
      const sizeField = cloud === 'azure' ? 'disk_size_gb' : 'size';
      assert.ok(
        lifecycle.ignore_changes.includes(sizeField),
        `a changed size setting must never shrink or replace a home (${sizeField})`,
      );
      assert.ok(json.output?.home_disk_id);
      const size = disks[0]?.size ?? disks[0]?.disk_size_gb;
      assert.equal(size, 100);
    });
  }

  it('data set disks are read-only: gcp READ_ONLY attach, azure ReadOnly caching, ro mounts everywhere', () => {
    const gcp = synthInstance(
      options('gcp', 'gpu', {
        dataset: { kind: 'disk', ref: 'projects/ngsci-test/zones/us-central1-a/disks/imagenet' },
      }),
    );
    const disks = only(gcp, 'google_compute_instance').attached_disk as Record<string, string>[];
    assert.deepEqual(disks[1], {
      source: 'projects/ngsci-test/zones/us-central1-a/disks/imagenet',
      device_name: 'ngsci-dataset',
      mode: 'READ_ONLY',
    });
    assert.match(userData(gcp), /mount -o ro,noload/);

    const az = synthInstance(
      options('azure', 'gpu', {
        dataset: {
          kind: 'disk',
          ref: '/subscriptions/0000/resourceGroups/data/providers/Microsoft.Compute/snapshots/imagenet',
        },
      }),
    );
    const attachments = resources(az, 'azurerm_virtual_machine_data_disk_attachment') as Record<
      string,
      any
    >[];
    assert.deepEqual(attachments.map((a) => [a.lun, a.caching]).sort(), [
      [0, 'ReadWrite'],
      [1, 'ReadOnly'],
    ]);
    assert.equal(only(az, 'azurerm_managed_disk').create_option, 'Copy');

    const aws = synthInstance(
      options('aws', 'gpu', { dataset: { kind: 'disk', ref: 'snap-0123' } }),
    );
    assert.equal(only(aws, 'aws_ebs_volume').snapshot_id, 'snap-0123');
    assert.equal(resources(aws, 'aws_volume_attachment').length, 2);
    assert.match(
      userData(aws),
      /nvme-Amazon_Elastic_Block_Store_\$\{replace\(aws_ebs_volume\.[^,]+\.id, "-", ""\)\}/,
    );
  });

  it('data set buckets mount read-only with read-only credentials', () => {
    const aws = synthInstance(
      options('aws', 'cpu', { dataset: { kind: 'bucket', ref: 'ngsci-datasets' } }),
    );
    const policy = JSON.parse(only(aws, 'aws_iam_role_policy').policy as string) as {
      Statement: { Action: string[] }[];
    };
    assert.deepEqual(policy.Statement.flatMap((s) => s.Action).sort(), [
      's3:GetObject',
      's3:ListBucket',
    ]);
    assert.match(userData(aws), /mount-s3 --read-only/);

    const gcp = synthInstance(
      options('gcp', 'cpu', { dataset: { kind: 'bucket', ref: 'ngsci-datasets' } }),
    );
    assert.ok(
      (only(gcp, 'google_compute_instance').service_account.scopes as string[]).includes(
        'https://www.googleapis.com/auth/devstorage.read_only',
      ),
    );
    assert.match(userData(gcp), /gcsfuse -o ro,allow_other/);

    const ref =
      '/subscriptions/0000/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/ngscidata/blobServices/default/containers/imagenet';
    const az = synthInstance(options('azure', 'cpu', { dataset: { kind: 'bucket', ref } }));
    const role = only(az, 'azurerm_role_assignment');
    assert.equal(role.role_definition_name, 'Storage Blob Data Reader');
    assert.equal(role.scope, ref);
    assert.match(
      userData(az),
      /AZURE_STORAGE_ACCOUNT=ngscidata AZURE_STORAGE_ACCOUNT_CONTAINER=imagenet .*--read-only/,
    );
  });
});

describe('firewall: only the hub reaches the single-user port; SSH only when allowed', () => {
  const withSsh = Object.fromEntries(
    CLOUDS.map((c) => [
      c,
      synthInstance(options(c, 'gpu', { allowSsh: true, sshCidr: '192.0.2.0/28' })),
    ]),
  );

  it('aws security group', () => {
    const sg = only(get('aws', 'gpu'), 'aws_security_group');
    assert.deepEqual(
      (sg.ingress as Record<string, unknown>[]).map((r) => [r.from_port, r.to_port, r.cidr_blocks]),
      [[8888, 8888, [HUB_CIDR]]],
    );
    const ssh = only(withSsh.aws as TerraformJson, 'aws_security_group');
    assert.deepEqual(
      (ssh.ingress as Record<string, unknown>[]).map((r) => [r.from_port, r.cidr_blocks]),
      [
        [8888, [HUB_CIDR]],
        [22, ['192.0.2.0/28']],
      ],
    );
  });

  it('gcp firewall rules, with a deny above the default allow-internal', () => {
    const rules = resources(get('gcp', 'gpu'), 'google_compute_firewall') as Record<string, any>[];
    const allows = rules.filter((r) => r.allow);
    assert.deepEqual(
      allows.map((r) => [r.allow[0].ports, r.source_ranges]),
      [[['8888'], [HUB_CIDR]]],
    );
    const deny = rules.find((r) => r.deny);
    assert.equal(deny?.priority, 1000);
    assert.ok(
      rules.every(
        (r) => r.target_tags[0] === only(get('gcp', 'gpu'), 'google_compute_instance').tags[0],
      ),
    );
    const ssh = (
      resources(withSsh.gcp as TerraformJson, 'google_compute_firewall') as Record<string, any>[]
    ).filter((r) => r.allow);
    assert.deepEqual(ssh.map((r) => r.allow[0].ports[0]).sort(), ['22', '8888']);
  });

  it('azure network security group', () => {
    const nsg = only(get('azure', 'gpu'), 'azurerm_network_security_group');
    const rules = nsg.security_rule as Record<string, any>[];
    assert.deepEqual(
      rules.map((r) => [r.access, r.destination_port_range, r.source_address_prefix]),
      [
        ['Allow', '8888', HUB_CIDR],
        ['Deny', '*', '*'],
      ],
    );
    const ssh = only(withSsh.azure as TerraformJson, 'azurerm_network_security_group')
      .security_rule as Record<string, any>[];
    assert.ok(
      ssh.some(
        (r) => r.destination_port_range === '22' && r.source_address_prefix === '192.0.2.0/28',
      ),
    );
  });

  it('no rule anywhere opens port 22 unless allowSsh is set', () => {
    for (const key of Object.keys(synth)) {
      const text = JSON.stringify(synth[key]?.resource);
      assert.doesNotMatch(
        text,
        /"(from_port|to_port)":22\b|"ports":\["22"\]|"destination_port_range":"22"/,
        key,
      );
    }
  });

  it('rejects a hub CIDR that is the whole internet', () => {
    assert.throws(
      () => synthInstance(options('aws', 'cpu', { hubCidr: '0.0.0.0/0' })),
      /hubCidr: 0\.0\.0\.0\/0 is the whole internet/,
    );
  });
});

describe('tags and labels', () => {
  it('aws and azure tag user, server, size and managed-by=ngsci', () => {
    const want = { 'managed-by': 'ngsci', user: 'alice', server: 'default', size: 'gpu-t4' };
    for (const [json, type] of [
      [get('aws', 'gpu'), 'aws_instance'],
      [get('azure', 'gpu'), 'azurerm_linux_virtual_machine'],
    ] as const) {
      const tags = only(json, type).tags as Record<string, string>;
      for (const [k, v] of Object.entries(want)) assert.equal(tags[k], v, `${type} ${k}`);
    }
  });

  it('gcp labels are sanitized to what GCP accepts', () => {
    const json = synthInstance(options('gcp', 'gpu', { user: 'Bob.Smith@Example.org' }));
    const labels = only(json, 'google_compute_instance').labels as Record<string, string>;
    assert.equal(labels.user, 'bob_smith_example_org');
    assert.equal(labels['managed-by'], 'ngsci');
    assert.equal(labels.size, 'gpu-t4');
    for (const v of Object.values(labels)) assert.match(v, /^[a-z0-9_-]{0,63}$/);
  });
});

describe('backend and outputs', () => {
  it('local backend by path', () => {
    assert.deepEqual(get('aws', 'cpu').terraform?.backend, {
      local: { path: 'terraform.tfstate' },
    });
  });

  it('pg backend names a schema per stack and never a connection string', () => {
    const json = synthInstance(
      options('gcp', 'cpu', { backend: { kind: 'pg', connStringEnv: 'PG_CONN_STR' } }),
    );
    const pg = (json.terraform?.backend as { pg: Record<string, string> }).pg;
    assert.deepEqual(Object.keys(pg), ['schema_name']);
    assert.match(pg.schema_name as string, /^ngsci_tf_instance_inst_gcp_cpu_[0-9a-f]{8}$/);
    assert.throws(
      () =>
        synthInstance(
          options('gcp', 'cpu', {
            backend: { kind: 'pg', connStringEnv: 'PG_CONN_STR', connStr: 'postgres://x' } as never,
          }),
        ),
      /must not carry a connection string/,
    );
  });

  it('every instance stack outputs address, instance_id and home_disk_id', () => {
    for (const key of Object.keys(synth))
      assert.deepEqual(
        Object.keys(synth[key]?.output ?? {}).sort(),
        ['address', 'home_disk_id', 'instance_id'],
        key,
      );
    assert.match(JSON.stringify(get('aws', 'cpu').output?.address), /private_ip/);
    const pub = synthInstance(options('gcp', 'cpu', { addressKind: 'public' }));
    assert.match(JSON.stringify(pub.output?.address), /access_config\[0\]\.nat_ip/);
  });
});

describe('snapshots (provider versions scrubbed)', () => {
  for (const cloud of CLOUDS) {
    it(`${cloud} gpu instance stack matches __snapshots__/${cloud}-gpu.json`, () => {
      const { expected, actual } = matchSnapshot(`${cloud}-gpu`, scrubVolatile(get(cloud, 'gpu')));
      assert.deepEqual(actual, expected);
    });
  }
});

describe('INSTANCE_TYPES', () => {
  it('covers the families the catalog sells', () => {
    const families = new Set(Object.values(INSTANCE_TYPES).map((t) => `${t.cloud}:${t.family}`));
    for (const f of [
      'aws:g4dn',
      'aws:g5',
      'aws:g6',
      'aws:p4d',
      'aws:p5',
      'aws:m6i',
      'aws:c6i',
      'gcp:n1',
      'gcp:g2',
      'gcp:a2',
      'gcp:a3',
      'gcp:e2',
      'gcp:n2',
      'azure:NCasT4_v3',
      'azure:NCads_A100_v4',
      'azure:NCsv3',
      'azure:ND_A100_v4',
      'azure:ND_H100_v5',
      'azure:Dsv5',
    ]) {
      assert.ok(families.has(f), f);
    }
  });

  it('describes GPUs consistently', () => {
    assert.deepEqual(INSTANCE_TYPES['p5.48xlarge']?.gpu, {
      model: 'H100-80GB',
      count: 8,
      memoryGiB: 80,
    });
    assert.deepEqual(INSTANCE_TYPES['n1-standard-8+v100x1']?.accelerator, {
      type: 'nvidia-tesla-v100',
      count: 1,
    });
    assert.equal(INSTANCE_TYPES['n1-standard-8+v100x1']?.machineType, 'n1-standard-8');
    for (const [key, t] of Object.entries(INSTANCE_TYPES)) {
      assert.ok(t.vcpu > 0 && t.memoryGiB > 0, key);
      if (t.accelerator) assert.equal(t.accelerator.count, t.gpu?.count, key);
      if (t.cloud === 'gcp' && t.family === 'n1')
        assert.ok(t.accelerator, `${key} needs a guest accelerator`);
    }
  });
});
