import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEEP_STATE_TEXT_MAX, keepStateRefusal, parseKeepStateAnswer } from './keep-state.js';

const nb = { label: 'a.ipynb', path: 'work/a.ipynb' };

test('a kernel answer is read once for the page and the agent: long texts shortened, never refused', () => {
  const r = parseKeepStateAnswer(
    nb,
    JSON.stringify({
      ok: true,
      kept: [{ name: 'x'.repeat(1000), type: 'int', bytes: 28 }, { type: 'no name' }, 7],
      notKept: [{ name: 'fh', type: 'file', reason: 'r'.repeat(5000) }],
      bytes: 28,
    }),
  );
  assert.equal(r.ok, true);
  assert.equal(r.kept.length, 1, 'entries without a name are dropped');
  assert.equal(r.kept[0]!.name.length, KEEP_STATE_TEXT_MAX.name);
  assert.equal(r.kept[0]!.bytes, 28);
  assert.equal(r.notKept[0]!.reason.length, KEEP_STATE_TEXT_MAX.reason);
  const failed = parseKeepStateAnswer(
    nb,
    JSON.stringify({ ok: false, code: 'c'.repeat(100), message: 'no dill' }),
  );
  assert.deepEqual(failed.error, {
    code: 'c'.repeat(KEEP_STATE_TEXT_MAX.code),
    message: 'no dill',
  });
  assert.equal(parseKeepStateAnswer(nb, 'Traceback ...').error?.code, 'bad_answer');
});

test('who takes part: notebooks with a live, idle Python kernel; a busy one only in a restore', () => {
  const k = { kind: 'notebook' as const, python: true, busy: false };
  assert.equal(keepStateRefusal(k, 'save'), null);
  assert.equal(keepStateRefusal({ ...k, kind: 'console' }, 'save')?.code, 'not_a_notebook');
  assert.equal(keepStateRefusal({ ...k, python: false }, 'save')?.code, 'not_python');
  assert.equal(keepStateRefusal({ ...k, dead: true }, 'save')?.code, 'no_kernel');
  assert.equal(keepStateRefusal({ ...k, busy: true }, 'save')?.code, 'busy');
  assert.equal(keepStateRefusal({ ...k, busy: true }, 'restore'), null);
});
