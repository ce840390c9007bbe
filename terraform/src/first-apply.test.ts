/**
 * What only a real apply would otherwise show (issue 11): zones that disagree, names that break
 * the plan, a home disk a changed setting would shrink or replace, egress, metadata exposure.
 * Synth assertions on the Terraform JSON; no terraform binary or cloud runs here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { renderUserData, userDataBasics } from './cloud-init.js';
import type { Cloud } from './options.js';
import { synthHome, synthInstance, type TerraformJson } from './synth.js';
import {
  HUB_CIDR,
  hclStringText,
  only,
  options,
  resources,
  strings,
  userData,
} from './test-fixtures.js';

const CLOUDS: Cloud[] = ['aws', 'gcp', 'azure'];
const data = (json: TerraformJson, type: string): Record<string, any>[] =>
  Object.values(json.data?.[type] ?? {});

describe('zones: the home disk and the machine are always in one zone', () => {
  it('aws: the home volume goes where the subnet is, read at plan time', () => {
    const home = synthHome(options('aws', 'gpu'));
    const [subnet] = data(home, 'aws_subnet');
    assert.equal(subnet?.id, 'subnet-0abc');
    const volume = only(home, 'aws_ebs_volume');
    assert.match(volume.availability_zone, /^\$\{data\.aws_subnet\.[^.]+\.availability_zone\}$/);
    assert.doesNotMatch(JSON.stringify(home), /us-east-1a/, 'no zone made up from the region');
  });

  it('aws: a data set volume goes where the subnet is too', () => {
    const json = synthInstance(
      options('aws', 'gpu', { dataset: { kind: 'disk', ref: 'snap-0123' } }),
    );
    assert.match(
      only(json, 'aws_ebs_volume').availability_zone,
      /^\$\{data\.aws_subnet\.[^.]+\.availability_zone\}$/,
    );
  });

  it('aws: a configured zone is checked against the subnet, with a message naming both', () => {
    for (const json of [
      synthHome(options('aws', 'gpu', { zone: 'us-east-1b' })),
      synthInstance(options('aws', 'gpu', { zone: 'us-east-1b' })),
    ]) {
      const [subnet] = data(json, 'aws_subnet');
      const [check] = subnet?.lifecycle.postcondition as Record<string, string>[];
      assert.equal(check?.condition, '${self.availability_zone == "us-east-1b"}');
      assert.match(
        check?.error_message ?? '',
        /NGSCI_AWS_ZONE is us-east-1b but subnet subnet-0abc is in \$\{self\.availability_zone\}/,
      );
    }
    const [unchecked] = data(synthHome(options('aws', 'gpu')), 'aws_subnet');
    assert.equal(unchecked?.lifecycle, undefined);
  });

  it('aws: the home attachment refuses a home volume in another zone than the subnet', () => {
    const json = synthInstance(options('aws', 'gpu'));
    const [volume] = data(json, 'aws_ebs_volume');
    assert.deepEqual(volume?.filter, [{ name: 'volume-id', values: ['vol-0123456789abcdef0'] }]);
    const attachment = only(json, 'aws_volume_attachment');
    const [check] = attachment.lifecycle.precondition as Record<string, string>[];
    assert.match(
      check?.condition ?? '',
      /^\$\{\(data\.aws_ebs_volume\.\S+\.availability_zone == data\.aws_subnet\.\S+\.availability_zone\)\}$/,
    );
    assert.match(
      check?.error_message ?? '',
      /The home disk vol-0123456789abcdef0 is in \$\{data\.aws_ebs_volume/,
    );
  });

  it('gcp: one zone for provider, home disk and machine', () => {
    const o = options('gcp', 'gpu', {
      zone: 'us-central1-a',
      homeDiskId: 'projects/ngsci-test/zones/us-central1-a/disks/h',
    });
    assert.equal(only(synthHome(o), 'google_compute_disk').zone, 'us-central1-a');
    const json = synthInstance(o);
    assert.equal(only(json, 'google_compute_instance').zone, 'us-central1-a');
    assert.equal((json.provider?.google?.[0] as { zone: string }).zone, 'us-central1-a');
  });

  it('gcp: refuses a home disk or data set disk in another zone before anything is planned', () => {
    assert.throws(
      () => synthInstance(options('gcp', 'gpu', { zone: 'us-central1-b' })),
      /the home disk is in zone us-central1-a but the machine would be in us-central1-b/,
    );
    assert.throws(
      () =>
        synthInstance(
          options('gcp', 'gpu', {
            dataset: { kind: 'disk', ref: 'projects/p/zones/us-central1-c/disks/imagenet' },
          }),
        ),
      /the data set disk is in zone us-central1-c but the machine would be in us-central1-a/,
    );
  });

  it('azure: the zone places the home disk, the VM, its public IP and the data set copy alike', () => {
    const o = options('azure', 'gpu', {
      zone: '2',
      addressKind: 'public',
      dataset: {
        kind: 'disk',
        ref: '/subscriptions/0/resourceGroups/d/providers/Microsoft.Compute/snapshots/s',
      },
    });
    assert.equal(only(synthHome(o), 'azurerm_managed_disk').zone, '2');
    const json = synthInstance(o);
    assert.equal(only(json, 'azurerm_linux_virtual_machine').zone, '2');
    assert.deepEqual(only(json, 'azurerm_public_ip').zones, ['2']);
    assert.equal(only(json, 'azurerm_managed_disk').zone, '2');
  });
});

describe('names: every JupyterHub user and server name survives the plan', () => {
  const user = 'we${x}ird %{y} "q" ünï ☃';
  const server = 'srv$${z}';

  /**
   * The text Terraform reads from a string, or null when the string holds a template (which would
   * break the plan, or run in it). Terraform's scanner at each position: `$${` and `%%{` are the
   * literal openers, `${` and `%{` start a template, anything else is itself.
   */
  const literal = (text: string): string | null => {
    let out = '';
    for (let i = 0; i < text.length;) {
      if (text.startsWith('$${', i) || text.startsWith('%%{', i)) {
        out += text.slice(i + 1, i + 3);
        i += 3;
      } else if (text.startsWith('${', i) || text.startsWith('%{', i)) return null;
      else out += text[i++];
    }
    return out;
  };

  for (const cloud of CLOUDS) {
    it(`${cloud}: no user-controlled text reaches the configuration unescaped`, () => {
      const json = synthInstance(options(cloud, 'gpu', { user, server }));
      const home = synthHome(options(cloud, 'gpu', { user, server }));
      for (const [path, text] of [...strings(json.resource), ...strings(home.resource)]) {
        // references Terraform resolves, our own checks' messages (which name the zones they
        // read), and the user-data (cloud-init.ts keeps its own text literal)
        if (
          /^\$\{[^{}]+\}$/.test(text) ||
          /user_data|user-data|custom_data|\.condition$|\.error_message$/.test(path)
        )
          continue;
        assert.notEqual(literal(text), null, `${cloud} ${path}: ${text}`);
      }
    });
  }

  it('aws and azure tags carry the name as written, escaped for Terraform', () => {
    const aws = only(synthInstance(options('aws', 'gpu', { user, server })), 'aws_instance');
    assert.equal(literal(aws.tags.user), user);
    assert.equal(literal(aws.tags.server), server);
    const azure = only(
      synthInstance(options('azure', 'gpu', { user, server })),
      'azurerm_linux_virtual_machine',
    );
    assert.equal(literal(azure.tags.user), user);
  });

  it('aws: the security group description and IAM tags hold only what AWS accepts', () => {
    const json = synthInstance(
      options('aws', 'gpu', { user, server, dataset: { kind: 'bucket', ref: 'b' } }),
    );
    const description = only(json, 'aws_security_group').description as string;
    assert.match(description, /^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]+$/);
    assert.equal(description, 'ngsci we$${x}ird _{y} _q_ _n_ _/srv$$${z}');
    for (const type of ['aws_iam_role', 'aws_iam_instance_profile'])
      for (const v of Object.values(only(json, type).tags as Record<string, string>))
        assert.match(v, /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, `${type}: ${v}`);
  });

  it('gcp labels stay within what GCP accepts', () => {
    const labels = only(
      synthInstance(options('gcp', 'gpu', { user, server })),
      'google_compute_instance',
    ).labels as Record<string, string>;
    for (const v of Object.values(labels)) assert.match(v, /^[a-z0-9_-]{0,63}$/);
  });
});

