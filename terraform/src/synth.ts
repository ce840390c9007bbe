/**
 * Synthesis without the cdktf CLI: build the stack in memory, return the Terraform JSON and, when
 * asked, write it as `cdk.tf.json` into a workdir that `terraform init` can use directly.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Testing, type TerraformStack } from 'cdktf';
import type { HomeOptions, InstanceOptions } from './options.js';
import { HomeStack, InstanceStack } from './stacks.js';

/** Terraform JSON configuration, as `terraform` reads it from `*.tf.json`. */
export type TerraformJson = Record<string, unknown> & {
  terraform?: Record<string, unknown>;
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
  output?: Record<string, { value: unknown }>;
  provider?: Record<string, unknown[]>;
};

export const SYNTH_FILE = 'cdk.tf.json';

function synthStack(build: (app: App) => TerraformStack, outdir?: string): TerraformJson {
  // App insists on creating an outdir at construction; give it a scratch one so nothing litters the
  // caller's working directory. The stack's JSON is written by us, where the caller asked.
  const app = new App({ skipValidation: true, outdir: join(tmpdir(), 'ngsci-cdktf') });
  const stack = build(app);
  // Testing.synth runs aspects and validations and returns the stack's JSON without touching disk
  const json = JSON.parse(Testing.synth(stack, true)) as TerraformJson;
  if (outdir) {
    mkdirSync(outdir, { recursive: true });
    writeFileSync(join(outdir, SYNTH_FILE), JSON.stringify(json, null, 2) + '\n', { mode: 0o600 });
  }
  return json;
}

/** The instance stack's Terraform JSON; written to `<outdir>/cdk.tf.json` when outdir is given. */
export function synthInstance(options: InstanceOptions, outdir?: string): TerraformJson {
  return synthStack((app) => new InstanceStack(app, 'instance', options), outdir);
}

/** The home-disk stack's Terraform JSON; written to `<outdir>/cdk.tf.json` when outdir is given. */
export function synthHome(options: HomeOptions, outdir?: string): TerraformJson {
  return synthStack((app) => new HomeStack(app, 'home', options), outdir);
}
