/**
 * The Cloud credits section's calls through the one seam: they go with the admin sign-in (no
 * page token) and the CSRF value on changes; a day an admin types must exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi } from '../api';
import { fakeFetch, json, recorder, type Seen } from '../testing';
import { creditsApi, parseDay } from './admin-credits';

const base = '/services/ngsci/api/v1';

test('credit calls use the admin sign-in; recording and removing send the CSRF value', async () => {
  const seen: Seen[] = [];
  const record = recorder(seen);
  const grant = {
    id: 3,
    cloud: 'gcp',
    amountMicros: 50_000_000_000,
    startsOn: '2026-12-01',
    expiresOn: '2027-03-31',
    note: 'research credits',
    createdBy: 'root',
    createdAt: '2026-11-30T00:00:00.000Z',
    usedMicros: 0,
    remainingMicros: 50_000_000_000,
    state: 'upcoming',
  };
  const { fetch } = fakeFetch({
    'GET /session': () =>
      json(200, { user: 'root', admin: true, csrf: 'csrf-1', expiresAt: '2026-11-30T20:00:00Z' }),
    'GET /admin/credits': record(() =>
      json(200, { asOf: '2026-11-30T00:00:00.000Z', grants: [grant], alerts: [] }),
    ),
    'GET /admin/credits/statement/2026-11': record(() =>
      json(200, {
        month: '2026-11',
        clouds: [{ cloud: 'gcp', listMicros: 5, creditsMicros: 3, netMicros: 2 }],
        listMicros: 5,
        creditsMicros: 3,
        netMicros: 2,
      }),
    ),
    'POST /admin/credits': record(() => json(201, grant)),
    'DELETE /admin/credits/3': record(() => json(200, grant)),
    'PUT /admin/credits/settings': record(() =>
      json(200, { lowerCharges: true, updatedBy: 'root', updatedAt: '2026-11-30T00:00:00.000Z' }),
    ),
  });
  const api = new NgsciApi({ baseUrl: base, token: 'page-token', fetch });
  const calls = creditsApi(api);
  const data = await calls.load('2026-11');
  assert.equal(data.list.grants[0]!.id, 3);
  assert.equal(data.statement.netMicros, 2);
  await calls.add({
    cloud: 'gcp',
    amountMicros: 50_000_000_000,
    startsOn: '2026-12-01',
    expiresOn: '2027-03-31',
    note: 'research credits',
  });
  await calls.remove(3);
  assert.equal((await calls.setLowerCharges(true)).lowerCharges, true);
  assert.deepEqual(seen.map((s) => [s.key, s.auth, s.csrf]).sort(), [
    ['DELETE /admin/credits/3', null, 'csrf-1'],
    ['GET /admin/credits', null, null],
    ['GET /admin/credits/statement/2026-11', null, null],
    ['POST /admin/credits', null, 'csrf-1'],
    ['PUT /admin/credits/settings', null, 'csrf-1'],
  ]);
  assert.deepEqual(seen.find((s) => s.key === 'PUT /admin/credits/settings')!.body, {
    lowerCharges: true,
  });
  assert.deepEqual(seen.find((s) => s.key === 'POST /admin/credits')!.body, {
    cloud: 'gcp',
    amountMicros: 50_000_000_000,
    startsOn: '2026-12-01',
    expiresOn: '2027-03-31',
    note: 'research credits',
  });
});

test('a day must exist', () => {
  assert.equal(parseDay(' 2027-03-31 ', 'Last day'), '2027-03-31');
  assert.throws(() => parseDay('2027-02-30', 'Last day'), /not a day/);
  assert.throws(() => parseDay('31/03/2027', 'Last day'), /not a day/);
});
