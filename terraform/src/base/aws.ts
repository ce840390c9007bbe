/**
 * AWS base infrastructure, applied once by an operator (never by the service): a VPC with a public
 * subnet for the hub and the NAT gateway, a private subnet for instances (no public addresses,
 * outbound through NAT), two private database subnets; the hub host with an Elastic IP and a DNS
 * record; RDS PostgreSQL reachable from the hub only; security groups (instances reachable from
 * the hub only, SSH closed unless `sshCidr`); an S3 bucket for the read-only data set; and the
 * hub's instance role, allowed exactly what the instance stacks (../aws.ts) do.
 *
 * The database password: RDS creates it and keeps it in Secrets Manager
 * (`manage_master_user_password`), so it is in neither the synthesized JSON nor the Terraform
 * state; the hub's role may read that one secret. Synth-tested only: nothing here was applied.
 */
import { Construct } from 'constructs';
import { Fn, TerraformOutput } from 'cdktf';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami/index.js';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsRoute53Zone } from '@cdktf/provider-aws/lib/data-aws-route53-zone/index.js';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance/index.js';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group/index.js';
import { Eip } from '@cdktf/provider-aws/lib/eip/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway/index.js';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway/index.js';
import { Route } from '@cdktf/provider-aws/lib/route/index.js';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record/index.js';
import { Route53Zone } from '@cdktf/provider-aws/lib/route53-zone/index.js';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table/index.js';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import {
  SecurityGroup,
  type SecurityGroupIngress,
} from '@cdktf/provider-aws/lib/security-group/index.js';
import { Subnet } from '@cdktf/provider-aws/lib/subnet/index.js';
import { Vpc } from '@cdktf/provider-aws/lib/vpc/index.js';
import { TAG_MANAGED_BY } from '../options.js';
import { baseSubnets, hubFqdn, type ResolvedBaseOptions } from './options.js';

/** The instance stacks name their IAM roles and profiles `ngsci-<instance>-<hash>` (instanceName). */
export const AWS_INSTANCE_ROLE_PREFIX = 'ngsci-';

interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/**
 * What the service's terraform runs may do: exactly what the instance and home stacks create,
 * read and destroy, in this region, in this VPC, on resources tagged `managed-by=ngsci` (the
 * provider's default tag). EC2's Describe calls have no resource-level permissions, so they are
 * the only `*` resources. IAM (a read-only role per instance) only when there is a bucket data set.
 */
