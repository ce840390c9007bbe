import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_DEFAULTS,
  BASE_PRICES,
  BaseEstimate,
  BaseEstimateError,
  baseSizing,
  estimateBase,
} from './base-estimate.js';
import { formatMicros } from './figures.js';

describe('estimateBase', () => {
  it('aws defaults: every item priced by hand, µ$ exact', () => {
    const e = estimateBase({ cloud: 'aws' });
    assert.equal(e.pricesAsOf, '2025-07-01');
    assert.equal(e.region, 'us-east-1');
    const by = Object.fromEntries(e.lines.map((l) => [l.item, l.monthlyMicros]));
    assert.deepEqual(by, {
      'hub host': 41_600 * 730, // t3.medium $0.0416/h
      'hub boot disk': 30 * 80_000, // 30 GB gp3 at $0.08
      'hub public IPv4 address': 5_000 * 730,
      Postgres: 32_000 * 730, // db.t4g.small $0.032/h
      'Postgres storage': 20 * 115_000,
      'database password secret': 400_000, // Secrets Manager, $0.40/month
      'NAT gateway': 45_000 * 730,
      'NAT gateway public IPv4 address': 5_000 * 730,
      'data set bucket': 100 * 23_000,
    });
    assert.equal(e.totalMonthlyMicros, 101_278_000);
    assert.equal(formatMicros(e.totalMonthlyMicros), '$101.28');
    assert.equal(
      e.totalMonthlyMicros,
      e.lines.reduce((a, l) => a + l.quantity * l.unitPriceMicros, 0),
      'each line is quantity × unit price',
    );
    assert.doesNotThrow(() => BaseEstimate.parse(e));
  });

  it('options change the items: no NAT, a DNS zone, high availability, no bucket', () => {
    const e = estimateBase({
      cloud: 'aws',
      natGateway: false,
      createDnsZone: true,
      dbHighAvailability: true,
      datasetGiB: 0,
    });
    const items = e.lines.map((l) => l.item);
    assert.ok(!items.some((i) => i.startsWith('NAT')));
    assert.ok(!items.includes('data set bucket'));
    const db = e.lines.find((l) => l.item === 'Postgres (primary and standby)')!;
    assert.equal(db.monthlyMicros, 2 * 32_000 * 730);
    assert.equal(e.lines.find((l) => l.item === 'Postgres storage')!.quantity, 40);
    assert.equal(e.lines.find((l) => l.item === 'DNS zone')!.monthlyMicros, 500_000);
    assert.equal(
      e.totalMonthlyMicros,
      41_600 * 730 +
        30 * 80_000 +
        5_000 * 730 +
        2 * 32_000 * 730 +
        40 * 115_000 +
        400_000 +
        500_000,
    );
  });

  it('gcp: Cloud NAT has no fixed part, its address does', () => {
    const e = estimateBase({ cloud: 'gcp' });
    assert.ok(!e.lines.some((l) => l.item === 'NAT gateway'));
    assert.ok(e.lines.some((l) => l.item === 'NAT gateway public IPv4 address'));
    assert.equal(e.lines.find((l) => l.item === 'Postgres')!.type, 'db-custom-1-3840');
    assert.equal(
      e.totalMonthlyMicros,
      33_503 * 730 +
        30 * 100_000 +
        5_000 * 730 +
        67_550 * 730 +
        20 * 170_000 +
        60_000 +
        5_000 * 730 +
        100 * 20_000,
    );
  });

  it('azure defaults', () => {
    const e = estimateBase({ cloud: 'azure' });
    assert.equal(e.lines.find((l) => l.item === 'hub host')!.type, 'Standard_B2s');
    assert.equal(e.lines.find((l) => l.item === 'Postgres storage')!.quantity, 32);
    assert.ok(e.excluded.length > 0);
  });

  it('refuses what it has no price for, and bad input', () => {
    assert.throws(
      () => estimateBase({ cloud: 'aws', hubMachineType: 'x9.huge' }),
      (err: unknown) =>
        err instanceof BaseEstimateError &&
        /no list price for hub machine type x9.huge/.test(err.message),
    );
    assert.throws(() => estimateBase({ cloud: 'gcp', dbTier: 'db.t4g.small' }), /database tier/);
    assert.throws(() => estimateBase({ cloud: 'local' as 'aws' }));
    assert.throws(() => estimateBase({ cloud: 'aws', datasetGiB: -1 }));
    assert.throws(() => estimateBase({ cloud: 'aws', extra: 1 } as never));
  });

  it('every default has a price', () => {
    for (const cloud of ['aws', 'gcp', 'azure'] as const) {
      const d = BASE_DEFAULTS[cloud];
      assert.ok(BASE_PRICES[cloud].hubMachine[d.hubMachineType], cloud);
      assert.ok(BASE_PRICES[cloud].dbTier[d.dbTier], cloud);
      assert.deepEqual(baseSizing({ cloud }), d);
    }
  });
});