describe('home disk: a changed setting never shrinks or replaces a home', () => {
  const sizeField: Record<Cloud, [string, string]> = {
    aws: ['aws_ebs_volume', 'size'],
    gcp: ['google_compute_disk', 'size'],
    azure: ['azurerm_managed_disk', 'disk_size_gb'],
  };
  for (const cloud of CLOUDS) {
    it(`${cloud}: the size is set at creation and ignored afterwards; destroy stays blocked`, () => {
      const [type, field] = sizeField[cloud];
      const small = only(synthHome(options(cloud, 'gpu', { homeDiskGiB: 20 })), type);
      assert.equal(small[field], 20, 'a new home gets the size of the day');
      assert.equal(small.lifecycle.prevent_destroy, true);
      assert.ok((small.lifecycle.ignore_changes as string[]).includes(field));
    });
  }

  it('aws: the home volume never moves zone with the subnet (the instance stack says why instead)', () => {
    const volume = only(synthHome(options('aws', 'gpu')), 'aws_ebs_volume');
    assert.ok((volume.lifecycle.ignore_changes as string[]).includes('availability_zone'));
  });

  it('attachments wait long enough for a slow detach, and the wait is configurable', () => {
    for (const [cloud, type] of [
      ['aws', 'aws_volume_attachment'],
      ['azure', 'azurerm_virtual_machine_data_disk_attachment'],
    ] as const) {
      assert.deepEqual(only(synthInstance(options(cloud, 'gpu')), type).timeouts, {
        create: '30m',
        delete: '30m',
      });
      assert.deepEqual(
        only(synthInstance(options(cloud, 'gpu', { diskAttachTimeoutMinutes: 45 })), type).timeouts,
        { create: '45m', delete: '45m' },
      );
    }
    assert.throws(
      () => synthInstance(options('aws', 'gpu', { diskAttachTimeoutMinutes: 0 })),
      /diskAttachTimeoutMinutes must be an integer between 1 and 240/,
    );
  });

  it('azure: the data set copy is deleted only after the VM it is attached to', () => {
    const json = synthInstance(
      options('azure', 'gpu', {
        dataset: {
          kind: 'disk',
          ref: '/subscriptions/0/resourceGroups/d/providers/Microsoft.Compute/snapshots/s',
        },
      }),
    );
    const [copy] = Object.keys(json.resource?.azurerm_managed_disk ?? {});
    assert.deepEqual(only(json, 'azurerm_linux_virtual_machine').depends_on, [
      `azurerm_managed_disk.${copy}`,
    ]);
  });
});

