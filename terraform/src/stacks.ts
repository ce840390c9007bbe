/**
 * One Terraform stack per instance (VM, firewall, data set, home-disk attachment), and one per home
 * disk. The home stack is applied at every start, keyed by (user, server, cloud, configured zone or
 * region), and never destroyed by a stop or a resize; its disk carries prevent_destroy, and its size
 * is the size at creation (a later setting applies to new homes only). A stop destroys the instance
 * stack only, so the blast radius of any apply is one machine.
 */
import { Construct } from 'constructs';
import { LocalBackend, TerraformOutput, TerraformStack } from 'cdktf';
import { AwsGpuInstance, AwsHomeDisk, awsProvider } from './aws.js';
import { AzureGpuInstance, AzureHomeDisk, azureProvider } from './azure.js';
import { GcpGpuInstance, GcpHomeDisk, gcpProvider } from './gcp.js';
import { instanceTypeInfo } from './instance-types.js';
import {
  homeDiskName,
  InvalidOptionsError,
  pgSchemaName,
  validateHomeOptions,
  validateInstanceOptions,
  type BackendSpec,
  type HomeOptions,
  type InstanceOptions,
} from './options.js';
import type { GpuInstanceOutputs } from './outputs.js';

function useBackend(stack: TerraformStack, backend: BackendSpec, stackKey: string): void {
  if (backend.kind === 'local') {
    new LocalBackend(stack, { path: backend.path });
    return;
  }
  // no conn_str on purpose: Terraform reads PG_CONN_STR from the environment the executor builds
  stack.addOverride('terraform.backend', {
    pg: { schema_name: backend.schemaName ?? pgSchemaName(stackKey) },
  });
}

/** The key that names a home disk's state: one per (cloud, zone, user, server). */
export function homeStackKey(o: HomeOptions): string {
  return `${o.cloud}-${o.zone ?? o.region}-${homeDiskName(o.user, o.server)}`;
}

export function instanceStackKey(o: InstanceOptions): string {
  return `instance-${o.instanceId}`;
}

export class HomeStack extends TerraformStack {
  readonly homeDiskId: string;

  constructor(scope: Construct, id: string, o: HomeOptions) {
    super(scope, id);
    validateHomeOptions(o);
    useBackend(this, o.backend, homeStackKey(o));
    if (o.cloud === 'aws') {
      awsProvider(this, o.region);
      this.homeDiskId = new AwsHomeDisk(this, 'home', o).volume.id;
    } else if (o.cloud === 'gcp') {
      gcpProvider(this, o);
      this.homeDiskId = new GcpHomeDisk(this, 'home', o).disk.id;
    } else {
      azureProvider(this);
      this.homeDiskId = new AzureHomeDisk(this, 'home', o).disk.id;
    }
    new TerraformOutput(this, 'home_disk_id', { value: this.homeDiskId });
  }
}

export class InstanceStack extends TerraformStack {
  readonly machine: GpuInstanceOutputs;

  constructor(scope: Construct, id: string, o: InstanceOptions) {
    super(scope, id);
    validateInstanceOptions(o);
    const type = instanceTypeInfo(o.cloud, o.instanceType, o.machine);
    const wanted = o.gpu ? `${o.gpu.count}x ${o.gpu.model}` : 'no GPU';
    const has = type.gpu ? `${type.gpu.count}x ${type.gpu.model}` : 'no GPU';
    if (wanted !== has)
      throw new InvalidOptionsError(`${o.instanceType} has ${has}, the size asks for ${wanted}`);

    useBackend(this, o.backend, instanceStackKey(o));
    if (o.cloud === 'aws') {
      awsProvider(this, o.region);
      this.machine = new AwsGpuInstance(this, 'instance', o, type);
    } else if (o.cloud === 'gcp') {
      gcpProvider(this, o);
      this.machine = new GcpGpuInstance(this, 'instance', o, type);
    } else {
      azureProvider(this);
      this.machine = new AzureGpuInstance(this, 'instance', o, type);
    }
    new TerraformOutput(this, 'address', { value: this.machine.address });
    new TerraformOutput(this, 'instance_id', { value: this.machine.instanceId });
    new TerraformOutput(this, 'home_disk_id', { value: this.machine.homeDiskId });
  }
}