export function awsTerraformPolicy(a: {
  region: string;
  account: string;
  vpcId: string;
  instanceSubnetId: string;
  ownRoleArn: string;
  dbSecretArn: string;
  bucketDataset: boolean;
}): { Version: '2012-10-17'; Statement: Statement[] } {
  const ec2 = (type: string, id = '*', account = a.account) =>
    `arn:aws:ec2:${a.region}:${account}:${type}/${id}`;
  const tagged = { StringEquals: { [`ec2:ResourceTag/managed-by`]: TAG_MANAGED_BY } };
  const tagging = { StringEquals: { [`aws:RequestTag/managed-by`]: TAG_MANAGED_BY } };
  const statements: Statement[] = [
    {
      Sid: 'ReadEc2',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeImages',
        'ec2:DescribeInstanceAttribute',
        'ec2:DescribeInstanceCreditSpecifications',
        'ec2:DescribeInstanceTypes',
        'ec2:DescribeInstances',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSecurityGroupRules',
        'ec2:DescribeSecurityGroups',
        'ec2:DescribeSpotInstanceRequests',
        'ec2:DescribeSubnets',
        'ec2:DescribeTags',
        'ec2:DescribeVolumes',
        'ec2:DescribeVpcs',
      ],
      Resource: ['*'],
    },
    {
      Sid: 'RunInTheInstanceSubnet',
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: [
        ec2('subnet', a.instanceSubnetId),
        ec2('image', '*', ''),
        ec2('spot-instances-request'),
      ],
    },
    {
      Sid: 'RunInTheVpc',
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: [ec2('security-group'), ec2('network-interface')],
      Condition: { ArnEquals: { 'ec2:Vpc': ec2('vpc', a.vpcId) } },
    },
    {
      Sid: 'RunTaggedOnly',
      Effect: 'Allow',
      Action: ['ec2:RunInstances', 'ec2:CreateVolume'],
      Resource: [ec2('instance'), ec2('volume')],
      Condition: tagging,
    },
    {
      Sid: 'DataSetVolumesFromSnapshots',
      Effect: 'Allow',
      Action: ['ec2:CreateVolume'],
      Resource: [ec2('snapshot', '*', '')],
    },
    {
      Sid: 'SecurityGroupsInTheVpc',
      Effect: 'Allow',
      Action: ['ec2:CreateSecurityGroup'],
      Resource: [ec2('vpc', a.vpcId)],
    },
    {
      Sid: 'SecurityGroupsTaggedOnly',
      Effect: 'Allow',
      Action: ['ec2:CreateSecurityGroup'],
      Resource: [ec2('security-group')],
      Condition: tagging,
    },
    {
      Sid: 'TagWhileCreating',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: [
        ec2('instance'),
        ec2('volume'),
        ec2('security-group'),
        ec2('spot-instances-request'),
      ],
      Condition: {
        StringEquals: {
          'ec2:CreateAction': ['RunInstances', 'CreateVolume', 'CreateSecurityGroup'],
        },
      },
    },
    {
      Sid: 'ManageOwnResources',
      Effect: 'Allow',
      Action: [
        'ec2:AttachVolume',
        'ec2:AuthorizeSecurityGroupEgress',
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:CreateTags',
        'ec2:DeleteSecurityGroup',
        'ec2:DeleteTags',
        'ec2:DeleteVolume',
        'ec2:DetachVolume',
        'ec2:ModifyInstanceAttribute',
        'ec2:RevokeSecurityGroupEgress',
        'ec2:RevokeSecurityGroupIngress',
        'ec2:StartInstances',
        'ec2:StopInstances',
        'ec2:TerminateInstances',
      ],
      Resource: [ec2('instance'), ec2('volume'), ec2('security-group')],
      Condition: tagged,
    },
    {
      Sid: 'ReadTheDatabasePassword',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      Resource: [a.dbSecretArn],
    },
  ];
  if (a.bucketDataset) {
    const role = `arn:aws:iam::${a.account}:role/${AWS_INSTANCE_ROLE_PREFIX}*`;
    const profile = `arn:aws:iam::${a.account}:instance-profile/${AWS_INSTANCE_ROLE_PREFIX}*`;
    statements.push(
      {
        Sid: 'InstanceRolesForBucketDataSets',
        Effect: 'Allow',
        Action: [
          'iam:CreateRole',
          'iam:DeleteRole',
          'iam:DeleteRolePolicy',
          'iam:GetRole',
          'iam:GetRolePolicy',
          'iam:ListAttachedRolePolicies',
          'iam:ListInstanceProfilesForRole',
          'iam:ListRolePolicies',
          'iam:PutRolePolicy',
          'iam:TagRole',
          'iam:UntagRole',
        ],
        Resource: [role],
      },
      {
        Sid: 'InstanceProfilesForBucketDataSets',
        Effect: 'Allow',
        Action: [
          'iam:AddRoleToInstanceProfile',
          'iam:CreateInstanceProfile',
          'iam:DeleteInstanceProfile',
          'iam:GetInstanceProfile',
          'iam:RemoveRoleFromInstanceProfile',
          'iam:TagInstanceProfile',
          'iam:UntagInstanceProfile',
        ],
        Resource: [profile],
      },
      {
        Sid: 'PassInstanceRolesToEc2Only',
        Effect: 'Allow',
        Action: ['iam:PassRole'],
        Resource: [role],
        Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
      },
      {
        Sid: 'NeverTheHubsOwnRole',
        Effect: 'Deny',
        Action: ['iam:*'],
        Resource: [a.ownRoleArn],
      },
    );
  }
  return { Version: '2012-10-17', Statement: statements };
}

export class AwsBase extends Construct {
  readonly vpc: Vpc;
  readonly instanceSubnet: Subnet;
  readonly hubSecurityGroup: SecurityGroup;
  readonly instancesSecurityGroup: SecurityGroup;
  readonly dbSecurityGroup: SecurityGroup;
  readonly hub: Instance;
  readonly db: DbInstance;

