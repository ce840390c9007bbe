import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resizeProgress } from './resize-progress';

const base = {
  server: 'default',
  fromInstanceId: 'old',
  toSize: 'cpu-large',
  last: null,
  readyInstanceId: null,
  failed: null,
};
const ev = (instanceId: string, state: string, progress: number, message: string) =>
  ({ id: 1, instanceId, at: '2026-11-23T10:00:00.000Z', state, progress, message }) as const;

test('a resize fills the first half while the old machine stops and the second while the new one starts', () => {
  assert.equal(resizeProgress(base).text, 'Resizing to cpu-large…');
  const stopping = resizeProgress({
    ...base,
    last: ev('old', 'stopping', 50, 'stopping the server') as never,
  });
  assert.equal(stopping.percent, 25);
  assert.match(stopping.text, /Stopping: stopping the server/);
  const starting = resizeProgress({
    ...base,
    last: ev('new', 'starting', 60, 'waiting for the server') as never,
  });
  assert.equal(starting.percent, 80);
  assert.equal(resizeProgress({ ...base, readyInstanceId: 'new' }).percent, 100);
  const failed = resizeProgress({ ...base, failed: 'no capacity' });
  assert.ok(failed.failed);
  assert.match(failed.text, /failed: no capacity/);
});
