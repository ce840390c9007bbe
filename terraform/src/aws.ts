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
 */
import { Construct } from 'constructs';
import { Fn } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami/index.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import {
  SecurityGroup,
  type SecurityGroupIngress,
} from '@cdktf/provider-aws/lib/security-group/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { datasetMount, renderUserData, userDataBasics } from './cloud-init.js';
import type { InstanceTypeInfo } from './instance-types.js';
import {
  defaultZone,
  homeDiskName,
  homeTags,
  instanceName,
  instanceTags,
  TAG_MANAGED_BY,
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

/** The home volume: created once per (user, server), kept across stops and resizes. */
export class AwsHomeDisk extends Construct {
  readonly volume: EbsVolume;

  constructor(scope: Construct, id: string, o: HomeOptions) {
    super(scope, id);
    this.volume = new EbsVolume(this, 'volume', {
      availabilityZone: defaultZone('aws', o.region, o.zone) as string,
      size: o.homeDiskGiB,
      type: 'gp3',
      encrypted: true,
      tags: { ...homeTags(o), Name: homeDiskName(o.user, o.server) },
      lifecycle: { preventDestroy: true },
    });
  }
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
      description: `ngsci ${o.user}/${o.server}`,
      vpcId: p.vpcId,
      ingress,
      egress: [
        {
          description: 'image pulls and the ngsci API',
          protocol: '-1',
          fromPort: 0,
          toPort: 0,
          cidrBlocks: ['0.0.0.0/0'],
        },
      ],
      tags: { ...tags, Name: name },
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

    let dataVolume: EbsVolume | undefined;
    let profile: IamInstanceProfile | undefined;
    if (o.dataset?.kind === 'disk') {
      dataVolume = new EbsVolume(this, 'dataset', {
        availabilityZone: defaultZone('aws', o.region, o.zone) as string,
        snapshotId: o.dataset.ref,
        type: 'gp3',
        tags: { ...tags, role: 'dataset', Name: `${name}-dataset` },
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
        tags,
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
      profile = new IamInstanceProfile(this, 'profile', { name, role: role.name, tags });
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
      userData,
      userDataReplaceOnChange: true,
      rootBlockDevice: {
        volumeSize: gpu ? 100 : 30,
        volumeType: 'gp3',
        encrypted: true,
        deleteOnTermination: true,
        tags,
      },
      // IMDSv2 with one hop: containers (docker bridge) can't read metadata, user-data included
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
      tags: { ...tags, Name: name },
    });

    // EC2 refuses StopInstances for a one-time spot instance, so a spot machine's attachments are
    // not detached by stopping it: destroy forgets them (skip_destroy) and terminating the
    // instance detaches the disks. An on-demand machine is stopped first, for a clean unmount.
    const detach = o.spot ? { skipDestroy: true } : { stopInstanceBeforeDetaching: true };
    new VolumeAttachment(this, 'home', {
      deviceName: '/dev/sdf',
      volumeId: o.homeDiskId,
      instanceId: this.instance.id,
      ...detach,
    });
    if (dataVolume) {
      new VolumeAttachment(this, 'dataset-attachment', {
        deviceName: '/dev/sdg',
        volumeId: dataVolume.id,
        instanceId: this.instance.id,
        ...(o.spot ? { skipDestroy: true } : {}),
      });
    }

    this.address = o.addressKind === 'public' ? this.instance.publicIp : this.instance.privateIp;
    this.instanceId = this.instance.id;
    this.homeDiskId = o.homeDiskId;
  }
}
