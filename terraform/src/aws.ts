/**
 * AWS: an EC2 machine with its security group, the home EBS volume attached (never created or
 * deleted here: it belongs to the home stack), the data set as a fresh volume from a snapshot or an
 * S3 bucket mounted read-only through an instance role.
 *
 * Spot: a one-time request whose interruption terminates the machine. A persistent request with
 * interruption behaviour `stop` would keep the machine, but terminating an instance launched by a
 * persistent request re-opens the request, so a plain `terraform destroy` could leave a request that
 * launches (and bills) a new machine later. One-time + terminate is what destroy cleans up
 * completely; the home disk survives either way because it is a separate volume, and the agent
 * forwards the two-minute interruption notice to the user.
 *
 * Zones: the subnet decides the machine's availability zone, so both stacks read the subnet and put
 * every volume there; an EBS volume attaches only to a machine in its own zone.
 */
import { Construct } from 'constructs';
import { Fn, Op } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami/index.js';
import { DataAwsEbsVolume } from '@cdktf/provider-aws/lib/data-aws-ebs-volume/index.js';
import { DataAwsSubnet } from '@cdktf/provider-aws/lib/data-aws-subnet/index.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import {
  SecurityGroup,
  type SecurityGroupEgress,
  type SecurityGroupIngress,
} from '@cdktf/provider-aws/lib/security-group/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { datasetMount, renderUserData, userDataBasics } from './cloud-init.js';
import type { InstanceTypeInfo } from './instance-types.js';
import {
  awsDescription,
  DEFAULT_DISK_ATTACH_TIMEOUT_MINUTES,
  homeDiskName,
  homeTags,
  iamTagValues,
  instanceName,
  instanceTags,
  tagValues,
  TAG_MANAGED_BY,
  terraformLiteral,
  type AwsPlacement,
  type HomeOptions,
  type InstanceOptions,
} from './options.js';
import type { GpuInstanceOutputs } from './outputs.js';

export function awsProvider(scope: Construct, region: string): AwsProvider {
  return new AwsProvider(scope, 'aws', {
    region,
    defaultTags: [{ tags: { 'managed-by': TAG_MANAGED_BY } }],
  });
}

/**
 * The subnet the machine runs in, read at plan time: its availability zone is where every volume
 * goes. A configured zone (NGSCI_AWS_ZONE) is only a check that fails the plan when they differ.
 */
export function awsSubnet(scope: Construct, o: HomeOptions): DataAwsSubnet {
  const p = o.aws as AwsPlacement;
  return new DataAwsSubnet(scope, 'subnet', {
    id: p.subnetId,
    lifecycle: o.zone
      ? {
          postcondition: [
            {
              // validateHomeOptions keeps the zone to letters, digits and dashes
              condition: `\${self.availability_zone == "${o.zone}"}`,
              errorMessage:
                terraformLiteral(`NGSCI_AWS_ZONE is ${o.zone} but subnet ${p.subnetId} is in `) +
                '${self.availability_zone}' +
                "; the subnet decides where machines and their disks go: set the zone to the subnet's or leave it unset.",
            },
          ],
        }
      : undefined,
  });
}

/** The home volume: created once per (user, server), kept across stops and resizes. */
export class AwsHomeDisk extends Construct {
  readonly volume: EbsVolume;

  constructor(scope: Construct, id: string, o: HomeOptions) {
    super(scope, id);
    const subnet = awsSubnet(this, o);
    this.volume = new EbsVolume(this, 'volume', {
      availabilityZone: subnet.availabilityZone,
      size: o.homeDiskGiB,
      type: 'gp3',
      encrypted: true,
      tags: tagValues({ ...homeTags(o), Name: homeDiskName(o.user, o.server) }),
      // Re-applied at every start with the settings of the day. The size is the size at creation:
      // EC2 refuses to shrink a volume, and growing it here would leave the file system as it
      // was. A volume never moves zone either: when the subnet moves, the instance stack says
      // so instead of this plan asking to replace somebody's home.
      lifecycle: { preventDestroy: true, ignoreChanges: ['size', 'availability_zone'] },
    });
  }
}

/**
 * EC2 takes at most 16 KiB of user-data and ngsci's is larger, so the machine gets it gzipped
 * (cloud-init unpacks gzip by itself). Terraform compresses it (`base64gzip`) because the text may
 * hold a reference only Terraform can fill in (the data set volume's id). The text becomes an HCL
 * string literal here: cdktf's rawString leaves backslashes as they are, which HCL rejects.
 */
