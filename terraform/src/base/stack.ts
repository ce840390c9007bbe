/**
 * The base stack: one per cloud and deployment, applied by an operator with the cloud's admin
 * credentials (`terraform apply` on the synthesized `cdk.tf.json`), never by the service. The
 * service's own runs (instance and home stacks) then use the narrower identity it creates.
 * Only synthesized in this repository's tests: nothing here has been applied to a real account.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Construct } from 'constructs';
import { App, LocalBackend, Testing, TerraformStack } from 'cdktf';
import { awsProvider } from '../aws.js';
import { azureProvider } from '../azure.js';
import { pgSchemaName } from '../options.js';
import { SYNTH_FILE, type TerraformJson } from '../synth.js';
import { AwsBase } from './aws.js';
import { AzureBase } from './azure.js';
import { GcpBase, gcpBaseProvider } from './gcp.js';
import { resolveBaseOptions, type BaseOptions } from './options.js';

/** The key of the base stack's state (its pg schema): one per cloud, region and name. */
export function baseStackKey(o: Pick<BaseOptions, 'cloud' | 'region' | 'name'>): string {
  return `base-${o.cloud}-${o.region}-${o.name ?? 'ngsci'}`;
}

export class BaseStack extends TerraformStack {
  constructor(scope: Construct, id: string, options: BaseOptions) {
    super(scope, id);
    const o = resolveBaseOptions(options);
    if (o.backend.kind === 'local') new LocalBackend(this, { path: o.backend.path });
    else
      this.addOverride('terraform.backend', {
        pg: { schema_name: o.backend.schemaName ?? pgSchemaName(baseStackKey(o)) },
      });
    if (o.cloud === 'aws') {
      awsProvider(this, o.region);
      new AwsBase(this, 'base', o);
    } else if (o.cloud === 'gcp') {
      gcpBaseProvider(this, o);
      new GcpBase(this, 'base', o);
    } else {
      azureProvider(this);
      new AzureBase(this, 'base', o);
    }
  }
}

/** The base stack's Terraform JSON; written to `<outdir>/cdk.tf.json` when outdir is given. */
export function synthBase(options: BaseOptions, outdir?: string): TerraformJson {
  const app = new App({ skipValidation: true, outdir: join(tmpdir(), 'ngsci-cdktf') });
  const stack = new BaseStack(app, 'base', options);
  const json = JSON.parse(Testing.synth(stack, true)) as TerraformJson;
  if (outdir) {
    mkdirSync(outdir, { recursive: true });
    writeFileSync(join(outdir, SYNTH_FILE), JSON.stringify(json, null, 2) + '\n', { mode: 0o600 });
  }
  return json;
}
