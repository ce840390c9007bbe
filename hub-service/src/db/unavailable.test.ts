/** Which database failures answer 503 (and with which code), on the errors the drivers throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseApiError, databaseTrouble } from './unavailable.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
/** drizzle wraps the driver's error: the SQLSTATE is on the cause */
const wrapped = (cause: unknown) => Object.assign(new Error('Failed query: insert …'), { cause });

test('disk full, connection trouble and everything else, wrapped or not', () => {
  const cases: Array<[unknown, ReturnType<typeof databaseTrouble>]> = [
    [pgError('53100', 'could not extend file "base/1/2": No space left on device'), 'disk_full'],
    [wrapped(pgError('53100')), 'disk_full'],
    [pgError('ENOSPC'), 'disk_full'],
    [pgError('CONNECTION_CLOSED'), 'unavailable'],
    [wrapped(pgError('ECONNREFUSED')), 'unavailable'],
    [pgError('ECONNRESET'), 'unavailable'],
    [pgError('57P01', 'terminating connection due to administrator command'), 'unavailable'],
    [pgError('57P03', 'the database system is starting up'), 'unavailable'],
    [pgError('08006'), 'unavailable'],
    [pgError('53300', 'too many connections'), 'unavailable'],
    // a bug or a bad request is not the database being away
    [pgError('23505', 'duplicate key value violates unique constraint'), null],
    [pgError('42P01', 'relation does not exist'), null],
    [new Error('boom'), null],
    [null, null],
  ];
  for (const [err, want] of cases) assert.equal(databaseTrouble(err), want, String(err));
});

test('the 503s carry a code and say that nothing was saved', () => {
  const full = databaseApiError(wrapped(pgError('53100')));
  assert.equal(full?.status, 503);
  assert.equal(full?.code, 'storage_full');
  assert.match(full!.message, /nothing was saved/);
  const away = databaseApiError(pgError('CONNECTION_CLOSED'));
  assert.equal(away?.code, 'database_unavailable');
  assert.equal(databaseApiError(pgError('23505')), null);
});
