/** The catalog users see: current offers with their dates, unavailable ones with a reason, the file's changes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Catalog, Offer } from '@ngsci/contract';
import { ApiError } from './errors.js';
import { buildCatalog, builtInView, resolveOffer, BUILT_IN_REGIONS } from './catalog.js';
import { loadCatalogFile, parseCatalogFile } from './catalog-file.js';

const ALL = ['local', 'aws', 'gcp', 'azure'] as const;
const EXAMPLE = fileURLToPath(new URL('../../deploy/catalog.example.json', import.meta.url));

const offer = (c: Catalog, size: string, cloud: Offer['cloud']): Offer => {
  const o = c.sizes.find((s) => s.id === size)?.offers.find((x) => x.cloud === cloud);
  assert.ok(o, `${size} has no ${cloud} offer`);
  return o;
};
const refused = (fn: () => unknown, message: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof ApiError && e.code === 'size_unavailable' && message.test(e.message),
  );

describe('built-in catalog', () => {
  const catalog = buildCatalog({ clouds: [...ALL], defaultCloud: 'aws' });

  it('lists retired and driverless types as unavailable, with the reason, and refuses to launch them', () => {
    const ncv3 = offer(catalog, 'gpu-v100', 'azure');
    assert.equal(ncv3.available, false);
    assert.match(ncv3.note ?? '', /retired by Azure on 2025-09-30/);
    refused(
      () => resolveOffer(catalog, { size: 'gpu-v100', cloud: 'azure' }),
      /gpu-v100' is not available on azure: Standard_NC6s_v3: retired by Azure on 2025-09-30/,
    );
    const p3 = offer(catalog, 'gpu-v100', 'aws');
    assert.equal(p3.available, false);
    assert.match(p3.note ?? '', /open kernel modules.*V100/);
    refused(() => resolveOffer(catalog, { size: 'gpu-v100', cloud: 'aws' }), /p3\.2xlarge/);
    // the V100 is still sold where a driver exists for it
    assert.equal(resolveOffer(catalog, { size: 'gpu-v100', cloud: 'gcp' }).offer.available, true);
  });

  it('says when each figure was checked: the catalog date is its oldest price, each offer has its own', () => {
    assert.equal(catalog.asOf, '2025-07-01');
    assert.equal(offer(catalog, 'gpu-v100', 'azure').checkedOn, '2026-11-29');
    assert.equal(offer(catalog, 'gpu-t4', 'aws').checkedOn, '2025-07-01');
  });

  it('prices its offers in the built-in regions', () => {
    for (const cloud of ['aws', 'gcp', 'azure'] as const)
      assert.equal(offer(catalog, 'gpu-t4', cloud).region, BUILT_IN_REGIONS[cloud]);
  });
});

describe('offered clouds', () => {
  it('offers on clouds the hub does not offer are unavailable, with the reason the hub gives', () => {
    const catalog = buildCatalog({
      clouds: ['aws'],
      defaultCloud: 'aws',
      unoffered: {
        local: 'this hub does not offer local (NGSCI_CLOUDS)',
        gcp: 'this hub is not set up to place machines on gcp (no NGSCI_GCP_PROJECT)',
      },
    });
    assert.deepEqual(catalog.clouds, ['aws']);
    assert.equal(offer(catalog, 'gpu-t4', 'aws').available, true);
    const gcp = offer(catalog, 'gpu-t4', 'gcp');
    assert.equal(gcp.available, false);
    assert.match(gcp.note ?? '', /no NGSCI_GCP_PROJECT/);
    refused(
      () => resolveOffer(catalog, { size: 'cpu-small', cloud: 'local' }),
      /not available on local: this hub does not offer local/,
    );
    // a reason of the offer itself wins over the hub's
    assert.match(offer(catalog, 'gpu-v100', 'azure').note ?? '', /retired/);
    assert.match(
      offer(catalog, 'gpu-t4', 'azure').note ?? '',
      /this hub is not set up to provision on azure/,
    );
  });
});

describe('catalog from the file', () => {
  const file = loadCatalogFile(EXAMPLE, builtInView());
  const catalog = buildCatalog({ clouds: [...ALL], defaultCloud: 'aws', file, simulateGpus: true });

  it('adds a size without code: listed, priced, launchable, and the local offer priced like it', () => {
    const l40s = resolveOffer(catalog, { size: 'gpu-l40s', cloud: 'aws', spot: true });
    assert.equal(l40s.offer.instanceType, 'g6e.xlarge');
    assert.equal(l40s.offer.region, 'eu-west-1');
    assert.equal(l40s.ratePerHourMicros, 820_000);
    assert.equal(l40s.size.gpu?.model, 'L40S');
    assert.match(offer(catalog, 'gpu-l40s', 'gcp').note ?? '', /Google Cloud offers no L40S/);
    assert.equal(offer(catalog, 'gpu-l40s', 'local').onDemandMicrosPerHour, 2_050_000);
    // a size the file gives no azure offer is listed there as unavailable, not left out
    assert.equal(offer(catalog, 'gpu-t4x2', 'azure').available, false);
    assert.equal(
      resolveOffer(catalog, { size: 'gpu-t4x2', cloud: 'gcp' }).offer.instanceType,
      'n1-standard-16+nvidia-tesla-t4',
    );
  });

  it('moves every offer of a cloud to the file’s region and replaces the offers it names', () => {
    assert.equal(offer(catalog, 'gpu-t4', 'aws').region, 'eu-west-1');
    assert.equal(offer(catalog, 'gpu-t4', 'gcp').region, 'europe-west4');
    assert.equal(offer(catalog, 'gpu-a100', 'azure').region, 'westeurope');
    const small = offer(catalog, 'cpu-small', 'aws');
    assert.equal(small.onDemandMicrosPerHour, 107_000);
    assert.equal(small.note, 'eu-west-1 list price');
    assert.equal(small.checkedOn, '2026-11-01');
    assert.equal(offer(catalog, 'cpu-small', 'gcp').onDemandMicrosPerHour, 97_100);
    assert.equal(
      catalog.sizes.some((s) => s.id === 'gpu-v100'),
      false,
    );
  });

  it('an offer on a retired type in the file is listed as unavailable, not sent to terraform', () => {
    const withRetired = parseCatalogFile(
      {
        asOf: '2026-11-01',
        sizes: [
          {
            id: 'gpu-t4',
            offers: {
              azure: { instanceType: 'Standard_NC6s_v3', onDemandMicrosPerHour: 3_060_000 },
            },
          },
        ],
      },
      'catalog.json',
      builtInView(),
    );
    const c = buildCatalog({ clouds: [...ALL], defaultCloud: 'aws', file: withRetired });
    refused(
      () => resolveOffer(c, { size: 'gpu-t4', cloud: 'azure' }),
      /retired by Azure on 2025-09-30/,
    );
  });
});
