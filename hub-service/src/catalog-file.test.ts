/** The operator's catalog file: what it may say, and how a mistake in it is reported. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instanceTypeInfo } from '@ngsci/terraform';
import { builtInView } from './catalog.js';
import {
  CatalogFileError,
  loadCatalogFile,
  machineTable,
  parseCatalogFile,
} from './catalog-file.js';

const EXAMPLE = fileURLToPath(new URL('../../deploy/catalog.example.json', import.meta.url));
const FILE = '/etc/ngsci/catalog.json';

/** The problems a document is refused for, one line each. */
function problems(doc: unknown): string[] {
  try {
    parseCatalogFile(doc, FILE, builtInView());
  } catch (err) {
    assert.ok(err instanceof CatalogFileError, String(err));
    return err.message.split('\n');
  }
  assert.fail('the document was accepted');
}

const l40s = {
  id: 'gpu-l40s',
  label: '1× NVIDIA L40S',
  class: 'gpu',
  vcpu: 4,
  memoryGiB: 32,
  gpu: { model: 'L40S', count: 1, memoryGiB: 48 },
  offers: { aws: { instanceType: 'g6e.xlarge', onDemandMicrosPerHour: 2_050_000 } },
};
const g6e = {
  cloud: 'aws',
  vcpu: 4,
  memoryGiB: 32,
  gpu: { model: 'L40S', count: 1, memoryGiB: 48 },
};

