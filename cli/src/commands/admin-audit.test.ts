/**
 * `ngsci admin audit …` against a fake service: verify exits non-zero and names the broken link,
 * rule verbs send exactly what the admin typed (sizes and durations parsed), bad input sends nothing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { BASE, fakeService } from '../testing.js';
import { parseBytes } from './admin.js';

const io = (answer: (url: URL, init?: RequestInit) => Response) => fakeService(answer, 'tok-admin');

describe('admin audit', () => {
  test('verify: intact exits 0; a broken chain exits 1 and names the event', async () => {
    const ok = io(() =>
      Response.json({
        intact: true,
        chains: 2,
        events: 40,
        unchained: 0,
        breaks: [],
        checkedAt: '2026-11-29T10:00:00Z',
      }),
    );
    assert.equal(await run(['admin', 'audit', 'verify'], ok.io), 0);
    assert.match(ok.out(), /intact: 40 events in 2 chains/);

    const broken = io(() =>
      Response.json({
        intact: false,
        chains: 2,
        events: 12,
        unchained: 0,
        breaks: [
          {
            chain: '6f1c0000-0000-0000-0000-000000000001',
            eventId: 1234,
            reason: 'changed',
            expected: 'aa11',
            stored: 'bb22',
            message: 'event 1234 of chain 6f1c… was changed after it was written',
          },
        ],
        checkedAt: '2026-11-29T10:00:00Z',
      }),
    );
    assert.equal(
      await run(
        ['admin', 'audit', 'verify', '--chain', '6f1c0000-0000-0000-0000-000000000001'],
        broken.io,
      ),
      1,
    );
    assert.match(broken.out(), /BROKEN/);
    assert.match(broken.out(), /event 1234: expected aa11, stored bb22/);
    assert.equal(
      broken.calls[0]!.path,
      `${BASE}/admin/audit/verify?chain=6f1c0000-0000-0000-0000-000000000001`,
    );
  });

  test('rules: add-honeypot, add-threshold with sizes and durations, remove-rule', async () => {
    const rule = {
      id: 7,
      kind: 'threshold',
      path: '/data/',
      windowSeconds: 3600,
      maxFiles: 500,
      maxBytes: 10_000_000_000,
      stopServer: false,
      note: null,
      createdBy: 'root',
      createdAt: '2026-11-29T10:00:00Z',
    };
    const t = io((_u, init) =>
      init?.method === 'DELETE' ? new Response(null, { status: 204 }) : Response.json(rule),
    );
    assert.equal(
      await run(['admin', 'audit', 'add-honeypot', '/data/zz-canary.csv', '--stop-server'], t.io),
      0,
    );
    assert.equal(
      await run(
        [
          'admin',
          'audit',
          'add-threshold',
          '--window',
          '1h',
          '--max-files',
          '500',
          '--max-bytes',
          '10GB',
          '--path',
          '/data/',
        ],
        t.io,
      ),
      0,
    );
    assert.equal(await run(['admin', 'audit', 'remove-rule', '7'], t.io), 0);
    assert.deepEqual(
      t.calls.map((c) => [c.method, c.path, c.body]),
      [
        [
          'POST',
          `${BASE}/admin/audit/rules`,
          { kind: 'honeypot', path: '/data/zz-canary.csv', stopServer: true },
        ],
        [
          'POST',
          `${BASE}/admin/audit/rules`,
          {
            kind: 'threshold',
            windowSeconds: 3600,
            maxFiles: 500,
            maxBytes: 10_000_000_000,
            path: '/data/',
            stopServer: false,
          },
        ],
        ['DELETE', `${BASE}/admin/audit/rules/7`, undefined],
      ],
    );
  });

  test('bad input exits 2 and sends nothing', async () => {
    for (const argv of [
      ['admin', 'audit', 'add-honeypot', 'relative.csv'],
      ['admin', 'audit', 'add-threshold', '--max-files', '3'],
      ['admin', 'audit', 'add-threshold', '--window', '1h'],
      ['admin', 'audit', 'add-threshold', '--window', '1h', '--max-bytes', 'lots'],
      ['admin', 'audit', 'events', '--kind', 'everything'],
      ['admin', 'audit', 'remove-rule', 'x'],
      ['admin', 'audit', 'frobnicate'],
    ]) {
      const t = io(() => Response.json({}));
      assert.equal(await run(argv, t.io), 2, argv.join(' '));
      assert.equal(t.calls.length, 0, argv.join(' '));
    }
    assert.equal(parseBytes('2GiB', '--max-bytes'), 2 * 1024 ** 3);
    assert.equal(parseBytes('500MB', '--max-bytes'), 500_000_000);
    assert.equal(parseBytes('1000', '--max-bytes'), 1000);
  });

  test('the event list still works with flags alone', async () => {
    const t = io(() => Response.json({ events: [], nextAfter: null }));
    assert.equal(await run(['admin', 'audit', '--user', 'alice'], t.io), 0);
    assert.equal(t.calls[0]!.path, `${BASE}/admin/audit?user=alice`);
  });
});
