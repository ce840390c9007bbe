/**
 * The base stack's fixed monthly cost: GET /api/v1/admin/base-estimate answers what the contract
 * computes (the CLI prints the same), admins only, bad input refused with a code; and the priced
 * sizing is the sizing terraform/src/base/ synthesizes (the two packages keep one set of defaults).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_DEFAULTS, estimateBase, type BaseEstimate } from '@ngsci/contract';
import { baseDefaults, synthBase, type BaseOptions } from '@ngsci/terraform';
import { ACCESS, harness, type Harness } from '../testing/harness.js';

describe('GET /admin/base-estimate', () => {
  let h: Harness;
  let admin: string;
  before(async () => {
    h = await harness();
    admin = h.token({ name: 'boss', admin: true, scopes: [ACCESS, 'custom:ngsci:admin'] });
  });
  after(() => h.close());

  it('answers the contract estimate, item by item', async () => {
    const res = await h.request('/api/v1/admin/base-estimate?cloud=aws', { token: admin });
    assert.equal(res.status, 200);
    const body = (await res.json()) as BaseEstimate;
    assert.deepEqual(body, estimateBase({ cloud: 'aws' }));
    assert.equal(body.totalMonthlyMicros, 101_278_000);
    const q =
      'cloud=gcp&natGateway=false&createDnsZone=true&datasetGiB=500&dbHighAvailability=true';
    const gcp = (await (
      await h.request(`/api/v1/admin/base-estimate?${q}`, { token: admin })
    ).json()) as BaseEstimate;
    assert.deepEqual(
      gcp,
      estimateBase({
        cloud: 'gcp',
        natGateway: false,
        createDnsZone: true,
        datasetGiB: 500,
        dbHighAvailability: true,
      }),
    );
  });

  it('admins only; bad input is a 400 with a code', async () => {
    const user = h.token({ name: 'ada', scopes: [ACCESS] });
    assert.equal(
      (await h.request('/api/v1/admin/base-estimate?cloud=aws', { token: user })).status,
      403,
    );
    const cases: [string, string][] = [
      ['cloud=local', 'validation_failed'],
      ['cloud=aws&datasetGiB=-5', 'validation_failed'],
      ['cloud=aws&natGateway=yes', 'validation_failed'],
      ['cloud=aws&dbStorageGiB=5', 'validation_failed'],
      ['cloud=aws&hubMachineType=x9.huge', 'bad_request'],
      ['cloud=aws&nope=1', 'validation_failed'],
    ];
    for (const [query, code] of cases) {
      const res = await h.request(`/api/v1/admin/base-estimate?${query}`, { token: admin });
      assert.equal(res.status, 400, query);
      const body = (await res.json()) as { code: string; message: string };
      assert.equal(body.code, code, `${query}: ${body.message}`);
    }
  });
});

describe('the estimate prices what the base stack creates', () => {
  const OPTIONS: Record<'aws' | 'gcp' | 'azure', BaseOptions> = {
    aws: {
      cloud: 'aws',
      region: 'us-east-1',
      dnsHost: 'hub',
      dnsZone: 'example.org',
      backend: { kind: 'local', path: 't' },
    },
    gcp: {
      cloud: 'gcp',
      region: 'us-central1',
      dnsHost: 'hub',
      dnsZone: 'example.org',
      backend: { kind: 'local', path: 't' },
      gcp: { project: 'ngsci-test', dbPasswordSecret: 'ngsci-db-password' },
    },
    azure: {
      cloud: 'azure',
      region: 'eastus',
      dnsHost: 'hub',
      dnsZone: 'example.org',
      backend: { kind: 'local', path: 't' },
      azure: {
        resourceGroup: 'ngsci',
        keyVaultId:
          '/subscriptions/0/resourceGroups/ops/providers/Microsoft.KeyVault/vaults/ops-kv',
        dbPasswordSecretName: 'ngsci-db-password',
        adminSshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake ngsci',
      },
    },
  };

  for (const cloud of ['aws', 'gcp', 'azure'] as const) {
    it(`${cloud}: same defaults; every priced resource type is in the synthesized stack`, () => {
      const tf = baseDefaults(cloud);
      const priced = BASE_DEFAULTS[cloud];
      for (const k of [
        'hubMachineType',
        'hubDiskGiB',
        'dbTier',
        'dbStorageGiB',
        'dbHighAvailability',
        'natGateway',
        'createDnsZone',
      ] as const)
        assert.equal(tf[k], priced[k], `${cloud} ${k}`);
      const json = synthBase({
        ...OPTIONS[cloud],
        createDnsZone: true,
        datasetBucket: cloud === 'azure' ? 'ngscidata' : 'ngsci-data',
      });
      const estimate = estimateBase({ cloud, createDnsZone: true });
      for (const line of estimate.lines)
        assert.ok(json.resource?.[line.resource], `${cloud}: ${line.item} prices ${line.resource}`);
      const hub = Object.values(json.resource?.[estimate.lines[0]!.resource] ?? {})[0] as Record<
        string,
        unknown
      >;
      const type = hub.instance_type ?? hub.machine_type ?? hub.size;
      assert.equal(
        type,
        estimate.lines[0]!.type,
        `${cloud}: the hub host priced is the one created`,
      );
    });
  }
});
