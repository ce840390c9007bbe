/** What every cloud's GpuInstance construct exposes; the stacks turn these into Terraform outputs. */
export interface GpuInstanceOutputs {
  /** the IP the hub reaches the single-user server on (private unless addressKind is public) */
  readonly address: string;
  readonly instanceId: string;
  readonly homeDiskId: string;
}

/** The outputs an instance stack declares, by Terraform name. */
export const INSTANCE_OUTPUTS = ['address', 'instance_id', 'home_disk_id'] as const;