describe('egress policy', () => {
  const policy = ['10.1.0.0/16', '198.51.100.0/24'];

  it('aws: unrestricted by default; with a policy only its networks and the hub', () => {
    const open = only(synthInstance(options('aws', 'gpu')), 'aws_security_group');
    assert.deepEqual(
      (open.egress as Record<string, any>[]).map((r) => r.cidr_blocks),
      [['0.0.0.0/0']],
    );
    const sg = only(
      synthInstance(options('aws', 'gpu', { egressAllowCidrs: policy })),
      'aws_security_group',
    );
    const egress = sg.egress as Record<string, any>[];
    assert.deepEqual(egress.map((r) => r.cidr_blocks[0]).sort(), [HUB_CIDR, ...policy].sort());
    assert.ok(egress.every((r) => r.protocol === '-1'));
    assert.doesNotMatch(JSON.stringify(egress), /0\.0\.0\.0\/0/);
  });

  it('gcp: no egress rules by default; with a policy an allow above a deny-all', () => {
    const egressRules = (json: TerraformJson) =>
      (resources(json, 'google_compute_firewall') as Record<string, any>[]).filter(
        (r) => r.direction === 'EGRESS',
      );
    assert.deepEqual(egressRules(synthInstance(options('gcp', 'gpu'))), []);
    const json = synthInstance(options('gcp', 'gpu', { egressAllowCidrs: policy }));
    const rules = egressRules(json);
    const allow = rules.find((r) => r.allow);
    const deny = rules.find((r) => r.deny);
    assert.deepEqual(allow?.destination_ranges, [HUB_CIDR, ...policy]);
    assert.deepEqual(deny?.destination_ranges, ['0.0.0.0/0']);
    assert.ok(allow.priority < deny.priority, 'the allow wins over the deny');
    assert.ok(deny.priority < 65535, 'the deny wins over the implied allow-all egress');
    const tag = only(json, 'google_compute_instance').tags[0];
    assert.ok(rules.every((r) => r.target_tags[0] === tag));
  });

  it('azure: no outbound rules by default; with a policy the platform, hub and policy, then deny', () => {
    const outbound = (json: TerraformJson) =>
      (only(json, 'azurerm_network_security_group').security_rule as Record<string, any>[]).filter(
        (r) => r.direction === 'Outbound',
      );
    assert.deepEqual(outbound(synthInstance(options('azure', 'gpu'))), []);
    const rules = outbound(synthInstance(options('azure', 'gpu', { egressAllowCidrs: policy })));
    const allow = rules.find((r) => r.access === 'Allow');
    const deny = rules.find((r) => r.access === 'Deny');
    assert.deepEqual(allow?.destination_address_prefixes, [
      '168.63.129.16/32',
      '169.254.169.254/32',
      HUB_CIDR,
      ...policy,
    ]);
    assert.equal(deny?.destination_address_prefix, '*');
    assert.ok(allow.priority < deny.priority);
    assert.ok(deny.priority < 65000, "the deny wins over Azure's default outbound allows");
  });

  it('gcp: every firewall rule name stays within what GCP accepts (63 characters)', () => {
    const json = synthInstance(
      options('gcp', 'gpu', {
        instanceId: '0b6f2a9e-5c1d-4e8f-9a7b-3c2d1e0f9a8b',
        allowSsh: true,
        egressAllowCidrs: policy,
      }),
    );
    for (const r of resources(json, 'google_compute_firewall') as Record<string, string>[])
      assert.match(r.name ?? '', /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, r.name);
  });

  it('refuses a policy network the clouds would reject', () => {
    assert.throws(
      () => synthInstance(options('gcp', 'gpu', { egressAllowCidrs: ['10.1.0.1/16'] })),
      /egressAllowCidrs\[0\]: 10\.1\.0\.1\/16 has host bits set; the network is 10\.1\.0\.0\/16/,
    );
  });
});

