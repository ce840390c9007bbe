/**
 * `ngsci admin estimate-base`: the base stack's fixed monthly cost, computed without a service,
 * every figure written by the contract's formatting; `--remote` asks the service instead.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateBase, formatMicros } from '@ngsci/contract';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

function io(answer: (url: URL) => Response = () => new Response('no', { status: 500 })) {
  const t = fakeService(answer);
  return { ...t, paths: () => t.calls.map((c) => c.path) };
}

describe('admin estimate-base', () => {
  test('aws: every item and the total, formatted by the contract, no service asked', async () => {
    const t = io();
    assert.equal(await run(['admin', 'estimate-base', '--cloud', 'aws'], t.io), 0);
    const text = t.out();
    const e = estimateBase({ cloud: 'aws' });
    for (const line of e.lines) {
      const row = text.split('\n').find((l) => l.startsWith(`${line.item} `));
      assert.ok(row, line.item);
      assert.ok(row.trimEnd().endsWith(formatMicros(line.monthlyMicros)), row);
    }
    assert.match(text, /^total per month\s+\$101\.28$/m);
    assert.match(text, /hub host\s+t3\.medium\s+730 h\s+\$0\.0416\/h\s+\$30\.37/);
    assert.match(text, /list prices of 2025-07-01/);
    assert.match(text, /Not included \(usage-priced\): NAT gateway data processing/);
    assert.deepEqual(t.paths(), []);
  });

  test('options reach the estimate; --json is the contract object', async () => {
    const t = io();
    const args = ['admin', 'estimate-base', '--json', '--cloud', 'gcp', '--no-nat', '--dns-zone'];
    args.push(
      '--dataset-gib',
      '0',
      '--db-ha',
      '--db-storage-gib',
      '50',
      '--hub-machine',
      'e2-small',
    );
    assert.equal(await run(args, t.io), 0);
    assert.deepEqual(
      JSON.parse(t.out()),
      estimateBase({
        cloud: 'gcp',
        natGateway: false,
        createDnsZone: true,
        datasetGiB: 0,
        dbHighAvailability: true,
        dbStorageGiB: 50,
        hubMachineType: 'e2-small',
      }),
    );
  });

  test('bad input: exit 2 with what to type, nothing sent', async () => {
    const cases: [string[], RegExp][] = [
      [[], /--cloud must be aws, gcp or azure/],
      [['--cloud', 'local'], /--cloud must be aws, gcp or azure, not 'local'/],
      [['--cloud', 'aws', '--db-storage-gib', '5'], /--db-storage-gib must be between 20/],
      [['--cloud', 'aws', '--dataset-gib', '1.5'], /--dataset-gib must be a whole number/],
      [
        ['--cloud', 'aws', '--hub-machine', 'x9.huge'],
        /no list price for hub machine type x9\.huge/,
      ],
      [['--cloud', 'azure', '--db-tier', 'a b'], /--db-tier must be a machine type or tier/],
      [['--cloud', 'aws', '--nat'], /unknown option '--nat'/],
    ];
    for (const [extra, message] of cases) {
      const t = io();
      assert.equal(await run(['admin', 'estimate-base', ...extra], t.io), 2, extra.join(' '));
      assert.match(t.err(), message, extra.join(' '));
      assert.deepEqual(t.paths(), []);
    }
  });

  test('--remote asks GET /admin/base-estimate with the options and prints its answer', async () => {
    const answer = estimateBase({ cloud: 'azure', natGateway: false });
    const t = io(() => Response.json(answer));
    assert.equal(
      await run(['admin', 'estimate-base', '--cloud', 'azure', '--no-nat', '--remote'], t.io),
      0,
    );
    assert.deepEqual(t.paths(), [
      '/services/ngsci/api/v1/admin/base-estimate?cloud=azure&natGateway=false',
    ]);
    assert.match(
      t.out(),
      new RegExp(`total per month\\s+\\${formatMicros(answer.totalMonthlyMicros)}`),
    );
  });

  test('--help', async () => {
    const t = io();
    assert.equal(await run(['admin', 'estimate-base', '--help'], t.io), 0);
    assert.match(t.out(), /Usage: ngsci admin estimate-base --cloud aws\|gcp\|azure/);
  });
});
