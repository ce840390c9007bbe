/** `ngsci admin quota set --forbid`: sizes a quota forbids, sent as forbiddenSizes and listed. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

const row = {
  id: 3,
  subjectKind: 'group',
  subjectName: 'students',
  monthlyBudgetMicros: null,
  hardStop: false,
  maxConcurrent: null,
  allowedSizes: ['any.t4'],
  forbiddenSizes: null,
  gpuHoursPerMonth: null,
  idleTimeoutCpuSeconds: null,
  idleTimeoutGpuSeconds: null,
  maxAgeSeconds: null,
  updatedAt: '2026-11-30T00:00:00Z',
};

describe('ngsci admin quota --forbid', () => {
  test('sends the forbidden sizes, keeps the row’s allowed sizes, and lists them', async () => {
    let quotas: unknown[] = [row];
    const t = fakeService((_path, init) => {
      if ((init?.method ?? 'GET') === 'GET') return Response.json({ quotas });
      return Response.json({ ...row, ...JSON.parse(String(init?.body)) });
    }, 'tok');
    const argv = ['admin', 'quota', 'set', '--group', 'students', '--forbid', 'any.h100x8, xl.any'];
    assert.equal(await run(argv, t.io), 0, t.err());
    const put = t.calls.find((c) => c.method === 'PUT');
    assert.ok(put, 'an existing row is replaced');
    const body = put.body as Record<string, unknown>;
    assert.deepEqual(body.forbiddenSizes, ['any.h100x8', 'xl.any']);
    assert.deepEqual(body.allowedSizes, ['any.t4'], 'the allowed sizes it had are kept');
    assert.match(t.out(), /FORBIDDEN/);
    assert.match(t.out(), /any\.h100x8,xl\.any/);

    quotas = [{ ...row, forbiddenSizes: ['any.h100x8'] }];
    t.calls.length = 0;
    assert.equal(
      await run(['admin', 'quota', 'set', '--group', 'students', '--forbid', 'none'], t.io),
      0,
    );
    const cleared = t.calls.find((c) => c.method === 'PUT')!.body as Record<string, unknown>;
    assert.equal(cleared.forbiddenSizes, null, "'none' clears the list");
  });

  test('a malformed entry exits 2 and sends nothing that changes', async () => {
    const t = fakeService(() => Response.json({ quotas: [] }), 'tok');
    assert.equal(await run(['admin', 'quota', 'set', '--default', '--forbid', 'H100!'], t.io), 2);
    assert.match(t.err(), /'H100!' is not a size id/);
    assert.equal(t.calls.filter((c) => c.method !== 'GET').length, 0);
  });

  test('--help names --forbid', async () => {
    const t = fakeService(() => Response.json({}), 'tok');
    assert.equal(await run(['admin', 'quota', 'set', '--help'], t.io), 0);
    assert.match(t.out(), /--forbid a,b\|none/);
  });

  test('catalog --pairs shows a pair your quotas forbid as unavailable, with the reason', async () => {
    const pair = (id: string, cpu: string) => ({
      id,
      label: id,
      class: 'cpu',
      vcpu: 2,
      memoryGiB: 8,
      gpu: null,
      package: { cpu, gpu: 'none' },
      offers: [
        {
          cloud: 'aws',
          region: 'r',
          instanceType: 'm6i.large',
          available: true,
          onDemandMicrosPerHour: 96_000,
          spotMicrosPerHour: null,
        },
      ],
    });
    const t = fakeService((url) =>
      url.pathname.endsWith('/budget')
        ? Response.json({
            limits: {
              forbiddenSizes: [
                { entry: 'xl.any', reason: "not allowed for your group 'students'" },
              ],
            },
          })
        : Response.json({
            asOf: '2025-07-01',
            currency: 'USD',
            defaultCloud: 'aws',
            clouds: ['aws'],
            sizes: [],
            pairs: [pair('s.none', 's'), pair('xl.none', 'xl')],
          }),
    );
    assert.equal(await run(['catalog', '--pairs'], t.io), 0, t.err());
    const lines = t.out().split('\n');
    assert.match(lines.find((l) => l.startsWith('s.none')) ?? '', /m6i\.large\s+\$0\.096/);
    assert.match(
      lines.find((l) => l.startsWith('xl.none')) ?? '',
      /unavailable\s+-\s+-\s+not allowed for your group 'students'/,
    );
  });
});
