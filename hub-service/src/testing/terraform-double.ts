/**
 * An AWS TerraformProvisioner whose terraform binary is the TEST DOUBLE
 * (provisioners/terraform/testdata/fake-terraform.mjs, replaying recorded `-json` output). The
 * scenario the double plays is read from a file, so a test can change it between runs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TerraformExecutor } from '../provisioners/terraform/executor.js';
import { TerraformProvisioner } from '../provisioners/terraform/provisioner.js';
import {
  loadTerraformSettings,
  type TerraformSettings,
} from '../provisioners/terraform/settings.js';

export const FAKE_TERRAFORM = fileURLToPath(
  new URL('../provisioners/terraform/testdata/fake-terraform.mjs', import.meta.url),
);

export interface TerraformDouble {
  terraform: TerraformProvisioner;
  /** the file naming the double's scenario ('ok', 'slow', 'hang', …) */
  scenarioFile: string;
  settings: TerraformSettings;
}

export function TEST_DOUBLE_terraformProvisioner(
  root: string,
  scenario: string,
  bootstrapToken: string,
  /** health watching of running machines (off by default): a test takes a machine away with it */
  watch: { isReady: () => Promise<boolean>; intervalMs: number; lostAfter?: number } | null = null,
): TerraformDouble {
  const scenarioFile = join(root, 'scenario');
  writeFileSync(scenarioFile, scenario);
  const settings = loadTerraformSettings(
    {
      NGSCI_TERRAFORM_WORKDIR: join(root, 'tf'),
      NGSCI_TERRAFORM_SERVICE_URL: 'https://hub.example.org/services/ngsci',
      NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
      NGSCI_TERRAFORM_STATE: 'local',
      NGSCI_TERRAFORM_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cpu',
      NGSCI_TERRAFORM_GPU_IMAGE: 'docker:registry.example.org/ngsci/singleuser:cuda12',
      NGSCI_AWS_VPC_ID: 'vpc-0abc',
      NGSCI_AWS_SUBNET_ID: 'subnet-0abc',
    },
    join(root, 'data'),
  );
  const terraform = new TerraformProvisioner({
    settings,
    executor: new TerraformExecutor({
      binary: FAKE_TERRAFORM,
      pluginCacheDir: settings.pluginCacheDir,
      backend: 'local',
      extraEnv: { FAKE_TERRAFORM_SCENARIO_FILE: scenarioFile },
      killGraceMs: 400,
    }),
    issueBootstrapToken: async () => bootstrapToken,
    isReady: watch ? () => watch.isReady() : async () => true,
    watchIntervalMs: watch?.intervalMs ?? 0,
    ...(watch?.lostAfter ? { lostAfter: watch.lostAfter } : {}),
  });
  return { terraform, scenarioFile, settings };
}
