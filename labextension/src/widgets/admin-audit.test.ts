/**
 * The Audit section's calls through the one seam: admin calls go with the sign-in (no page
 * token) and the CSRF value on changes; the chain status line names the broken event; a
 * honeypot path must be absolute.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi } from '../api';
import { fakeFetch, json, recorder, type Seen } from '../testing';
import { auditApi, chainSummary, checkHoneypotPath } from './admin-audit';

const base = '/services/ngsci/api/v1';

test('audit calls use the admin sign-in; adding a honeypot sends the CSRF value', async () => {
  const seen: Seen[] = [];
  const record = recorder(seen);
  const { fetch } = fakeFetch({
    'GET /session': () =>
      json(200, { user: 'root', admin: true, csrf: 'csrf-1', expiresAt: '2026-11-29T20:00:00Z' }),
    'GET /admin/audit/verify': record(() =>
      json(200, {
        intact: true,
        chains: 1,
        events: 3,
        unchained: 0,
        breaks: [],
        checkedAt: '2026-11-29T10:00:00.000Z',
      }),
    ),
    'GET /admin/audit': record(() =>
      json(200, {
        events: [
          { id: 1, op: 'open', path: '/d/a', user: 'amy' },
          { id: 2, op: 'close', path: '/d/a', user: 'amy', bytes: 10, durationMs: 5 },
        ],
        nextAfter: null,
      }),
    ),
    'POST /admin/audit/rules': record(() =>
      json(201, { id: 4, kind: 'honeypot', path: '/d/zz-canary.csv' }),
    ),
    'DELETE /admin/audit/rules/4': record(() => new Response(null, { status: 204 })),
  });
  const api = new NgsciApi({ baseUrl: base, token: 'page-token', fetch });
  const calls = auditApi(api);
  assert.equal((await calls.verify()).intact, true);
  const reads = await calls.recentReads(new Date('2026-11-28T10:00:00Z'));
  assert.deepEqual(
    reads.map((e) => e.id),
    [2],
    'a close carries the whole read',
  );
  await calls.addHoneypot('/d/zz-canary.csv', true);
  await calls.removeRule(4);
  assert.deepEqual(
    seen.map((s) => [s.key, s.auth, s.csrf]),
    [
      ['GET /admin/audit/verify', null, null],
      ['GET /admin/audit', null, null],
      ['POST /admin/audit/rules', null, 'csrf-1'],
      ['DELETE /admin/audit/rules/4', null, 'csrf-1'],
    ],
  );
  assert.deepEqual(seen[2]!.body, { kind: 'honeypot', path: '/d/zz-canary.csv', stopServer: true });
});

test('the chain status names the first broken link', () => {
  assert.match(
    chainSummary({
      intact: false,
      chains: 3,
      events: 10,
      unchained: 0,
      breaks: [
        {
          chain: 'c1',
          eventId: 77,
          reason: 'changed',
          expected: 'a',
          stored: 'b',
          message: 'event 77 of chain c1 was changed after it was written',
        },
      ],
      checkedAt: '2026-11-29T10:00:00.000Z',
    }),
    /BROKEN: 1 of 3 chains\. event 77 of chain c1 was changed/,
  );
  assert.throws(() => checkHoneypotPath('canary.csv'), /absolute path/);
  assert.equal(checkHoneypotPath(' /d/x/ '), '/d/x/');
});
