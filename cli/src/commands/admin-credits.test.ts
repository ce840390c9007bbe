/**
 * `ngsci admin credits …` against a fake service: add sends exactly the grant the admin typed
 * (dollars to µ$, days checked), bad input sends nothing, list shows the draw-down and the alerts,
 * statement shows list, credits and net per cloud.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { BASE, fakeService } from '../testing.js';
import { parseGrantDollars } from './admin-credits.js';

const io = (answer: (url: URL, init?: RequestInit) => Response) => fakeService(answer, 'tok-admin');

const GRANT = {
  id: 7,
  cloud: 'aws',
  amountMicros: 50_000_000_000,
  startsOn: '2026-01-01',
  expiresOn: '2027-03-31',
  note: 'research credits',
  createdBy: 'root',
  createdAt: '2026-01-02T00:00:00.000Z',
  usedMicros: 1_250_000_000,
  remainingMicros: 48_750_000_000,
  state: 'active',
};

describe('admin credits', () => {
  test('add sends the grant in µ$ with its days and note', async () => {
    const t = io(() => Response.json(GRANT, { status: 201 }));
    const code = await run(
      [
        'admin',
        'credits',
        'add',
        '--cloud',
        'aws',
        '--amount',
        '50,000',
        '--starts',
        '2026-01-01',
        '--expires',
        '2027-03-31',
        '--note',
        'research credits',
      ],
      t.io,
    );
    assert.equal(code, 0, t.err());
    assert.deepEqual(t.calls, [
      {
        path: `${BASE}/admin/credits`,
        method: 'POST',
        body: {
          cloud: 'aws',
          amountMicros: 50_000_000_000,
          startsOn: '2026-01-01',
          expiresOn: '2027-03-31',
          note: 'research credits',
        },
      },
    ]);
    assert.match(t.out(), /recorded grant 7/);
    assert.match(t.out(), /\$50,000\.00/);
  });

  test('bad input is refused before anything is sent', async () => {
    const bad: string[][] = [
      ['--cloud', 'local', '--amount', '10', '--expires', '2027-01-01'],
      ['--cloud', 'aws', '--amount', 'ten', '--expires', '2027-01-01'],
      ['--cloud', 'aws', '--amount', '0', '--expires', '2027-01-01'],
      ['--cloud', 'aws', '--amount', '10', '--expires', '2027-02-30'],
      ['--cloud', 'aws', '--amount', '10'],
      ['--cloud', 'aws', '--amount', '10', '--starts', '2027-02-01', '--expires', '2027-01-01'],
    ];
    for (const args of bad) {
      const t = io(() => Response.json({}));
      const code = await run(['admin', 'credits', 'add', ...args], t.io);
      assert.equal(code, 2, args.join(' '));
      assert.equal(t.calls.length, 0, args.join(' '));
    }
    assert.throws(() => parseGrantDollars('5,00', '--amount'));
    assert.equal(parseGrantDollars('$1,234.5', '--amount'), 1_234_500_000);
  });

  test('list shows used and left, and the alerts', async () => {
    const t = io(() =>
      Response.json({
        asOf: '2026-03-01T00:00:00.000Z',
        grants: [GRANT],
        alerts: [
          {
            grantId: 7,
            cloud: 'aws',
            kind: 'expires_unused',
            on: '2026-03-20',
            remainingMicros: 1,
            burnMicrosPerDay: 0,
            unusedMicros: 1,
            message:
              "AWS grant 'research credits' expires on 2026-03-20 with about < $0.0001 unused",
          },
        ],
      }),
    );
    assert.equal(await run(['admin', 'credits'], t.io), 0, t.err());
    assert.equal(t.calls[0]!.path, `${BASE}/admin/credits`);
    assert.match(t.out(), /AMOUNT\s+USED\s+LEFT/);
    assert.match(t.out(), /\$1,250\.00\s+\$48,750\.00/);
    assert.match(t.out(), /! AWS grant 'research credits' expires on 2026-03-20/);
  });

  test('--lower-charges on|off sends the setting; anything else sends nothing', async () => {
    const t = io((_url, init) =>
      Response.json({
        lowerCharges: (JSON.parse(String(init?.body)) as { lowerCharges: boolean }).lowerCharges,
        updatedBy: 'root',
        updatedAt: '2026-03-01T00:00:00.000Z',
      }),
    );
    assert.equal(await run(['admin', 'credits', '--lower-charges', 'on'], t.io), 0, t.err());
    assert.equal(await run(['admin', 'credits', '--lower-charges', 'off'], t.io), 0, t.err());
    assert.deepEqual(t.calls, [
      { path: `${BASE}/admin/credits/settings`, method: 'PUT', body: { lowerCharges: true } },
      { path: `${BASE}/admin/credits/settings`, method: 'PUT', body: { lowerCharges: false } },
    ]);
    assert.match(t.out(), /credits now also lower what researchers are charged/);
    assert.match(t.out(), /list price times their plan again/);
    const bad = io(() => Response.json({}));
    assert.notEqual(await run(['admin', 'credits', '--lower-charges', 'yes'], bad.io), 0);
    assert.match(bad.err(), /--lower-charges must be on or off, not 'yes'/);
    assert.deepEqual(bad.calls, []);
    // the list says which way it is set
    const list = io(() =>
      Response.json({
        asOf: '2026-03-01T00:00:00.000Z',
        grants: [],
        alerts: [],
        lowerCharges: true,
      }),
    );
    assert.equal(await run(['admin', 'credits'], list.io), 0, list.err());
    assert.match(list.out(), /credits lower researchers' charges: on/);
  });

  test('remove and statement', async () => {
    const del = io(() => Response.json(GRANT));
    assert.equal(await run(['admin', 'credits', 'remove', '7'], del.io), 0, del.err());
    assert.deepEqual(del.calls[0], {
      path: `${BASE}/admin/credits/7`,
      method: 'DELETE',
      body: undefined,
    });

    const st = io(() =>
      Response.json({
        month: '2026-03',
        clouds: [
          { cloud: 'aws', listMicros: 3_000_000, creditsMicros: 2_000_000, netMicros: 1_000_000 },
          { cloud: 'gcp', listMicros: 0, creditsMicros: 0, netMicros: 0 },
          { cloud: 'azure', listMicros: 0, creditsMicros: 0, netMicros: 0 },
        ],
        listMicros: 3_000_000,
        creditsMicros: 2_000_000,
        netMicros: 1_000_000,
      }),
    );
    assert.equal(await run(['admin', 'credits', 'statement', '--month', '2026-03'], st.io), 0);
    assert.equal(st.calls[0]!.path, `${BASE}/admin/credits/statement/2026-03`);
    assert.match(st.out(), /aws\s+\$3\.00\s+\$2\.00\s+\$1\.00/);
    const bad = io(() => Response.json({}));
    assert.equal(await run(['admin', 'credits', 'statement', '--month', '2026-13'], bad.io), 2);
    assert.equal(bad.calls.length, 0);
  });
});

describe('estimate with credits', () => {
  test('a scenario that tries a grant shows what it covers and the total after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-est-'));
    const file = join(dir, 'scenario.json');
    const scenario = {
      instanceHours: [{ size: 'gpu-t4', cloud: 'aws', hoursPerMonth: 1000 }],
      credits: [{ cloud: 'aws', amountMicros: 50_000_000_000 }],
    };
    writeFileSync(file, JSON.stringify(scenario));
    const t = io(() =>
      Response.json({
        asOf: '2026-11-01',
        months: 12,
        lines: [
          {
            kind: 'instance_hours',
            name: 'gpu-t4 on aws us-east-1',
            quantity: 1000,
            unit: 'hour',
            unitMicros: 526_000,
            monthlyMicros: 526_000_000,
          },
        ],
        monthlyMicros: 526_000_000,
        annualMicros: 6_312_000_000,
        totalMicros: 6_312_000_000,
        credits: {
          grants: [
            {
              cloud: 'aws',
              source: 'scenario',
              amountMicros: 50_000_000_000,
              expiresOn: null,
              note: null,
              appliedMicros: 6_312_000_000,
            },
          ],
          appliedMicros: 6_312_000_000,
          netTotalMicros: 0,
          summary:
            'with the $50,000.00 AWS grant this scenario costs $0.00 over 12 months (list $6,312.00)',
        },
      }),
    );
    assert.equal(await run(['estimate', file], t.io), 0, t.err());
    assert.deepEqual(t.calls[0]!.body, scenario);
    assert.match(t.out(), /credits applied:\s+\$6,312\.00/);
    assert.match(t.out(), /total after credits:\s+\$0\.00/);
    assert.match(t.out(), /with the \$50,000\.00 AWS grant this scenario costs \$0\.00/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('launch without --cloud', () => {
  test('says where the service placed it and why; the body names no cloud', async () => {
    const t = io(() =>
      Response.json(
        {
          id: 'i-1',
          user: 'ada',
          server: 'default',
          size: 'gpu-t4',
          cloud: 'gcp',
          region: 'us-central1',
          spot: false,
          state: 'requested',
          errorCode: null,
          errorMessage: null,
          exitCode: null,
          url: null,
          ratePerHourMicros: 540_000,
          createdAt: '2026-11-30T00:00:00.000Z',
          readyAt: null,
          stoppedAt: null,
          placement: 'on GCP: covered by research credits until 2027-03-31',
        },
        { status: 202 },
      ),
    );
    assert.equal(await run(['launch', 'gpu-t4', '--no-wait'], t.io), 0, t.err());
    assert.equal((t.calls[0]!.body as { cloud?: string }).cloud, undefined);
    assert.match(t.err(), /on GCP: covered by research credits until 2027-03-31/);
  });
});
