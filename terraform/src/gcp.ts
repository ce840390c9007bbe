/**
 * GCP: a Compute Engine machine (N1 with guest accelerators, or G2/A2/A3 with their built-in GPUs),
 * the home persistent disk attached read-write (it belongs to the home stack; attached disks are
 * never deleted with the machine), the data set as an existing disk attached READ_ONLY (many readers
 * may share one) or a bucket mounted read-only with gcsfuse, and firewall rules on a per-instance
 * network tag: the hub's CIDR on the single-user port, SSH only when allowed, everything else denied
 * (above the default network's allow-internal rule). With an egress policy, outbound traffic is
 * denied too except to the policy's networks and the hub's.
 *
 * Zones: one value (`gcpZone`) places the provider, the home disk and the machine; the instance
 * stack refuses a home disk or data set disk whose id names another zone.
 */
import { Construct } from 'constructs';
import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { ComputeDisk } from '@cdktf/provider-google/lib/compute-disk/index.js';
import { ComputeFirewall } from '@cdktf/provider-google/lib/compute-firewall/index.js';
import {
  ComputeInstance,
  type ComputeInstanceAttachedDisk,
} from '@cdktf/provider-google/lib/compute-instance/index.js';
import { datasetMount, renderUserData, userDataBasics } from './cloud-init.js';
import type { InstanceTypeInfo } from './instance-types.js';
import {
  gcpDiskZone,
  gcpLabels,
  gcpZone,
  InvalidOptionsError,
  homeDiskName,
  homeTags,
  instanceName,
  instanceTags,
  type GcpPlacement,
  type HomeOptions,
  type InstanceOptions,
} from './options.js';
import type { GpuInstanceOutputs } from './outputs.js';

export const GCP_GPU_IMAGE =
  'projects/ubuntu-os-accelerator-images/global/images/family/ubuntu-accelerator-2204-amd64-with-nvidia-550';
export const GCP_CPU_IMAGE = 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts';

export function gcpProvider(scope: Construct, o: HomeOptions): GoogleProvider {
  const p = o.gcp as GcpPlacement;
  return new GoogleProvider(scope, 'google', {
    project: p.project,
    region: o.region,
    zone: gcpZone(o),
  });
}

export class GcpHomeDisk extends Construct {
  readonly disk: ComputeDisk;

  constructor(scope: Construct, id: string, o: HomeOptions) {
    super(scope, id);
    this.disk = new ComputeDisk(this, 'disk', {
      name: homeDiskName(o.user, o.server),
      zone: gcpZone(o),
      size: o.homeDiskGiB,
      type: 'pd-balanced',
      labels: gcpLabels(homeTags(o)),
      // The size is the size at creation: a smaller size makes Google replace the disk (an empty
      // home), a larger one would leave the file system as it was. Re-applying never does either.
      lifecycle: { preventDestroy: true, ignoreChanges: ['size'] },
    });
  }
}

export class GcpGpuInstance extends Construct implements GpuInstanceOutputs {
  readonly instance: ComputeInstance;
  readonly address: string;
  readonly instanceId: string;
  readonly homeDiskId: string;