describe('metadata exposure', () => {
  it('aws: IMDSv2 only, one hop: the bridged notebook container gets no answer, the host-network agent does', () => {
    for (const size of ['cpu', 'gpu'] as const)
      assert.deepEqual(only(synthInstance(options('aws', size)), 'aws_instance').metadata_options, {
        http_endpoint: 'enabled',
        http_put_response_hop_limit: 1,
        http_tokens: 'required',
      });
  });

  it('gcp: project SSH keys blocked and no serial console, with or without SSH allowed', () => {
    for (const allowSsh of [false, true]) {
      const metadata = only(
        synthInstance(
          options('gcp', 'gpu', { allowSsh, sshAuthorizedKeys: ['ssh-ed25519 AAAA k'] }),
        ),
        'google_compute_instance',
      ).metadata as Record<string, string>;
      assert.equal(metadata['block-project-ssh-keys'], 'TRUE', `allowSsh=${allowSsh}`);
      assert.equal(metadata['serial-port-enable'], 'FALSE', `allowSsh=${allowSsh}`);
    }
  });
});

describe('aws user-data fits EC2', () => {
  // EC2 refuses more than 16 KiB of user-data; the AWS provider refuses a longer user_data at plan
  const EC2_USER_DATA_LIMIT = 16384;

  it('goes gzipped (base64gzip at plan time), small enough, and reads back as the cloud-init text', () => {
    const o = options('aws', 'gpu');
    const machine = only(synthInstance(o), 'aws_instance');
    assert.equal(machine.user_data, undefined);
    const [, literal] = /^\$\{base64gzip\("([\s\S]*)"\)\}$/.exec(machine.user_data_base64) ?? [];
    const text = renderUserData({
      cloud: 'aws',
      ...userDataBasics(o),
      gpu: true,
      homeDevices: [
        '/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0',
        '/dev/sdf',
        '/dev/xvdf',
      ],
      dataset: null,
    });
    assert.equal(hclStringText(literal ?? ''), text);
    assert.ok(gzipSync(text).length < EC2_USER_DATA_LIMIT, 'gzipped, it fits');
  });

  it('keeps the data set volume reference for Terraform to fill in', () => {
    const json = synthInstance(
      options('aws', 'gpu', { dataset: { kind: 'disk', ref: 'snap-0123' } }),
    );
    assert.match(
      userData(json),
      /nvme-Amazon_Elastic_Block_Store_\$\{replace\(aws_ebs_volume\.[^,]+\.id, "-", ""\)\}/,
    );
  });
});
