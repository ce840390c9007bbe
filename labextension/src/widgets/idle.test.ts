/**
 * What people type for an idle timeout, in the sidebar and in the admin panel's bounds form:
 * durations, `never`, empty; what the fields show back; how a row's bounds read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idleInputValue, parseIdleInput } from '../idle-input';
import { boundsText, parseBound } from './admin-forms';

test('the sidebar field: durations, bare minutes, never, empty (the admin timeout)', () => {
  assert.equal(parseIdleInput('45m'), 2700);
  assert.equal(parseIdleInput(' 1h 30m '), 5400);
  assert.equal(parseIdleInput('90s'), 90);
  assert.equal(parseIdleInput('20'), 1200);
  assert.equal(parseIdleInput('never'), 0);
  assert.equal(parseIdleInput(''), null);
  assert.throws(() => parseIdleInput('soon'), /"soon" is not a duration: write 45m, 1h30m/);
  assert.throws(() => parseIdleInput('0m'), /longer than 0 s/);
  for (const s of [2700, 5400, 90, 86_400 + 3600, 0])
    assert.equal(parseIdleInput(idleInputValue(s)), s);
  assert.equal(idleInputValue(5400), '1h30m');
});

test('the admin bounds: never only as a maximum, at most 31 days; how a row reads', () => {
  assert.equal(parseBound('10m', 'CPU minimum', false), 600);
  assert.equal(parseBound('', 'CPU minimum', false), null);
  assert.equal(parseBound('never', 'CPU maximum', true), 0);
  assert.throws(() => parseBound('never', 'CPU minimum', false), /only makes sense as a maximum/);
  assert.throws(() => parseBound('40d', 'GPU maximum', true), /at most 31 days/);
  assert.throws(() => parseBound('later', 'GPU maximum', true), /not a duration/);
  assert.equal(boundsText(600, 14_400), '10 min to 4 h');
  assert.equal(boundsText(600, 0), '10 min to no limit');
  assert.equal(boundsText(null, 3600), 'up to 1 h');
  assert.equal(boundsText(300, null), 'from 5 min');
  assert.equal(boundsText(null, null), 'not set');
});