  constructor(scope: Construct, id: string, o: InstanceOptions, type: InstanceTypeInfo) {
    super(scope, id);
    const p = o.gcp as GcpPlacement;
    const name = instanceName(o.instanceId);
    const gpu = type.gpu !== null;
    const networkTag = name;
    const zone = gcpZone(o);
    for (const [what, disk] of [
      ['home disk', o.homeDiskId],
      ['data set disk', o.dataset?.kind === 'disk' ? o.dataset.ref : ''],
    ] as const) {
      const diskZone = gcpDiskZone(disk);
      if (diskZone && diskZone !== zone)
        throw new InvalidOptionsError(
          `the ${what} is in zone ${diskZone} but the machine would be in ${zone}; a disk attaches only in its own zone (NGSCI_GCP_ZONE)`,
        );
    }

    new ComputeFirewall(this, 'singleuser', {
      name: `${name}-singleuser`,
      network: p.network,
      direction: 'INGRESS',
      priority: 900,
      sourceRanges: [o.hubCidr],
      targetTags: [networkTag],
      allow: [{ protocol: 'tcp', ports: [String(o.singleuserPort)] }],
    });
    if (o.allowSsh) {
      new ComputeFirewall(this, 'ssh', {
        name: `${name}-ssh`,
        network: p.network,
        direction: 'INGRESS',
        priority: 900,
        sourceRanges: [o.sshCidr ?? o.hubCidr],
        targetTags: [networkTag],
        allow: [{ protocol: 'tcp', ports: ['22'] }],
      });
    }
    new ComputeFirewall(this, 'deny-rest', {
      name: `${name}-deny`,
      network: p.network,
      direction: 'INGRESS',
      priority: 1000,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: [networkTag],
      deny: [{ protocol: 'all' }],
    });
    if (o.egressAllowCidrs !== undefined) {
      // above the implied allow-all egress (65535); the metadata server (and the DNS it serves)
      // is always reachable, whatever the firewall says
      new ComputeFirewall(this, 'egress-allow', {
        name: `${name}-out`,
        network: p.network,
        direction: 'EGRESS',
        priority: 900,
        destinationRanges: [...new Set([o.hubCidr, ...o.egressAllowCidrs])],
        targetTags: [networkTag],
        allow: [{ protocol: 'all' }],
      });
      new ComputeFirewall(this, 'egress-deny', {
        name: `${name}-out-deny`,
        network: p.network,
        direction: 'EGRESS',
        priority: 1000,
        destinationRanges: ['0.0.0.0/0'],
        targetTags: [networkTag],
        deny: [{ protocol: 'all' }],
      });
    }

    const attachedDisk: ComputeInstanceAttachedDisk[] = [
      { source: o.homeDiskId, deviceName: 'ngsci-home', mode: 'READ_WRITE' },
    ];
    if (o.dataset?.kind === 'disk') {
      attachedDisk.push({ source: o.dataset.ref, deviceName: 'ngsci-dataset', mode: 'READ_ONLY' });
    }

    const userData = renderUserData({
      cloud: 'gcp',
      ...userDataBasics(o),
      gpu,
      homeDevices: ['/dev/disk/by-id/google-ngsci-home'],
      dataset: datasetMount('gcp', o.dataset, ['/dev/disk/by-id/google-ngsci-dataset']),
    });

    const scopes = [
      'https://www.googleapis.com/auth/logging.write',
      'https://www.googleapis.com/auth/monitoring.write',
    ];
    if (o.dataset?.kind === 'bucket')
      scopes.push('https://www.googleapis.com/auth/devstorage.read_only');

    this.instance = new ComputeInstance(this, 'machine', {
      name,
      machineType: type.machineType,
      zone,
      tags: [networkTag],
      labels: gcpLabels(instanceTags(o)),
      allowStoppingForUpdate: true,
      bootDisk: {
        autoDelete: true,
        initializeParams: {
          image: p.image ?? (gpu ? GCP_GPU_IMAGE : GCP_CPU_IMAGE),
          size: gpu ? 100 : 30,
          type: 'pd-balanced',
        },
      },
      attachedDisk,
      guestAccelerator: type.accelerator
        ? [{ type: type.accelerator.type, count: type.accelerator.count }]
        : undefined,
      // GPUs can't live-migrate: every GPU machine must TERMINATE on host maintenance
      scheduling: o.spot
        ? {
            provisioningModel: 'SPOT',
            preemptible: true,
            automaticRestart: false,
            instanceTerminationAction: 'STOP',
            onHostMaintenance: 'TERMINATE',
          }
        : {
            provisioningModel: 'STANDARD',
            automaticRestart: true,
            onHostMaintenance: gpu ? 'TERMINATE' : 'MIGRATE',
          },
      networkInterface: [
        {
          network: p.network,
          subnetwork: p.subnetwork,
          accessConfig: o.addressKind === 'public' ? [{}] : undefined,
        },
      ],
      // SSH keys come only from NGSCI_TERRAFORM_SSH_KEYS (in the user-data), never from the
      // project's metadata; the serial console stays off (it is a login that bypasses the firewall)
      metadata: {
        'user-data': userData,
        'block-project-ssh-keys': 'TRUE',
        'serial-port-enable': 'FALSE',
      },
      serviceAccount: { email: p.serviceAccountEmail, scopes },
    });

    const nic = this.instance.networkInterface.get(0);
    this.address = o.addressKind === 'public' ? nic.accessConfig.get(0).natIp : nic.networkIp;
    this.instanceId = this.instance.instanceId;
    this.homeDiskId = o.homeDiskId;
  }
}
