/** Base infrastructure stacks (network, hub host, Postgres, DNS, data set, IAM), one per cloud. */
export * from './options.js';
export { AwsBase, awsTerraformPolicy, AWS_INSTANCE_ROLE_PREFIX } from './aws.js';
export { GcpBase, GCP_TERRAFORM_PERMISSIONS } from './gcp.js';
export { AzureBase, AZURE_TERRAFORM_ACTIONS } from './azure.js';
export { BaseStack, baseStackKey, synthBase } from './stack.js';
