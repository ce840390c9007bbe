/**
 * @ngsci/terraform: cdktf stacks and constructs for ngsci machines on AWS, GCP and Azure, and the
 * table of machine types they know. hub-service synthesizes with `synthHome`/`synthInstance` and
 * runs terraform (or tofu) on the result; nothing else in the repository imports cdktf.
 */
export * from './options.js';
export * from './instance-types.js';
export * from './outputs.js';
export {
  CloudInit,
  renderUserData,
  HOME_MOUNT,
  DATASET_MOUNT,
  type CloudInitOptions,
  type DatasetMount,
} from './cloud-init.js';
export { AwsGpuInstance, AwsHomeDisk } from './aws.js';
export { GcpGpuInstance, GcpHomeDisk, GCP_CPU_IMAGE, GCP_GPU_IMAGE } from './gcp.js';
export { AzureGpuInstance, AzureHomeDisk, AZURE_CPU_IMAGE, AZURE_GPU_IMAGE } from './azure.js';
export { HomeStack, InstanceStack, homeStackKey, instanceStackKey } from './stacks.js';
export { synthHome, synthInstance, SYNTH_FILE, type TerraformJson } from './synth.js';
export * from './base/index.js';
