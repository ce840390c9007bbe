/**
 * Azure: a Linux VM with its own NIC and network security group (the hub's CIDR on the single-user
 * port, SSH only when allowed, every other inbound packet denied, the virtual network's default
 * allow included), the home managed disk attached at LUN 0 (it belongs to the home stack), the data
 * set as a copy of a snapshot/disk at LUN 1 with read-only caching and a read-only mount, or a blob
 * container mounted read-only with blobfuse2 through the VM's managed identity.
 * Spot: priority Spot, eviction Deallocate (the VM and its disks stay; compute billing stops),
 * max bid -1 (pay up to the on-demand price, never evicted for price).
 * Zones: `zone` (one value, or none) places the home disk, the data set copy, the public IP and
 * the VM alike.
 *
 * Destroy order: Terraform destroys the home disk's attachment before the VM it depends on, and
 * azurerm detaches it from the running VM (a hot detach: writes the guest has not flushed are lost).
 * No configuration reverses that order, and azurerm >= 4.26 deletes a VM without shutting it down
 * first (its `graceful_shutdown` feature no longer has an effect). So the executor forgets the
 * attachments before a destroy (`terraform state rm`, executor.ts): Azure then releases the data
 * disks together with the VM it deletes, and never deletes them.
 */
import { Construct } from 'constructs';
import { AzurermProvider } from '@cdktf/provider-azurerm/lib/provider/index.js';
import { LinuxVirtualMachine } from '@cdktf/provider-azurerm/lib/linux-virtual-machine/index.js';
import { ManagedDisk } from '@cdktf/provider-azurerm/lib/managed-disk/index.js';
import { NetworkInterface } from '@cdktf/provider-azurerm/lib/network-interface/index.js';
import { NetworkInterfaceSecurityGroupAssociation } from '@cdktf/provider-azurerm/lib/network-interface-security-group-association/index.js';
import {
  NetworkSecurityGroup,
  type NetworkSecurityGroupSecurityRule,
} from '@cdktf/provider-azurerm/lib/network-security-group/index.js';
import { PublicIp } from '@cdktf/provider-azurerm/lib/public-ip/index.js';
import { RoleAssignment } from '@cdktf/provider-azurerm/lib/role-assignment/index.js';
import { VirtualMachineDataDiskAttachment } from '@cdktf/provider-azurerm/lib/virtual-machine-data-disk-attachment/index.js';
import { datasetMount, renderUserData, userDataBasics } from './cloud-init.js';
import type { InstanceTypeInfo } from './instance-types.js';
import {
  homeDiskName,
  homeTags,
  instanceName,
  instanceTags,
  tagValues,
  DEFAULT_DISK_ATTACH_TIMEOUT_MINUTES,
  type AzureImageReference,
  type AzurePlacement,
  type HomeOptions,
  type InstanceOptions,
} from './options.js';
import type { GpuInstanceOutputs } from './outputs.js';

/** Microsoft's Ubuntu HPC image: NVIDIA driver, CUDA and the container toolkit preinstalled. */
export const AZURE_GPU_IMAGE: AzureImageReference = {
  publisher: 'microsoft-dsvm',
  offer: 'ubuntu-hpc',
  sku: '2204',
  version: 'latest',
};
export const AZURE_CPU_IMAGE: AzureImageReference = {
  publisher: 'Canonical',
  offer: '0001-com-ubuntu-server-jammy',
  sku: '22_04-lts-gen2',
  version: 'latest',
};

export function azureProvider(scope: Construct): AzurermProvider {
  return new AzurermProvider(scope, 'azurerm', { features: [{}] });
}

export class AzureHomeDisk extends Construct {
  readonly disk: ManagedDisk;

