/**
 * Azure base infrastructure, applied once by an operator: a resource group, a virtual network with
 * a hub subnet, a private instance subnet (no default outbound access; a NAT gateway for image
 * pulls) and a subnet delegated to PostgreSQL flexible server; network security groups (HTTPS to
 * the hub; the single-user port from the hub subnet only; SSH only with `sshCidr`); the hub VM with
 * a static public IP and a DNS record; PostgreSQL flexible server without public network access,
 * resolved through a private DNS zone; a storage account and private container for the read-only
 * data set; and the hub's managed identity with a custom role limited to the resource group and
 * what the instance stacks (../azure.ts) do.
 *
 * The database password is read at plan time from Key Vault (`azure.keyVaultId`,
 * `azure.dbPasswordSecretName`, filled by the operator): the JSON holds the reference only. The
 * value passes through the Terraform state, which must be kept as a secret.
 * Synth-tested only: nothing here was applied.
 */
import { Construct } from 'constructs';
import { TerraformOutput } from 'cdktf';
import { DataAzurermDnsZone } from '@cdktf/provider-azurerm/lib/data-azurerm-dns-zone/index.js';
import { DataAzurermKeyVaultSecret } from '@cdktf/provider-azurerm/lib/data-azurerm-key-vault-secret/index.js';
import { DnsARecord } from '@cdktf/provider-azurerm/lib/dns-a-record/index.js';
import { DnsZone } from '@cdktf/provider-azurerm/lib/dns-zone/index.js';
import { LinuxVirtualMachine } from '@cdktf/provider-azurerm/lib/linux-virtual-machine/index.js';
import { NatGateway } from '@cdktf/provider-azurerm/lib/nat-gateway/index.js';
import { NatGatewayPublicIpAssociation } from '@cdktf/provider-azurerm/lib/nat-gateway-public-ip-association/index.js';
import { NetworkInterface } from '@cdktf/provider-azurerm/lib/network-interface/index.js';
import {
  NetworkSecurityGroup,
  type NetworkSecurityGroupSecurityRule,
} from '@cdktf/provider-azurerm/lib/network-security-group/index.js';
import { PostgresqlFlexibleServer } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server/index.js';
import { PostgresqlFlexibleServerDatabase } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server-database/index.js';
import { PrivateDnsZone } from '@cdktf/provider-azurerm/lib/private-dns-zone/index.js';
import { PrivateDnsZoneVirtualNetworkLink } from '@cdktf/provider-azurerm/lib/private-dns-zone-virtual-network-link/index.js';
import { PublicIp } from '@cdktf/provider-azurerm/lib/public-ip/index.js';
import { ResourceGroup } from '@cdktf/provider-azurerm/lib/resource-group/index.js';
import { RoleAssignment } from '@cdktf/provider-azurerm/lib/role-assignment/index.js';
import { RoleDefinition } from '@cdktf/provider-azurerm/lib/role-definition/index.js';
import { StorageAccount } from '@cdktf/provider-azurerm/lib/storage-account/index.js';
import { StorageContainer } from '@cdktf/provider-azurerm/lib/storage-container/index.js';
import { Subnet } from '@cdktf/provider-azurerm/lib/subnet/index.js';
import { SubnetNatGatewayAssociation } from '@cdktf/provider-azurerm/lib/subnet-nat-gateway-association/index.js';
import { SubnetNetworkSecurityGroupAssociation } from '@cdktf/provider-azurerm/lib/subnet-network-security-group-association/index.js';
import { UserAssignedIdentity } from '@cdktf/provider-azurerm/lib/user-assigned-identity/index.js';
import { VirtualNetwork } from '@cdktf/provider-azurerm/lib/virtual-network/index.js';
import { shortHash } from '../options.js';
import { baseSubnets, hubFqdn, type BaseAzure, type ResolvedBaseOptions } from './options.js';

/** Azure's built-in Storage Blob Data Reader role: what an instance identity is granted, only. */
export const AZURE_BLOB_DATA_READER = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1';

/**
 * The hub identity's custom role, on the base resource group only: VMs, their NICs, disks, network
 * security groups and public IPs (the instance and home stacks), joining the instance subnet, and
 * reading what they read. No role assignments: those come from a second, conditioned assignment
 * that can grant Storage Blob Data Reader on the data set account and nothing else.
 */
