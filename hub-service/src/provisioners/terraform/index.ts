/** The terraform provisioner: settings, the executor that runs terraform/tofu, and the Provisioner. */
export * from './executor.js';
export * from './settings.js';
export * from './provisioner.js';
