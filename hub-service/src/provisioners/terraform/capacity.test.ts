/**
 * The capacity classification, read from recorded provider failures in terraform's -json format
 * (testdata/*.apply.jsonl, the lines the terraform test double replays).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { capacityFailure } from './capacity.js';
import type { TerraformDiagnostic } from './executor.js';

/** The error diagnostics of a recorded apply, as the executor collects them. */
function recorded(name: string): TerraformDiagnostic[] {
  const file = fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; diagnostic?: TerraformDiagnostic })
    .filter((l) => l.type === 'diagnostic' && l.diagnostic)
    .map((l) => l.diagnostic as TerraformDiagnostic);
}

const diag = (summary: string, detail = ''): TerraformDiagnostic[] => [
  { severity: 'error', summary, detail },
];

describe('capacityFailure', () => {
  it('finds each cloud\'s "no spot capacity" in its recorded apply failure', () => {
    assert.equal(
      capacityFailure('aws', recorded('capacity_aws.apply.jsonl'))?.code,
      'InsufficientInstanceCapacity',
    );
    assert.equal(
      capacityFailure('gcp', recorded('capacity_gcp.apply.jsonl'))?.code,
      'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
    );
    assert.equal(
      capacityFailure('azure', recorded('capacity_azure.apply.jsonl'))?.code,
      'SkuNotAvailable',
    );
    // the zone-capacity error of an on-demand AWS apply is a capacity failure too
    assert.equal(
      capacityFailure('aws', recorded('provider_error.apply.jsonl'))?.code,
      'InsufficientInstanceCapacity',
    );
  });

  it('says which machine the provider could not place, on one line', () => {
    const f = capacityFailure('azure', recorded('capacity_azure.apply.jsonl'));
    assert.ok(f && !f.summary.includes('\n'), 'one line');
    assert.match(f.summary, /creating Linux Virtual Machine/);
  });

  it('the other codes of each cloud', () => {
    const cases: [Parameters<typeof capacityFailure>[0], string, string][] = [
      [
        'aws',
        'creating EC2 Instance: api error SpotMaxPriceTooLow: price too low',
        'SpotMaxPriceTooLow',
      ],
      [
        'aws',
        'creating EC2 Instance: api error MaxSpotInstanceCountExceeded: Max spot instance count exceeded',
        'MaxSpotInstanceCountExceeded',
      ],
      [
        'aws',
        'waiting for EC2 Spot Instance Request: status capacity-not-available',
        'capacity-not-available',
      ],
      [
        'gcp',
        "Error waiting for instance to create: code STOCKOUT in zone 'us-central1-a'",
        'STOCKOUT',
      ],
      [
        'gcp',
        'Error creating instance: ZONE_RESOURCE_POOL_EXHAUSTED: The zone is out',
        'ZONE_RESOURCE_POOL_EXHAUSTED',
      ],
      [
        'azure',
        'unexpected status 409 with error: ZonalAllocationFailed: Allocation failed',
        'ZonalAllocationFailed',
      ],
      [
        'azure',
        'with error: AllocationFailed: Allocation failed. We do not have sufficient capacity',
        'AllocationFailed',
      ],
      [
        'azure',
        'with error: OverconstrainedAllocationRequest: Allocation failed. VM(s) with the following constraints cannot be allocated',
        'OverconstrainedAllocationRequest',
      ],
    ];
    for (const [cloud, summary, code] of cases)
      assert.equal(capacityFailure(cloud, diag(summary))?.code, code, summary);
  });

  it('is null for every failure that on-demand would not fix', () => {
    assert.equal(capacityFailure('gcp', recorded('quota_gcp.apply.jsonl')), null, 'a quota');
    assert.equal(
      capacityFailure(
        'aws',
        diag('creating EC2 Instance: api error UnauthorizedOperation: You are not authorized'),
      ),
      null,
    );
    assert.equal(
      capacityFailure(
        'azure',
        diag('with error: OperationNotAllowed: quota exceeded for NCASv3_T4 family'),
      ),
      null,
    );
    assert.equal(
      capacityFailure('aws', [
        { severity: 'warning', summary: 'InsufficientInstanceCapacity', detail: '' },
      ]),
      null,
      'a warning is not the failure',
    );
    // one cloud's words do not count for another
    assert.equal(capacityFailure('azure', recorded('capacity_gcp.apply.jsonl')), null);
    assert.equal(capacityFailure('gcp', diag('with error: SkuNotAvailable: nope')), null);
    // whole words only
    assert.equal(capacityFailure('azure', diag('error: NotAllocationFailedAtAll')), null);
  });
});