export const AZURE_TERRAFORM_ACTIONS = [
  'Microsoft.Compute/disks/delete',
  'Microsoft.Compute/disks/read',
  'Microsoft.Compute/disks/write',
  'Microsoft.Compute/locations/operations/read',
  'Microsoft.Compute/snapshots/read',
  'Microsoft.Compute/virtualMachines/deallocate/action',
  'Microsoft.Compute/virtualMachines/delete',
  'Microsoft.Compute/virtualMachines/powerOff/action',
  'Microsoft.Compute/virtualMachines/read',
  'Microsoft.Compute/virtualMachines/start/action',
  'Microsoft.Compute/virtualMachines/write',
  'Microsoft.Network/networkInterfaces/delete',
  'Microsoft.Network/networkInterfaces/join/action',
  'Microsoft.Network/networkInterfaces/read',
  'Microsoft.Network/networkInterfaces/write',
  'Microsoft.Network/networkSecurityGroups/delete',
  'Microsoft.Network/networkSecurityGroups/join/action',
  'Microsoft.Network/networkSecurityGroups/read',
  'Microsoft.Network/networkSecurityGroups/write',
  'Microsoft.Network/publicIPAddresses/delete',
  'Microsoft.Network/publicIPAddresses/join/action',
  'Microsoft.Network/publicIPAddresses/read',
  'Microsoft.Network/publicIPAddresses/write',
  'Microsoft.Network/virtualNetworks/read',
  'Microsoft.Network/virtualNetworks/subnets/join/action',
  'Microsoft.Network/virtualNetworks/subnets/read',
  'Microsoft.Resources/subscriptions/resourceGroups/read',
] as const;

export class AzureBase extends Construct {
  readonly instancesNsg: NetworkSecurityGroup;
  readonly hub: LinuxVirtualMachine;
  readonly db: PostgresqlFlexibleServer;

