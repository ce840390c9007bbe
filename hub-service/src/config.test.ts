/** Start-up configuration: which clouds the hub offers, and the catalog file. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCatalog, resolveOffer } from './catalog.js';
import {
  catalogOptions,
  ConfigError,
  enabledClouds,
  loadConfig,
  withSecretsFile,
} from './config.js';

const BASE = {
  JUPYTERHUB_API_TOKEN: 'hub-token-for-tests',
  NGSCI_BRIDGE_SECRET: 'a-bridge-secret-of-32-characters',
  NGSCI_SECRET_KEY: 'secret-key-for-tests-0123456789abcdef',
};
const TERRAFORM = {
  ...BASE,
  NGSCI_PROVISIONER: 'terraform',
  NGSCI_TERRAFORM_SERVICE_URL: 'https://hub.example.org/services/ngsci',
  NGSCI_TERRAFORM_HUB_CIDR: '10.0.0.0/24',
};
const AWS = { NGSCI_AWS_VPC_ID: 'vpc-0abc', NGSCI_AWS_SUBNET_ID: 'subnet-0abc' };
const EXAMPLE = fileURLToPath(new URL('../../deploy/catalog.example.json', import.meta.url));

const configError = (env: Record<string, string>, ...lines: (string | RegExp)[]) =>
  assert.throws(
    () => loadConfig(env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      for (const l of lines)
        if (typeof l === 'string') assert.ok(e.message.includes(l), `${e.message}\n≠ ${l}`);
        else assert.match(e.message, l);
      return true;
    },
  );

describe('offered clouds', () => {
  it('the local provisioner offers local, as npm start always did', () => {
    const config = loadConfig(BASE);
    assert.deepEqual(enabledClouds(config), ['local']);
    assert.equal(config.NGSCI_DEFAULT_CLOUD, 'local');
    const catalog = buildCatalog(catalogOptions(config));
    assert.equal(resolveOffer(catalog, { size: 'cpu-small' }).offer.cloud, 'local');
    assert.throws(
      () => resolveOffer(catalog, { size: 'cpu-small', cloud: 'aws' }),
      /not available on aws: this hub runs no cloud machines \(NGSCI_PROVISIONER=local\)/,
    );
  });

  it('terraform offers the clouds with a placement, not local, and says why the others are not offered', () => {
    const config = loadConfig({ ...TERRAFORM, ...AWS, NGSCI_GCP_NETWORK: 'ngsci' });
    assert.deepEqual(enabledClouds(config), ['aws']);
    assert.equal(config.NGSCI_DEFAULT_CLOUD, 'aws');
    const catalog = buildCatalog(catalogOptions(config));
    assert.equal(resolveOffer(catalog, { size: 'gpu-t4' }).offer.cloud, 'aws');
    const note = (cloud: string) =>
      catalog.sizes[0]!.offers.find((o) => o.cloud === cloud && !o.available)?.note;
    assert.equal(note('local'), 'this hub does not offer local (NGSCI_CLOUDS)');
    assert.equal(
      note('gcp'),
      'this hub is not set up to place machines on gcp (no NGSCI_GCP_PROJECT)',
    );
    assert.match(note('azure') ?? '', /no NGSCI_AZURE_RESOURCE_GROUP, NGSCI_AZURE_SUBNET_ID/);
  });

  it('local runs beside a cloud only when NGSCI_CLOUDS names it', () => {
    const config = loadConfig({ ...TERRAFORM, ...AWS, NGSCI_CLOUDS: 'aws,local' });
    assert.deepEqual(enabledClouds(config), ['aws', 'local']);
    assert.equal(config.NGSCI_DEFAULT_CLOUD, 'aws');
  });

  it('refuses to start when NGSCI_CLOUDS names a cloud without a placement, or none is placed', () => {
    configError(
      { ...TERRAFORM, ...AWS, NGSCI_CLOUDS: 'aws,gcp' },
      'NGSCI_CLOUDS: names gcp, which has no placement (set NGSCI_GCP_PROJECT; see docs/clouds.md)',
    );
    configError(
      { ...TERRAFORM, NGSCI_AWS_VPC_ID: 'vpc-0abc' },
      'NGSCI_PROVISIONER: terraform places machines on no cloud',
    );
    configError(
      { ...TERRAFORM, ...AWS, NGSCI_DEFAULT_CLOUD: 'local' },
      'NGSCI_DEFAULT_CLOUD: local is not among the clouds this hub offers (aws)',
    );
  });
});

describe('NGSCI_CATALOG_FILE', () => {
  it('the catalog is built from the file the service checked at start', () => {
    const config = loadConfig({
      ...BASE,
      NGSCI_CATALOG_FILE: EXAMPLE,
      NGSCI_LOCAL_SIMULATE_GPUS: 'true',
    });
    const catalog = buildCatalog(catalogOptions(config));
    const l40s = resolveOffer(catalog, { size: 'gpu-l40s' });
    assert.equal(l40s.offer.cloud, 'local');
    assert.equal(l40s.ratePerHourMicros, 2_050_000);
  });

  it('a bad file stops the service, each problem naming the setting, the file and the place', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-config-'));
    const file = join(dir, 'catalog.json');
    writeFileSync(
      file,
      JSON.stringify({
        asOf: '2026-11-01',
        regions: { gcp: 'Iowa' },
        sizes: [{ id: 'gpu-x', label: 'X', class: 'gpu', vcpu: 4, memoryGiB: 16 }],
      }),
    );
    configError(
      { ...BASE, NGSCI_CATALOG_FILE: file },
      `  NGSCI_CATALOG_FILE: ${file}: regions.gcp: not a gcp region name (such as europe-west4)`,
    );
    writeFileSync(
      file,
      JSON.stringify({
        asOf: '2026-11-01',
        sizes: [{ id: 'gpu-x', label: 'X', class: 'gpu', vcpu: 4, memoryGiB: 16 }],
      }),
    );
    configError(
      { ...BASE, NGSCI_CATALOG_FILE: file },
      `  NGSCI_CATALOG_FILE: ${file}: sizes[0].gpu: required for a new size (gpu-x is not built in)`,
    );
    configError(
      { ...BASE, NGSCI_CATALOG_FILE: join(dir, 'nope.json') },
      `NGSCI_CATALOG_FILE: ${join(dir, 'nope.json')}: cannot be read (ENOENT)`,
    );
  });
});

describe('secrets handed over in a file (NGSCI_SECRETS_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-secrets-'));
  const file = (name: string, text: string, mode = 0o600) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode });
    chmodSync(path, mode);
    return path;
  };

  it('adds the file’s settings to the environment; the environment wins', () => {
    const path = file(
      'ok.json',
      JSON.stringify({ NGSCI_SECRET_KEY: 'from-the-file-0123456789', NGSCI_BRIDGE_SECRET: 'x' }),
    );
    const env = withSecretsFile({
      NGSCI_SECRETS_FILE: path,
      NGSCI_BRIDGE_SECRET: 'a-bridge-secret-of-32-characters',
      JUPYTERHUB_API_TOKEN: 'hub-token-for-tests',
    });
    const config = loadConfig(env);
    assert.equal(config.NGSCI_SECRET_KEY, 'from-the-file-0123456789');
    assert.equal(config.NGSCI_BRIDGE_SECRET, 'a-bridge-secret-of-32-characters');
  });

  it('refuses a file others may read, one that is not JSON, or not settings to strings', () => {
    for (const [path, why] of [
      [file('open.json', '{}', 0o644), /may be read by others/],
      [file('bad.json', 'NGSCI_SECRET_KEY=x'), /is not JSON/],
      [file('nested.json', '{"NGSCI_SECRET_KEY": 1}'), /object of setting names to strings/],
      [join(dir, 'missing.json'), /cannot read .* \(ENOENT\)/],
    ] as const)
      assert.throws(
        () => withSecretsFile({ NGSCI_SECRETS_FILE: path }),
        (e: unknown) => e instanceof ConfigError && why.test(e.message),
        String(why),
      );
  });
});

describe('NGSCI_DATA_DIR', () => {
  it('is an absolute path: unset, .ngsci resolved once at start; a relative one is refused by name', () => {
    assert.equal(loadConfig(BASE).NGSCI_DATA_DIR, join(process.cwd(), '.ngsci'));
    assert.equal(
      loadConfig({ ...BASE, NGSCI_DATA_DIR: '/srv/ngsci' }).NGSCI_DATA_DIR,
      '/srv/ngsci',
    );
    assert.throws(
      () => loadConfig({ ...BASE, NGSCI_DATA_DIR: '.ngsci' }),
      (err: Error) =>
        err instanceof ConfigError && /NGSCI_DATA_DIR: must be an absolute path/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ ...BASE, NGSCI_LOCAL_HOMES: 'homes' }),
      /NGSCI_LOCAL_HOMES: must be an absolute path/,
    );
  });
});