  constructor(scope: Construct, id: string, o: HomeOptions) {
    super(scope, id);
    const p = o.azure as AzurePlacement;
    this.disk = new ManagedDisk(this, 'disk', {
      name: homeDiskName(o.user, o.server),
      resourceGroupName: p.resourceGroup,
      location: o.region,
      zone: o.zone,
      createOption: 'Empty',
      diskSizeGb: o.homeDiskGiB,
      storageAccountType: 'StandardSSD_LRS',
      tags: tagValues(homeTags(o)),
      // The size is the size at creation: Azure can't shrink a disk, and a larger size would leave
      // the file system as it was. Re-applying with another setting changes nothing.
      lifecycle: { preventDestroy: true, ignoreChanges: ['disk_size_gb'] },
    });
  }
}

const HOME_LUN = 0;
const DATASET_LUN = 1;
const lunDevices = (lun: number): string[] => [
  `/dev/disk/azure/data/by-lun/${lun}`,
  `/dev/disk/azure/scsi1/lun${lun}`,
];

export class AzureGpuInstance extends Construct implements GpuInstanceOutputs {
  readonly vm: LinuxVirtualMachine;
  readonly address: string;
  readonly instanceId: string;
  readonly homeDiskId: string;

  constructor(scope: Construct, id: string, o: InstanceOptions, type: InstanceTypeInfo) {
    super(scope, id);
    const p = o.azure as AzurePlacement;
    const name = instanceName(o.instanceId);
    const tags = tagValues(instanceTags(o));
    const gpu = type.gpu !== null;
    const base = { resourceGroupName: p.resourceGroup, location: o.region, tags };

    const rules: NetworkSecurityGroupSecurityRule[] = [
      rule('singleuser-from-hub', 100, 'Allow', o.hubCidr, String(o.singleuserPort)),
    ];
    if (o.allowSsh) rules.push(rule('ssh', 110, 'Allow', o.sshCidr ?? o.hubCidr, '22'));
    rules.push(rule('deny-all-inbound', 4000, 'Deny', '*', '*'));
    if (o.egressAllowCidrs !== undefined) rules.push(...egressRules(o));
    const nsg = new NetworkSecurityGroup(this, 'firewall', { ...base, name, securityRule: rules });

    const publicIp =
      o.addressKind === 'public'
        ? new PublicIp(this, 'public-ip', {
            ...base,
            name,
            allocationMethod: 'Static',
            sku: 'Standard',
            zones: o.zone ? [o.zone] : undefined,
          })
        : undefined;
    const nic = new NetworkInterface(this, 'nic', {
      ...base,
      name,
      ipConfiguration: [
        {
          name: 'primary',
          subnetId: p.subnetId,
          privateIpAddressAllocation: 'Dynamic',
          publicIpAddressId: publicIp?.id,
        },
      ],
    });
    new NetworkInterfaceSecurityGroupAssociation(this, 'nic-firewall', {
      networkInterfaceId: nic.id,
      networkSecurityGroupId: nsg.id,
    });

    const userData = renderUserData({
      cloud: 'azure',
      ...userDataBasics(o),
      gpu,
      homeDevices: lunDevices(HOME_LUN),
      dataset: datasetMount('azure', o.dataset, lunDevices(DATASET_LUN)),
    });

    // a copy of the data set disk, deleted only after the VM: a disk still attached can't be deleted
    const datasetCopy =
      o.dataset?.kind === 'disk'
        ? new ManagedDisk(this, 'dataset', {
            ...base,
            tags: { ...tags, role: 'dataset' },
            name: `${name}-dataset`,
            zone: o.zone,
            createOption: 'Copy',
            sourceResourceId: o.dataset.ref,
            storageAccountType: 'StandardSSD_LRS',
          })
        : undefined;

    this.vm = new LinuxVirtualMachine(this, 'machine', {
      dependsOn: datasetCopy ? [datasetCopy] : undefined,
      ...base,
      name,
      computerName: name.slice(0, 63),
      size: type.machineType,
      zone: o.zone,
      networkInterfaceIds: [nic.id],
      adminUsername: 'ngsci',
      disablePasswordAuthentication: true,
      adminSshKey: [{ username: 'ngsci', publicKey: p.adminSshPublicKey }],
      osDisk: {
        caching: 'ReadWrite',
        storageAccountType: 'StandardSSD_LRS',
        diskSizeGb: gpu ? 128 : 30,
      },
      sourceImageReference: p.image ?? (gpu ? AZURE_GPU_IMAGE : AZURE_CPU_IMAGE),
      // cloud-init reads custom data; it is base64 by API contract, not for secrecy
      customData: Buffer.from(userData, 'utf8').toString('base64'),
      identity: o.dataset?.kind === 'bucket' ? { type: 'SystemAssigned' } : undefined,
      ...(o.spot
        ? { priority: 'Spot', evictionPolicy: 'Deallocate', maxBidPrice: -1 }
        : { priority: 'Regular' }),
    });

    const minutes = `${o.diskAttachTimeoutMinutes ?? DEFAULT_DISK_ATTACH_TIMEOUT_MINUTES}m`;
    const timeouts = { create: minutes, delete: minutes };
    new VirtualMachineDataDiskAttachment(this, 'home', {
      managedDiskId: o.homeDiskId,
      virtualMachineId: this.vm.id,
      lun: HOME_LUN,
      caching: 'ReadWrite',
      timeouts,
    });
    if (datasetCopy) {
      new VirtualMachineDataDiskAttachment(this, 'dataset-attachment', {
        managedDiskId: datasetCopy.id,
        virtualMachineId: this.vm.id,
        lun: DATASET_LUN,
        caching: 'ReadOnly',
        timeouts,
      });
    } else if (o.dataset?.kind === 'bucket') {
      new RoleAssignment(this, 'dataset-read', {
        scope: o.dataset.ref,
        roleDefinitionName: 'Storage Blob Data Reader',
        principalId: this.vm.identity.principalId,
      });
    }

    this.address = o.addressKind === 'public' ? this.vm.publicIpAddress : this.vm.privateIpAddress;
    // the attested data a VM proves itself with names its vmId, not the ARM resource id
    this.instanceId = this.vm.virtualMachineId;
    this.homeDiskId = o.homeDiskId;
  }
}

