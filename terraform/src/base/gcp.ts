/**
 * GCP base infrastructure, applied once by an operator: a custom VPC network (no automatic
 * subnets) with a hub subnet and a private instance subnet (no external addresses; outbound
 * through Cloud NAT), firewall rules (HTTPS to the hub; the single-user port from the hub's tag
 * only; SSH only with `sshCidr`), the hub VM with a static address and a DNS record, Cloud SQL for
 * PostgreSQL on a private IP only, a bucket for the read-only data set, and two service accounts:
 * the hub's (a custom role with exactly what the instance stacks do) and the instances' (no role
 * but reading the data set bucket).
 *
 * The database password is read at plan time from Secret Manager (`gcp.dbPasswordSecret`, filled
 * by the operator): the JSON holds the secret's name only. The value does pass through the
 * Terraform state (the data source and the SQL user), so the state must be kept as a secret.
 * Synth-tested only: nothing here was applied.
 */
import { Construct } from 'constructs';
import { TerraformOutput } from 'cdktf';
import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { ComputeAddress } from '@cdktf/provider-google/lib/compute-address/index.js';
import { ComputeFirewall } from '@cdktf/provider-google/lib/compute-firewall/index.js';
import { ComputeGlobalAddress } from '@cdktf/provider-google/lib/compute-global-address/index.js';
import { ComputeInstance } from '@cdktf/provider-google/lib/compute-instance/index.js';
import { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import { ComputeRouter } from '@cdktf/provider-google/lib/compute-router/index.js';
import { ComputeRouterNat } from '@cdktf/provider-google/lib/compute-router-nat/index.js';
import { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { DataGoogleDnsManagedZone } from '@cdktf/provider-google/lib/data-google-dns-managed-zone/index.js';
import { DataGoogleSecretManagerSecretVersion } from '@cdktf/provider-google/lib/data-google-secret-manager-secret-version/index.js';
import { DnsManagedZone } from '@cdktf/provider-google/lib/dns-managed-zone/index.js';
import { DnsRecordSet } from '@cdktf/provider-google/lib/dns-record-set/index.js';
import { ProjectIamCustomRole } from '@cdktf/provider-google/lib/project-iam-custom-role/index.js';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member/index.js';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account/index.js';
import { ServiceAccountIamMember } from '@cdktf/provider-google/lib/service-account-iam-member/index.js';
import { ServiceNetworkingConnection } from '@cdktf/provider-google/lib/service-networking-connection/index.js';
import { SqlDatabase } from '@cdktf/provider-google/lib/sql-database/index.js';
import { SqlDatabaseInstance } from '@cdktf/provider-google/lib/sql-database-instance/index.js';
import { SqlUser } from '@cdktf/provider-google/lib/sql-user/index.js';
import { StorageBucket } from '@cdktf/provider-google/lib/storage-bucket/index.js';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member/index.js';
import { baseSubnets, hubFqdn, type BaseGcp, type ResolvedBaseOptions } from './options.js';

/**
 * The custom role of the hub's service account: what ../gcp.ts's instance and home stacks create,
 * read, attach and delete (VMs, disks, per-instance firewall rules), and nothing else. Project
 * level, because per-instance names are not known in advance; the service account the VMs run as
 * is granted separately and only on the one instance account (`iam.serviceAccountUser`).
 */
export const GCP_TERRAFORM_PERMISSIONS = [
  'compute.acceleratorTypes.get',
  'compute.disks.create',
  'compute.disks.delete',
  'compute.disks.get',
  'compute.disks.setLabels',
  'compute.disks.use',
  'compute.disks.useReadOnly',
  'compute.firewalls.create',
  'compute.firewalls.delete',
  'compute.firewalls.get',
  'compute.firewalls.update',
  'compute.globalOperations.get',
  'compute.images.get',
  'compute.images.getFromFamily',
  'compute.images.useReadOnly',
  'compute.instances.attachDisk',
  'compute.instances.create',
  'compute.instances.delete',
  'compute.instances.detachDisk',
  'compute.instances.get',
  'compute.instances.setLabels',
  'compute.instances.setMetadata',
  'compute.instances.setServiceAccount',
  'compute.instances.setTags',
  'compute.instances.stop',
  'compute.machineTypes.get',
  'compute.networks.get',
  'compute.networks.updatePolicy',
  'compute.subnetworks.get',
  'compute.subnetworks.use',
  'compute.zoneOperations.get',
  'compute.zones.get',
] as const;

export function gcpBaseProvider(scope: Construct, o: ResolvedBaseOptions): GoogleProvider {
  const g = o.gcp as BaseGcp;
  return new GoogleProvider(scope, 'google', {
    project: g.project,
    region: o.region,
    zone: `${o.region}-a`,
  });
}

export class GcpBase extends Construct {
  readonly network: ComputeNetwork;
  readonly instanceSubnet: ComputeSubnetwork;
  readonly hub: ComputeInstance;
  readonly db: SqlDatabaseInstance;

  constructor(scope: Construct, id: string, o: ResolvedBaseOptions) {
    super(scope, id);
    const g = o.gcp as BaseGcp;
    const n = o.name;
    const nets = baseSubnets(o.networkCidr);
    const zone = `${o.region}-a`;
    const hubTag = `${n}-hub`;
    const labels = { 'managed-by': 'ngsci' };

    // ---- network
    this.network = new ComputeNetwork(this, 'network', {
      name: n,
      autoCreateSubnetworks: false,
      deleteDefaultRoutesOnCreate: false,
    });
    const hubSubnet = new ComputeSubnetwork(this, 'hub-subnet', {
      name: `${n}-hub`,
      network: this.network.id,
      region: o.region,
      ipCidrRange: nets.hub[0],
      privateIpGoogleAccess: true,
    });
    this.instanceSubnet = new ComputeSubnetwork(this, 'instance-subnet', {
      name: `${n}-instances`,
      network: this.network.id,
      region: o.region,
      ipCidrRange: nets.instances,
      privateIpGoogleAccess: true,
    });
    if (o.natGateway) {
      const router = new ComputeRouter(this, 'router', {
        name: n,
        network: this.network.id,
        region: o.region,
      });
      // only the instance subnet goes out through NAT; the hub has its own address
      new ComputeRouterNat(this, 'nat', {
        name: n,
        router: router.name,
        region: o.region,
        natIpAllocateOption: 'AUTO_ONLY',
        sourceSubnetworkIpRangesToNat: 'LIST_OF_SUBNETWORKS',
        subnetwork: [{ name: this.instanceSubnet.id, sourceIpRangesToNat: ['ALL_IP_RANGES'] }],
      });
    }

    // ---- firewalls (a custom network denies every inbound packet these don't allow)
    new ComputeFirewall(this, 'hub-web', {
      name: `${n}-hub-web`,
      network: this.network.id,
      direction: 'INGRESS',
      allow: [{ protocol: 'tcp', ports: ['443', '80'] }],
      sourceRanges: o.webCidrs,
      targetTags: [hubTag],
    });
    new ComputeFirewall(this, 'instances-from-hub', {
      name: `${n}-instances-from-hub`,
      network: this.network.id,
      direction: 'INGRESS',
      allow: [{ protocol: 'tcp', ports: [String(o.singleuserPort), ...(o.sshCidr ? ['22'] : [])] }],
      sourceTags: [hubTag],
    });
    if (o.sshCidr)
      new ComputeFirewall(this, 'hub-ssh', {
        name: `${n}-hub-ssh`,
        network: this.network.id,
        direction: 'INGRESS',
        allow: [{ protocol: 'tcp', ports: ['22'] }],
        sourceRanges: [o.sshCidr],
        targetTags: [hubTag],
      });

    // ---- Postgres on a private address only
    const peering = new ComputeGlobalAddress(this, 'db-peering-range', {
      name: `${n}-db-peering`,
      purpose: 'VPC_PEERING',
      addressType: 'INTERNAL',
      prefixLength: 20,
      network: this.network.id,
    });
    const connection = new ServiceNetworkingConnection(this, 'db-peering', {
      network: this.network.id,
      service: 'servicenetworking.googleapis.com',
      reservedPeeringRanges: [peering.name],
    });
    this.db = new SqlDatabaseInstance(this, 'db', {
      name: `${n}-db`,
      region: o.region,
      databaseVersion: `POSTGRES_${o.dbVersion}`,
      deletionProtection: true,
      settings: {
        tier: o.dbTier,
        edition: 'ENTERPRISE',
        availabilityType: o.dbHighAvailability ? 'REGIONAL' : 'ZONAL',
        diskType: 'PD_SSD',
        diskSize: o.dbStorageGiB,
        diskAutoresize: true,
        deletionProtectionEnabled: true,
        userLabels: labels,
        ipConfiguration: {
          ipv4Enabled: false,
          privateNetwork: this.network.id,
          sslMode: 'ENCRYPTED_ONLY',
        },
        backupConfiguration: { enabled: true, pointInTimeRecoveryEnabled: true },
      },
      dependsOn: [connection],
    });
    new SqlDatabase(this, 'database', { name: 'ngsci', instance: this.db.name });
    const password = new DataGoogleSecretManagerSecretVersion(this, 'db-password', {
      secret: g.dbPasswordSecret,
    });
    new SqlUser(this, 'db-user', {
      name: 'ngsci',
      instance: this.db.name,
      password: password.secretData,
    });

    // ---- identities
    const hubAccount = new ServiceAccount(this, 'hub-account', {
      accountId: `${n}-hub`,
      displayName: 'ngsci hub: the instance stacks, nothing else',
    });
    const instanceAccount = new ServiceAccount(this, 'instance-account', {
      accountId: `${n}-instances`,
      displayName: 'ngsci instances (no roles; reads the data set bucket)',
    });
    const role = new ProjectIamCustomRole(this, 'terraform-role', {
      roleId: `${n.replace(/-/g, '_')}_instance_stacks`,
      title: 'ngsci instance stacks',
      description: 'What the ngsci service needs to create and remove its instances',
      permissions: [...GCP_TERRAFORM_PERMISSIONS],
    });
    new ProjectIamMember(this, 'hub-terraform-role', {
      project: g.project,
      role: role.name,
      member: hubAccount.member,
    });
    // the hub may start VMs as the instance account, and as no other
    new ServiceAccountIamMember(this, 'hub-acts-as-instances', {
      serviceAccountId: instanceAccount.name,
      role: 'roles/iam.serviceAccountUser',
      member: hubAccount.member,
    });

    // ---- the hub
    const hubIp = new ComputeAddress(this, 'hub-ip', { name: `${n}-hub`, region: o.region });
    this.hub = new ComputeInstance(this, 'hub', {
      name: `${n}-hub`,
      machineType: o.hubMachineType,
      zone,
      tags: [hubTag],
      labels,
      deletionProtection: true,
      bootDisk: {
        initializeParams: {
          image: 'ubuntu-os-cloud/ubuntu-2404-lts-amd64',
          size: o.hubDiskGiB,
          type: 'pd-balanced',
        },
      },
      networkInterface: [{ subnetwork: hubSubnet.id, accessConfig: [{ natIp: hubIp.address }] }],
      serviceAccount: {
        email: hubAccount.email,
        scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      },
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true },
      metadata: { 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' },
      lifecycle: { ignoreChanges: ['boot_disk[0].initialize_params[0].image'] },
    });

    // ---- DNS
    const zoneName = o.dnsZoneName ?? o.dnsZone.replace(/\./g, '-');
    const managedZone = o.createDnsZone
      ? new DnsManagedZone(this, 'dns-zone', {
          name: zoneName,
          dnsName: `${o.dnsZone}.`,
          labels,
        }).name
      : new DataGoogleDnsManagedZone(this, 'dns-zone', { name: zoneName }).name;
    new DnsRecordSet(this, 'hub-record', {
      managedZone,
      name: `${hubFqdn(o)}.`,
      type: 'A',
      ttl: 300,
      rrdatas: [hubIp.address],
    });

    // ---- the read-only data set
    if (o.datasetBucket) {
      const bucket = new StorageBucket(this, 'dataset', {
        name: o.datasetBucket,
        location: o.region.toUpperCase(),
        uniformBucketLevelAccess: true,
        publicAccessPrevention: 'enforced',
        labels: { ...labels, role: 'dataset' },
        lifecycle: { preventDestroy: true },
      });
      new StorageBucketIamMember(this, 'instances-read-dataset', {
        bucket: bucket.name,
        role: 'roles/storage.objectViewer',
        member: instanceAccount.member,
      });
    }

    const out = (name: string, value: string, description: string) =>
      new TerraformOutput(this, `output-${name}`, { value, description }).overrideLogicalId(name);
    out('hub_fqdn', hubFqdn(o), 'the hub host name (DNS A record)');
    out('hub_public_ip', hubIp.address, 'the hub host public address');
    out('hub_cidr', `${this.hub.networkInterface.get(0).networkIp}/32`, 'NGSCI_TERRAFORM_HUB_CIDR');
    out('instance_subnet', this.instanceSubnet.name, 'NGSCI_GCP_SUBNETWORK');
    out('network', this.network.name, 'NGSCI_GCP_NETWORK');
    out('instance_service_account', instanceAccount.email, 'NGSCI_GCP_SERVICE_ACCOUNT');
    out('database_host', this.db.privateIpAddress, 'the Postgres host for DATABASE_URL');
    out(
      'database_password_ref',
      g.dbPasswordSecret,
      'Secret Manager secret with the Postgres password (user ngsci, database ngsci)',
    );
    out('dataset', o.datasetBucket ? `bucket:${o.datasetBucket}` : '', 'NGSCI_GCP_DATASET');
    out('terraform_identity', hubAccount.email, "the hub VM's service account");
  }
}