function gzippedUserData(text: string): string {
  const literal = text
    .split(/(\$\{TfToken\[[^\]]+\]\})/)
    .map((part, i) =>
      i % 2 === 1
        ? part
        : terraformLiteral(
            part
              .replace(/\\/g, '\\\\')
              .replace(/"/g, '\\"')
              .replace(/\n/g, '\\n')
              .replace(/\r/g, '\\r')
              .replace(/\t/g, '\\t'),
          ),
    )
    .join('');
  return `\${base64gzip("${literal}")}`;
}

/** Nitro machines show EBS volumes as NVMe devices named after the volume id. */
function ebsDevices(volumeId: string, deviceName: string): string[] {
  return [
    `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId}`,
    deviceName,
    deviceName.replace('/dev/sd', '/dev/xvd'),
  ];
}

export class AwsGpuInstance extends Construct implements GpuInstanceOutputs {
  readonly instance: Instance;
  readonly securityGroup: SecurityGroup;
  readonly address: string;
  readonly instanceId: string;
  readonly homeDiskId: string;

  constructor(scope: Construct, id: string, o: InstanceOptions, type: InstanceTypeInfo) {
    super(scope, id);
    const p = o.aws as AwsPlacement;
    const name = instanceName(o.instanceId);
    const tags = instanceTags(o);
    const gpu = type.gpu !== null;

    const ingress: SecurityGroupIngress[] = [
      {
        description: 'jupyterhub-singleuser, from the hub only',
        protocol: 'tcp',
        fromPort: o.singleuserPort,
        toPort: o.singleuserPort,
        cidrBlocks: [o.hubCidr],
      },
    ];
    if (o.allowSsh) {
      ingress.push({
        description: 'ssh',
        protocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        cidrBlocks: [o.sshCidr ?? o.hubCidr],
      });
    }
    this.securityGroup = new SecurityGroup(this, 'firewall', {
      name,
      description: awsDescription(`ngsci ${o.user}/${o.server}`),
      vpcId: p.vpcId,
      ingress,
      egress: awsEgress(o),
      tags: tagValues({ ...tags, Name: name }),
    });

    let ami = p.ami;
    if (!ami) {
      const image = new DataAwsAmi(
        this,
        'image',
        gpu
          ? {
              mostRecent: true,
              owners: ['amazon'],
              filter: [
                {
                  name: 'name',
                  values: ['Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *'],
                },
              ],
            }
          : {
              mostRecent: true,
              owners: ['099720109477'],
              filter: [
                {
                  name: 'name',
                  values: ['ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*'],
                },
              ],
            },
      );
      ami = image.id;
    }

    const subnet = awsSubnet(this, o);
    let dataVolume: EbsVolume | undefined;
    let profile: IamInstanceProfile | undefined;
    if (o.dataset?.kind === 'disk') {
      dataVolume = new EbsVolume(this, 'dataset', {
        availabilityZone: subnet.availabilityZone,
        snapshotId: o.dataset.ref,
        type: 'gp3',
        tags: tagValues({ ...tags, role: 'dataset', Name: `${name}-dataset` }),
      });
    } else if (o.dataset?.kind === 'bucket') {
      const role = new IamRole(this, 'role', {
        name,
        assumeRolePolicy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'ec2.amazonaws.com' },
              Action: 'sts:AssumeRole',
            },
          ],
        }),
        tags: iamTagValues(tags),
      });
      new IamRolePolicy(this, 'dataset-read', {
        role: role.name,
        name: 'ngsci-dataset-read-only',
        policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['s3:ListBucket'],
              Resource: [`arn:aws:s3:::${o.dataset.ref}`],
            },
            {
              Effect: 'Allow',
              Action: ['s3:GetObject'],
              Resource: [`arn:aws:s3:::${o.dataset.ref}/*`],
            },
          ],
        }),
      });
      profile = new IamInstanceProfile(this, 'profile', {
        name,
        role: role.name,
        tags: iamTagValues(tags),
      });
    }

    const userData = renderUserData({
      cloud: 'aws',
      ...userDataBasics(o),
      gpu,
      homeDevices: ebsDevices(o.homeDiskId.replace('-', ''), '/dev/sdf'),
      dataset: datasetMount(
        'aws',
        o.dataset,
        dataVolume ? ebsDevices(Fn.replace(dataVolume.id, '-', ''), '/dev/sdg') : [],
      ),
    });

    this.instance = new Instance(this, 'machine', {
      ami,
      instanceType: type.machineType,
      subnetId: p.subnetId,
      vpcSecurityGroupIds: [this.securityGroup.id],
      associatePublicIpAddress: o.addressKind === 'public',
      iamInstanceProfile: profile?.name,
      userDataBase64: gzippedUserData(userData),
      userDataReplaceOnChange: true,
      rootBlockDevice: {
        volumeSize: gpu ? 100 : 30,
        volumeType: 'gp3',
        encrypted: true,
        deleteOnTermination: true,
        tags: tagValues(tags),
      },
      // IMDSv2, one hop. A container on the docker bridge is one hop further, so the notebook's
      // container never gets an answer (user-data and the role's credentials included). The agent
      // runs with --network host: its requests leave from the host's own network stack, no extra
      // hop, so it still sees spot interruption notices with a limit of 1.
      metadataOptions: {
        httpTokens: 'required',
        httpPutResponseHopLimit: 1,
        httpEndpoint: 'enabled',
      },
      instanceMarketOptions: o.spot
        ? {
            marketType: 'spot',
            spotOptions: {
              spotInstanceType: 'one-time',
              instanceInterruptionBehavior: 'terminate',
            },
          }
        : undefined,
      tags: tagValues({ ...tags, Name: name }),
    });

    // EC2 refuses StopInstances for a one-time spot instance, so a spot machine's attachments are
    // not detached by stopping it: destroy forgets them (skip_destroy) and terminating the
    // instance detaches the disks. An on-demand machine is stopped first, for a clean unmount.
    const detach = o.spot ? { skipDestroy: true } : { stopInstanceBeforeDetaching: true };
    // the provider waits 5 minutes by default; a busy volume or a slow stop takes longer
    const minutes = `${o.diskAttachTimeoutMinutes ?? DEFAULT_DISK_ATTACH_TIMEOUT_MINUTES}m`;
    const timeouts = { create: minutes, delete: minutes };
    // a volume in another zone can't attach: say which, before anything is created
    const home = new DataAwsEbsVolume(this, 'home-volume', {
      filter: [{ name: 'volume-id', values: [o.homeDiskId] }],
    });
    new VolumeAttachment(this, 'home', {
      deviceName: '/dev/sdf',
      volumeId: o.homeDiskId,
      instanceId: this.instance.id,
      ...detach,
      timeouts,
      lifecycle: {
        precondition: [
          {
            condition: Op.eq(home.availabilityZone, subnet.availabilityZone),
            errorMessage:
              terraformLiteral(`The home disk ${o.homeDiskId} is in `) +
              home.availabilityZone +
              terraformLiteral(` but subnet ${p.subnetId} is in `) +
              subnet.availabilityZone +
              ". A disk attaches only in its own zone: use a subnet in the home disk's zone, or move the home disks (snapshot, then a volume from it) before changing the subnet.",
          },
        ],
      },
    });
    if (dataVolume) {
      new VolumeAttachment(this, 'dataset-attachment', {
        deviceName: '/dev/sdg',
        volumeId: dataVolume.id,
        instanceId: this.instance.id,
        ...(o.spot ? { skipDestroy: true } : {}),
        timeouts,
      });
    }

    this.address = o.addressKind === 'public' ? this.instance.publicIp : this.instance.privateIp;
    this.instanceId = this.instance.id;
    this.homeDiskId = o.homeDiskId;
  }
}

/**
 * Outbound rules. Without a policy, anywhere (image pulls, package registries, the ngsci API). With
 * one, only its networks and the hub's; security groups never filter the instance metadata service,
 * the VPC's DNS resolver or the time service, so those keep working without a rule.
 */
function awsEgress(o: InstanceOptions): SecurityGroupEgress[] {
  const rule = (description: string, cidr: string): SecurityGroupEgress => ({
    description,
    protocol: '-1',
    fromPort: 0,
    toPort: 0,
    cidrBlocks: [cidr],
  });
  if (o.egressAllowCidrs === undefined) return [rule('image pulls and the ngsci API', '0.0.0.0/0')];
  const cidrs = [...new Set([o.hubCidr, ...o.egressAllowCidrs])];
  return cidrs.map((cidr) => rule(cidr === o.hubCidr ? 'the hub' : 'egress policy', cidr));
}