describe('catalog file', () => {
  it('the example in deploy/ is a valid file, and its machine types are ones the stacks accept', () => {
    const file = loadCatalogFile(EXAMPLE, builtInView());
    assert.equal(file.regions.aws, 'eu-west-1');
    assert.deepEqual(
      file.sizes.map((s) => s.id),
      ['gpu-l40s', 'gpu-t4x2', 'gpu-h100', 'cpu-small'],
    );
    const table = machineTable(file);
    for (const key of Object.keys(file.machineTypes)) {
      const info = table[key]!;
      assert.equal(instanceTypeInfo(info.cloud, key, info), info, key);
    }
    assert.equal(table['n1-standard-16+t4x2']?.machineType, 'n1-standard-16');
    assert.deepEqual(table['n1-standard-16+t4x2']?.accelerator, {
      type: 'nvidia-tesla-t4',
      count: 2,
    });
  });

  it('a new size names every field; each problem says the file, where and what', () => {
    const { label: _label, gpu: _gpu, ...partial } = l40s;
    const lines = problems({
      asOf: '2026-11-01',
      machineTypes: { 'g6e.xlarge': g6e },
      sizes: [partial],
    });
    assert.deepEqual(lines, [
      `${FILE}: sizes[0].label: required for a new size (gpu-l40s is not built in)`,
      `${FILE}: sizes[0].gpu: required for a new size (gpu-l40s is not built in)`,
    ]);
  });

  it('an offer must name a machine ngsci can build, with the GPUs of its size', () => {
    const lines = problems({
      asOf: '2026-11-01',
      sizes: [
        l40s,
        {
          id: 'gpu-t4',
          offers: { aws: { instanceType: 'g4dn.12xlarge', onDemandMicrosPerHour: 3_912_000 } },
        },
      ],
    });
    assert.deepEqual(lines, [
      `${FILE}: sizes[0].offers.aws.instanceType: g6e.xlarge is not a aws machine type ngsci knows: add it under machineTypes`,
      `${FILE}: sizes[1].offers.aws.instanceType: g4dn.12xlarge has 4 GPU(s), size gpu-t4 promises 1`,
    ]);
  });

  it('prices are integer micro-dollars, dates and regions are checked, unknown fields refused', () => {
    const lines = problems({
      asOf: '1 Nov 2026',
      regions: { aws: 'Ireland', gcp: 'europe-west4' },
      machineTypes: { 'g6e.xlarge': g6e },
      sizes: [
        {
          ...l40s,
          offers: {
            aws: { instanceType: 'g6e.xlarge', onDemandMicrosPerHour: 2.05, price: 2 },
          },
        },
      ],
    });
    assert.equal(lines.length, 4, lines.join('\n'));
    assert.match(lines[0]!, /^\/etc\/ngsci\/catalog\.json: asOf: a date such as 2026-11-01$/);
    assert.match(lines[1]!, /: regions\.aws: not a aws region name \(such as eu-west-1\)$/);
    assert.match(
      lines[2]!,
      /: sizes\[0\]\.offers\.aws\.onDemandMicrosPerHour: integer micro-dollars \(1 USD = 1000000\)$/,
    );
    assert.match(lines[3]!, /: sizes\[0\]\.offers\.aws: Unrecognized key: "price"$/);
  });

  it('a machine type must be one the stacks can build', () => {
    assert.deepEqual(
      problems({
        asOf: '2026-11-01',
        machineTypes: {
          'g5g.xlarge': { ...g6e, gpu: { model: 'T4G', count: 1, memoryGiB: 16 }, arch: 'arm64' },
        },
      }),
      [
        `${FILE}: machineTypes.g5g.xlarge.arch: only x86_64 machines are supported (the images are x86_64)`,
      ],
    );
    assert.deepEqual(
      problems({
        asOf: '2026-11-01',
        machineTypes: {
          'n1-standard-8+t4x1x': { cloud: 'gcp', vcpu: 8, memoryGiB: 30, gpu: g6e.gpu },
          'a2-highgpu-1g-custom': {
            cloud: 'gcp',
            machineType: 'a2-highgpu-1g',
            vcpu: 12,
            memoryGiB: 85,
            gpu: { model: 'A100-40GB', count: 1, memoryGiB: 40 },
            accelerator: { type: 'nvidia-tesla-a100', count: 1 },
          },
          'Standard_NC4as_T4_v3 ': { cloud: 'azure', vcpu: 4, memoryGiB: 28, gpu: null },
        },
      }),
      [
        `${FILE}: machineTypes.n1-standard-8+t4x1x: n1-standard-8+t4x1x is not how gcp names a machine type`,
        `${FILE}: machineTypes.n1-standard-8+t4x1x: a GCP N1 machine with a GPU needs accelerator.type (such as nvidia-tesla-t4)`,
        `${FILE}: machineTypes.n1-standard-8+t4x1x.machineType: required when the key is not the cloud’s name`,
        `${FILE}: machineTypes.a2-highgpu-1g-custom: only GCP N1 machines take a guest accelerator; other types have their GPUs built in`,
        `${FILE}: machineTypes.Standard_NC4as_T4_v3 : a key is a machine type name: letters, digits, . _ + -`,
        `${FILE}: machineTypes.Standard_NC4as_T4_v3 : Standard_NC4as_T4_v3  is not how azure names a machine type`,
      ],
    );
  });

  it('omitting or listing twice is checked against the built-in sizes', () => {
    const lines = problems({
      asOf: '2026-11-01',
      sizes: [
        { id: 'gpu-t4', label: 'T4' },
        { id: 'gpu-t4', label: 'T4 again' },
      ],
      omitSizes: ['gpu-k80', 'gpu-t4'],
    });
    assert.deepEqual(lines, [
      `${FILE}: sizes[0].id: size gpu-t4 is also in omitSizes`,
      `${FILE}: sizes[1].id: size gpu-t4 is listed twice`,
      `${FILE}: sizes[1].id: size gpu-t4 is also in omitSizes`,
      `${FILE}: omitSizes[0]: gpu-k80 is not a built-in size`,
    ]);
  });

  it('a file that cannot be read or is not JSON is refused with its name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-catalog-'));
    const bad = join(dir, 'catalog.json');
    writeFileSync(bad, '{ "asOf": "2026-11-01", }');
    assert.throws(
      () => loadCatalogFile(bad, builtInView()),
      (e: Error) =>
        e instanceof CatalogFileError && e.message.startsWith(`${bad}: not valid JSON (`),
    );
    assert.throws(
      () => loadCatalogFile(join(dir, 'missing.json'), builtInView()),
      (e: Error) => e.message === `${join(dir, 'missing.json')}: cannot be read (ENOENT)`,
    );
  });
});