  constructor(scope: Construct, id: string, o: ResolvedBaseOptions) {
    super(scope, id);
    const a = o.azure as BaseAzure;
    const n = o.name;
    const nets = baseSubnets(o.networkCidr);
    const tags = { 'managed-by': 'ngsci' };

    const group = new ResourceGroup(this, 'group', {
      name: a.resourceGroup,
      location: o.region,
      tags,
    });
    const where = { resourceGroupName: group.name, location: group.location };

    // ---- network
    const vnet = new VirtualNetwork(this, 'network', {
      ...where,
      name: n,
      addressSpace: [o.networkCidr],
      tags,
    });
    const subnet = (sid: string, name: string, prefix: string, extra = {}) =>
      new Subnet(this, sid, {
        name,
        resourceGroupName: group.name,
        virtualNetworkName: vnet.name,
        addressPrefixes: [prefix],
        ...extra,
      });
    const hubSubnet = subnet('hub-subnet', `${n}-hub`, nets.hub[0]);
    const instanceSubnet = subnet('instance-subnet', `${n}-instances`, nets.instances, {
      // no implicit internet access: outbound only through the NAT gateway below
      defaultOutboundAccessEnabled: false,
    });
    const dbSubnet = subnet('db-subnet', `${n}-db`, nets.db[0], {
      defaultOutboundAccessEnabled: false,
      delegation: [
        {
          name: 'postgres',
          serviceDelegation: {
            name: 'Microsoft.DBforPostgreSQL/flexibleServers',
            actions: ['Microsoft.Network/virtualNetworks/subnets/join/action'],
          },
        },
      ],
    });
    if (o.natGateway) {
      const natIp = new PublicIp(this, 'nat-ip', {
        ...where,
        name: `${n}-nat`,
        allocationMethod: 'Static',
        sku: 'Standard',
        tags,
      });
      const nat = new NatGateway(this, 'nat', { ...where, name: n, skuName: 'Standard', tags });
      new NatGatewayPublicIpAssociation(this, 'nat-ip-association', {
        natGatewayId: nat.id,
        publicIpAddressId: natIp.id,
      });
      new SubnetNatGatewayAssociation(this, 'instance-subnet-nat', {
        subnetId: instanceSubnet.id,
        natGatewayId: nat.id,
      });
    }

    // ---- firewalls
    const allow = (
      name: string,
      priority: number,
      port: string,
      source: string | string[],
    ): NetworkSecurityGroupSecurityRule => ({
      name,
      priority,
      direction: 'Inbound',
      access: 'Allow',
      protocol: 'Tcp',
      sourcePortRange: '*',
      destinationPortRange: port,
      ...(Array.isArray(source)
        ? { sourceAddressPrefixes: source.map((c) => (c === '0.0.0.0/0' ? '*' : c)) }
        : { sourceAddressPrefix: source }),
      destinationAddressPrefix: '*',
    });
    const denyRest: NetworkSecurityGroupSecurityRule = {
      name: 'deny-other-inbound',
      priority: 4000,
      direction: 'Inbound',
      access: 'Deny',
      protocol: '*',
      sourcePortRange: '*',
      destinationPortRange: '*',
      sourceAddressPrefix: '*',
      destinationAddressPrefix: '*',
    };
    const web = o.webCidrs.includes('0.0.0.0/0') ? '*' : o.webCidrs;
    const hubRules = [
      allow('https', 100, '443', web),
      allow('http', 110, '80', web),
      ...(o.sshCidr ? [allow('ssh', 120, '22', o.sshCidr)] : []),
      denyRest,
    ];
    const hubNsg = new NetworkSecurityGroup(this, 'hub-firewall', {
      ...where,
      name: `${n}-hub`,
      securityRule: hubRules,
      tags,
    });
    new SubnetNetworkSecurityGroupAssociation(this, 'hub-subnet-firewall', {
      subnetId: hubSubnet.id,
      networkSecurityGroupId: hubNsg.id,
    });
    this.instancesNsg = new NetworkSecurityGroup(this, 'instances-firewall', {
      ...where,
      name: `${n}-instances`,
      securityRule: [
        allow('singleuser-from-hub', 100, String(o.singleuserPort), nets.hub[0]),
        ...(o.sshCidr ? [allow('ssh-from-hub', 110, '22', nets.hub[0])] : []),
        denyRest,
      ],
      tags,
    });
    new SubnetNetworkSecurityGroupAssociation(this, 'instance-subnet-firewall', {
      subnetId: instanceSubnet.id,
      networkSecurityGroupId: this.instancesNsg.id,
    });
    const dbNsg = new NetworkSecurityGroup(this, 'db-firewall', {
      ...where,
      name: `${n}-db`,
      securityRule: [allow('postgres-from-hub', 100, '5432', nets.hub[0]), denyRest],
      tags,
    });
    new SubnetNetworkSecurityGroupAssociation(this, 'db-subnet-firewall', {
      subnetId: dbSubnet.id,
      networkSecurityGroupId: dbNsg.id,
    });

    // ---- Postgres, private only
    const dbDns = new PrivateDnsZone(this, 'db-dns', {
      name: `${n}.private.postgres.database.azure.com`,
      resourceGroupName: group.name,
      tags,
    });
    const dbDnsLink = new PrivateDnsZoneVirtualNetworkLink(this, 'db-dns-link', {
      name: `${n}-db`,
      resourceGroupName: group.name,
      privateDnsZoneName: dbDns.name,
      virtualNetworkId: vnet.id,
    });
    const password = new DataAzurermKeyVaultSecret(this, 'db-password', {
      name: a.dbPasswordSecretName,
      keyVaultId: a.keyVaultId,
    });
    this.db = new PostgresqlFlexibleServer(this, 'db', {
      ...where,
      // server names are global: the resource group's hash keeps two deployments apart
      name: `${n}-db-${shortHash(a.resourceGroup)}`,
      version: o.dbVersion,
      skuName: o.dbTier,
      storageMb: o.dbStorageGiB * 1024,
      autoGrowEnabled: true,
      delegatedSubnetId: dbSubnet.id,
      privateDnsZoneId: dbDns.id,
      publicNetworkAccessEnabled: false,
      administratorLogin: 'ngsci_admin',
      administratorPassword: password.value,
      backupRetentionDays: 7,
      highAvailability: o.dbHighAvailability ? { mode: 'ZoneRedundant' } : undefined,
      lifecycle: { preventDestroy: true, ignoreChanges: ['zone'] },
      dependsOn: [dbDnsLink],
      tags,
    });
    new PostgresqlFlexibleServerDatabase(this, 'database', {
      name: 'ngsci',
      serverId: this.db.id,
    });

    // ---- identity of the service's terraform runs
    const identity = new UserAssignedIdentity(this, 'hub-identity', {
      ...where,
      name: `${n}-hub`,
      tags,
    });
    const role = new RoleDefinition(this, 'terraform-role', {
      name: `${n} instance stacks (${a.resourceGroup})`,
      scope: group.id,
      description: 'What the ngsci service needs to create and remove its instances',
      permissions: [{ actions: [...AZURE_TERRAFORM_ACTIONS] }],
      assignableScopes: [group.id],
    });
    new RoleAssignment(this, 'hub-terraform-role', {
      scope: group.id,
      roleDefinitionId: role.roleDefinitionResourceId,
      principalId: identity.principalId,
      principalType: 'ServicePrincipal',
    });

    // ---- the hub
    const hubIp = new PublicIp(this, 'hub-ip', {
      ...where,
      name: `${n}-hub`,
      allocationMethod: 'Static',
      sku: 'Standard',
      tags,
    });
    const nic = new NetworkInterface(this, 'hub-nic', {
      ...where,
      name: `${n}-hub`,
      ipConfiguration: [
        {
          name: 'primary',
          subnetId: hubSubnet.id,
          privateIpAddressAllocation: 'Dynamic',
          publicIpAddressId: hubIp.id,
        },
      ],
      tags,
    });
    this.hub = new LinuxVirtualMachine(this, 'hub', {
      ...where,
      name: `${n}-hub`,
      size: o.hubMachineType,
      adminUsername: 'ngsci',
      disablePasswordAuthentication: true,
      adminSshKey: [{ username: 'ngsci', publicKey: a.adminSshPublicKey }],
      networkInterfaceIds: [nic.id],
      identity: { type: 'UserAssigned', identityIds: [identity.id] },
      osDisk: {
        caching: 'ReadWrite',
        storageAccountType: 'StandardSSD_LRS',
        diskSizeGb: o.hubDiskGiB,
      },
      sourceImageReference: {
        publisher: 'Canonical',
        offer: 'ubuntu-24_04-lts',
        sku: 'server',
        version: 'latest',
      },
      lifecycle: { ignoreChanges: ['source_image_reference'] },
      tags,
    });

    // ---- DNS
    let zoneName: string;
    let zoneGroup: string;
    if (o.createDnsZone) {
      zoneName = new DnsZone(this, 'dns-zone', {
        name: o.dnsZone,
        resourceGroupName: group.name,
        tags,
      }).name;
      zoneGroup = group.name;
    } else {
      // an existing zone, found in whichever resource group of the subscription holds it
      const existing = new DataAzurermDnsZone(this, 'dns-zone', { name: o.dnsZone });
      zoneName = existing.name;
      zoneGroup = existing.resourceGroupName;
    }
    new DnsARecord(this, 'hub-record', {
      name: o.dnsHost,
      zoneName,
      resourceGroupName: zoneGroup,
      ttl: 300,
      records: [hubIp.ipAddress],
    });

    // ---- the read-only data set
    let dataset = '';
    if (o.datasetBucket) {
      const account = new StorageAccount(this, 'dataset-account', {
        ...where,
        name: o.datasetBucket,
        accountTier: 'Standard',
        accountReplicationType: 'LRS',
        minTlsVersion: 'TLS1_2',
        httpsTrafficOnlyEnabled: true,
        allowNestedItemsToBePublic: false,
        // identities only: no account keys, no SAS made from them
        sharedAccessKeyEnabled: false,
        lifecycle: { preventDestroy: true },
        tags: { ...tags, role: 'dataset' },
      });
      const container = new StorageContainer(this, 'dataset', {
        name: 'dataset',
        storageAccountId: account.id,
        containerAccessType: 'private',
      });
      dataset = `bucket:${container.resourceManagerId}`;
      // the instance stacks grant each VM's identity Storage Blob Data Reader on the container:
      // the hub may make that one assignment on this account, and no other role
      const assigner = new RoleDefinition(this, 'dataset-assigner-role', {
        name: `${n} data set readers (${a.resourceGroup})`,
        scope: account.id,
        description: 'Grant the data set read role to ngsci instances',
        permissions: [
          {
            actions: [
              'Microsoft.Authorization/roleAssignments/read',
              'Microsoft.Authorization/roleAssignments/write',
              'Microsoft.Authorization/roleAssignments/delete',
            ],
          },
        ],
        assignableScopes: [account.id],
      });
      new RoleAssignment(this, 'hub-dataset-assigner', {
        scope: account.id,
        roleDefinitionId: assigner.roleDefinitionResourceId,
        principalId: identity.principalId,
        principalType: 'ServicePrincipal',
        conditionVersion: '2.0',
        condition: azureOnlyBlobReaderCondition(),
      });
    }

    const out = (name: string, value: string, description: string) =>
      new TerraformOutput(this, `output-${name}`, { value, description }).overrideLogicalId(name);
    out('hub_fqdn', hubFqdn(o), 'the hub host name (DNS A record)');
    out('hub_public_ip', hubIp.ipAddress, 'the hub host public address');
    out('hub_cidr', `${nic.privateIpAddress}/32`, 'NGSCI_TERRAFORM_HUB_CIDR');
    out('instance_subnet', instanceSubnet.id, 'NGSCI_AZURE_SUBNET_ID');
    out('network', group.name, 'NGSCI_AZURE_RESOURCE_GROUP');
    out('database_host', this.db.fqdn, 'the Postgres host for DATABASE_URL');
    out(
      'database_password_ref',
      `${a.keyVaultId}/secrets/${a.dbPasswordSecretName}`,
      'Key Vault secret with the Postgres password (user ngsci_admin, database ngsci)',
    );
    out('dataset', dataset, 'NGSCI_AZURE_DATASET');
    out(
      'terraform_identity',
      identity.clientId,
      'the hub VM identity (ARM_USE_MSI=true, ARM_CLIENT_ID)',
    );
  }
}

/** An ABAC condition: role assignments written or deleted may only be Storage Blob Data Reader. */
function azureOnlyBlobReaderCondition(): string {
  const only = `@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${AZURE_BLOB_DATA_READER}}`;
  const onlyDelete = `@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${AZURE_BLOB_DATA_READER}}`;
  return [
    `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (${only}))`,
    `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (${onlyDelete}))`,
  ].join(' AND ');
}
