import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isolationNotes } from './isolation';

test('the shared demo is a warning; users mode and single-user shared mode are information', () => {
  const demo = isolationNotes({ mode: 'shared', sharedDemo: true });
  assert.equal(demo[0]!.level, 'warning');
  assert.match(demo[0]!.text, /every user can read every other user's files/);
  assert.match(demo[1]!.text, /agent runs as the same account/);
  assert.match(isolationNotes({ mode: 'shared', sharedDemo: false })[0]!.text, /one user only/);
  assert.match(isolationNotes({ mode: 'users', sharedDemo: false })[0]!.text, /own system account/);
  assert.deepEqual(isolationNotes(undefined), []);
});