  constructor(scope: Construct, id: string, o: ResolvedBaseOptions) {
    super(scope, id);
    const n = o.name;
    const nets = baseSubnets(o.networkCidr);
    const tags = (name: string, extra: Record<string, string> = {}) => ({ Name: name, ...extra });

    let zone: (i: 0 | 1) => string;
    if (o.aws?.zones) {
      const zones = o.aws.zones;
      zone = (i) => zones[i];
    } else {
      const azs = new DataAwsAvailabilityZones(this, 'zones', { state: 'available' });
      zone = (i) => Fn.element(azs.names, i);
    }
    const me = new DataAwsCallerIdentity(this, 'account', {});

    // ---- network
    this.vpc = new Vpc(this, 'network', {
      cidrBlock: o.networkCidr,
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: tags(n),
    });
    const igw = new InternetGateway(this, 'internet', { vpcId: this.vpc.id, tags: tags(n) });
    const hubSubnet = new Subnet(this, 'hub-subnet', {
      vpcId: this.vpc.id,
      cidrBlock: nets.hub[0],
      availabilityZone: zone(0),
      mapPublicIpOnLaunch: false,
      tags: tags(`${n}-hub`, { tier: 'public' }),
    });
    this.instanceSubnet = new Subnet(this, 'instance-subnet', {
      vpcId: this.vpc.id,
      cidrBlock: nets.instances,
      availabilityZone: zone(0),
      mapPublicIpOnLaunch: false,
      tags: tags(`${n}-instances`, { tier: 'private' }),
    });
    const dbSubnets = ([0, 1] as const).map(
      (i) =>
        new Subnet(this, `db-subnet-${i}`, {
          vpcId: this.vpc.id,
          cidrBlock: nets.db[i],
          availabilityZone: zone(i),
          mapPublicIpOnLaunch: false,
          tags: tags(`${n}-db-${i}`, { tier: 'private' }),
        }),
    );

    const publicRoutes = new RouteTable(this, 'public-routes', {
      vpcId: this.vpc.id,
      tags: tags(`${n}-public`),
    });
    new Route(this, 'public-default', {
      routeTableId: publicRoutes.id,
      destinationCidrBlock: '0.0.0.0/0',
      gatewayId: igw.id,
    });
    new RouteTableAssociation(this, 'hub-subnet-routes', {
      subnetId: hubSubnet.id,
      routeTableId: publicRoutes.id,
    });
    // instances: outbound through the NAT gateway (or nowhere but the VPC without one)
    const privateRoutes = new RouteTable(this, 'private-routes', {
      vpcId: this.vpc.id,
      tags: tags(`${n}-private`),
    });
    if (o.natGateway) {
      const natIp = new Eip(this, 'nat-ip', { domain: 'vpc', tags: tags(`${n}-nat`) });
      const nat = new NatGateway(this, 'nat', {
        allocationId: natIp.allocationId,
        subnetId: hubSubnet.id,
        tags: tags(n),
        dependsOn: [igw],
      });
      new Route(this, 'private-default', {
        routeTableId: privateRoutes.id,
        destinationCidrBlock: '0.0.0.0/0',
        natGatewayId: nat.id,
      });
    }
    new RouteTableAssociation(this, 'instance-subnet-routes', {
      subnetId: this.instanceSubnet.id,
      routeTableId: privateRoutes.id,
    });
    // the database subnets: the VPC's own network only, no way out
    const dbRoutes = new RouteTable(this, 'db-routes', {
      vpcId: this.vpc.id,
      tags: tags(`${n}-db`),
    });
    dbSubnets.forEach(
      (s, i) =>
        new RouteTableAssociation(this, `db-subnet-routes-${i}`, {
          subnetId: s.id,
          routeTableId: dbRoutes.id,
        }),
    );

    // ---- firewalls
    const hubIngress: SecurityGroupIngress[] = [
      {
        description: 'HTTPS',
        protocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        cidrBlocks: o.webCidrs,
      },
      {
        description: 'HTTP, for certificate challenges and the redirect to HTTPS',
        protocol: 'tcp',
        fromPort: 80,
        toPort: 80,
        cidrBlocks: o.webCidrs,
      },
    ];
    if (o.sshCidr)
      hubIngress.push({
        description: 'ssh (sshCidr)',
        protocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        cidrBlocks: [o.sshCidr],
      });
    const anywhereOut = [
      {
        description: 'outbound',
        protocol: '-1',
        fromPort: 0,
        toPort: 0,
        cidrBlocks: ['0.0.0.0/0'],
      },
    ];
    this.hubSecurityGroup = new SecurityGroup(this, 'hub-firewall', {
      name: `${n}-hub`,
      description: 'ngsci hub host',
      vpcId: this.vpc.id,
      ingress: hubIngress,
      egress: anywhereOut,
      tags: tags(`${n}-hub`),
    });
    const instanceIngress: SecurityGroupIngress[] = [
      {
        description: 'jupyterhub-singleuser, from the hub only',
        protocol: 'tcp',
        fromPort: o.singleuserPort,
        toPort: o.singleuserPort,
        securityGroups: [this.hubSecurityGroup.id],
      },
    ];
    if (o.sshCidr)
      instanceIngress.push({
        description: 'ssh, from the hub only (the jump host)',
        protocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        securityGroups: [this.hubSecurityGroup.id],
      });
    this.instancesSecurityGroup = new SecurityGroup(this, 'instances-firewall', {
      name: `${n}-instances`,
      description: 'ngsci instances: the hub only',
      vpcId: this.vpc.id,
      ingress: instanceIngress,
      egress: anywhereOut,
      tags: tags(`${n}-instances`),
    });
    this.dbSecurityGroup = new SecurityGroup(this, 'db-firewall', {
      name: `${n}-db`,
      description: 'ngsci Postgres: the hub only',
      vpcId: this.vpc.id,
      ingress: [
        {
          description: 'Postgres, from the hub only',
          protocol: 'tcp',
          fromPort: 5432,
          toPort: 5432,
          securityGroups: [this.hubSecurityGroup.id],
        },
      ],
      egress: [],
      tags: tags(`${n}-db`),
    });

    // ---- Postgres
    const dbSubnetGroup = new DbSubnetGroup(this, 'db-subnets', {
      name: `${n}-db`,
      subnetIds: dbSubnets.map((s) => s.id),
      tags: tags(`${n}-db`),
    });
    this.db = new DbInstance(this, 'db', {
      identifier: `${n}-db`,
      engine: 'postgres',
      engineVersion: o.dbVersion,
      instanceClass: o.dbTier,
      allocatedStorage: o.dbStorageGiB,
      storageType: 'gp3',
      storageEncrypted: true,
      dbName: 'ngsci',
      username: 'ngsci_admin',
      // RDS makes the password and keeps it in Secrets Manager: never in this JSON, nor in state
      manageMasterUserPassword: true,
      dbSubnetGroupName: dbSubnetGroup.name,
      vpcSecurityGroupIds: [this.dbSecurityGroup.id],
      publiclyAccessible: false,
      multiAz: o.dbHighAvailability,
      backupRetentionPeriod: 7,
      copyTagsToSnapshot: true,
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: `${n}-db-final`,
      autoMinorVersionUpgrade: true,
      tags: tags(`${n}-db`),
    });
    const dbSecretArn = this.db.masterUserSecret.get(0).secretArn;

    // ---- the hub host and the identity the service's terraform runs use
    // not `ngsci-…`: the instance stacks may manage roles by that prefix, never this one
    const roleName = `hub-terraform-runs-${n}`;
    const role = new IamRole(this, 'hub-role', {
      name: roleName,
      description: 'ngsci hub: what the instance stacks need, nothing else',
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
    });
    new IamRolePolicy(this, 'hub-terraform-policy', {
      role: role.name,
      name: 'ngsci-instance-stacks',
      policy: JSON.stringify(
        awsTerraformPolicy({
          region: o.region,
          account: me.accountId,
          vpcId: this.vpc.id,
          instanceSubnetId: this.instanceSubnet.id,
          ownRoleArn: role.arn,
          dbSecretArn,
          bucketDataset: o.datasetBucket !== undefined,
        }),
      ),
    });
    const profile = new IamInstanceProfile(this, 'hub-profile', {
      name: roleName,
      role: role.name,
    });
    const ubuntu = new DataAwsAmi(this, 'hub-image', {
      mostRecent: true,
      owners: ['099720109477'],
      filter: [
        { name: 'name', values: ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*'] },
      ],
    });
    this.hub = new Instance(this, 'hub', {
      ami: ubuntu.id,
      instanceType: o.hubMachineType,
      subnetId: hubSubnet.id,
      vpcSecurityGroupIds: [this.hubSecurityGroup.id],
      associatePublicIpAddress: false,
      iamInstanceProfile: profile.name,
      disableApiTermination: true,
      rootBlockDevice: {
        volumeSize: o.hubDiskGiB,
        volumeType: 'gp3',
        encrypted: true,
        deleteOnTermination: true,
      },
      metadataOptions: {
        httpTokens: 'required',
        httpPutResponseHopLimit: 1,
        httpEndpoint: 'enabled',
      },
      // a new image would replace the hub; moving to one is the operator's decision
      lifecycle: { ignoreChanges: ['ami'] },
      tags: tags(`${n}-hub`),
    });
    const hubIp = new Eip(this, 'hub-ip', {
      domain: 'vpc',
      instance: this.hub.id,
      tags: tags(`${n}-hub`),
    });

    // ---- DNS
    const zoneId = o.createDnsZone
      ? new Route53Zone(this, 'dns-zone', { name: o.dnsZone, tags: tags(o.dnsZone) }).zoneId
      : new DataAwsRoute53Zone(this, 'dns-zone', { name: o.dnsZone, privateZone: false }).zoneId;
    new Route53Record(this, 'hub-record', {
      zoneId,
      name: hubFqdn(o),
      type: 'A',
      ttl: 300,
      records: [hubIp.publicIp],
    });

    // ---- the read-only data set
    if (o.datasetBucket) {
      const bucket = new S3Bucket(this, 'dataset', {
        bucket: o.datasetBucket,
        tags: tags(o.datasetBucket, { role: 'dataset' }),
        lifecycle: { preventDestroy: true },
      });
      new S3BucketPublicAccessBlock(this, 'dataset-private', {
        bucket: bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      });
      new S3BucketOwnershipControls(this, 'dataset-owner', {
        bucket: bucket.id,
        rule: { objectOwnership: 'BucketOwnerEnforced' },
      });
      new S3BucketServerSideEncryptionConfigurationA(this, 'dataset-encryption', {
        bucket: bucket.id,
        rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
      });
    }

    // ---- what the service's settings become (docs/clouds.md, "Base infrastructure")
    const out = (name: string, value: string, description: string) =>
      new TerraformOutput(this, `output-${name}`, { value, description }).overrideLogicalId(name);
    out('hub_fqdn', hubFqdn(o), 'the hub host name (DNS A record)');
    out('hub_public_ip', hubIp.publicIp, 'the hub host public address');
    out('hub_cidr', `${this.hub.privateIp}/32`, 'NGSCI_TERRAFORM_HUB_CIDR');
    out('instance_subnet', this.instanceSubnet.id, 'NGSCI_AWS_SUBNET_ID');
    out('network', this.vpc.id, 'NGSCI_AWS_VPC_ID');
    out('instance_zone', this.instanceSubnet.availabilityZone, 'NGSCI_AWS_ZONE (optional)');
    out('instances_security_group', this.instancesSecurityGroup.id, 'the hub-only group');
    out('database_host', this.db.address, 'the Postgres host for DATABASE_URL');
    out(
      'database_password_ref',
      dbSecretArn,
      'Secrets Manager secret with the Postgres password (user ngsci_admin, database ngsci)',
    );
    out('dataset', o.datasetBucket ? `bucket:${o.datasetBucket}` : '', 'NGSCI_AWS_DATASET');
    out('terraform_identity', role.arn, "the hub's instance role (the service's terraform runs)");
  }
}