function rule(
  name: string,
  priority: number,
  access: 'Allow' | 'Deny',
  source: string,
  port: string,
): NetworkSecurityGroupSecurityRule {
  return {
    name,
    priority,
    direction: 'Inbound',
    access,
    protocol: port === '*' ? '*' : 'Tcp',
    sourceAddressPrefix: source,
    sourcePortRange: '*',
    destinationAddressPrefix: '*',
    destinationPortRange: port,
    description: `ngsci: ${name}`,
  };
}

/** Azure's DNS and health endpoint (the host's virtual IP), and the instance metadata service. */
const AZURE_PLATFORM = ['168.63.129.16/32', '169.254.169.254/32'];

/**
 * Outbound rules of an egress policy: the platform (NSGs don't filter it by default; said
 * explicitly so a deny can never catch it), the hub, the policy's networks, then deny the rest
 * above Azure's default AllowVnetOutBound and AllowInternetOutBound (65000, 65001).
 */
function egressRules(o: InstanceOptions): NetworkSecurityGroupSecurityRule[] {
  const allowed = [...new Set([...AZURE_PLATFORM, o.hubCidr, ...(o.egressAllowCidrs ?? [])])];
  const out = (
    name: string,
    priority: number,
    access: 'Allow' | 'Deny',
    destination: string | string[],
  ): NetworkSecurityGroupSecurityRule => ({
    name,
    priority,
    direction: 'Outbound',
    access,
    protocol: '*',
    sourceAddressPrefix: '*',
    sourcePortRange: '*',
    destinationPortRange: '*',
    ...(Array.isArray(destination)
      ? { destinationAddressPrefixes: destination }
      : { destinationAddressPrefix: destination }),
    description: `ngsci: ${name}`,
  });
  return [out('egress-allow', 200, 'Allow', allowed), out('deny-all-outbound', 4000, 'Deny', '*')];
}
