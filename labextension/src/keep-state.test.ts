import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  keepStateExpression as expressionFor,
  parseKeepStateAnswer as parseAnswer,
} from '@ngsci/contract/client';
import { restoreNotice, runIn, runInAll, summarize, type KeepStateKernel } from './keep-state';

const kernel = (over: Partial<KeepStateKernel> = {}): KeepStateKernel & { asked: string[] } => {
  const asked: string[] = [];
  return {
    path: 'work/analysis.ipynb',
    label: 'analysis.ipynb',
    kind: 'notebook',
    python: true,
    busy: false,
    evaluate: async (expression) => {
      asked.push(expression);
      return JSON.stringify({
        ok: true,
        kept: [
          { name: 'x', type: 'int', bytes: 5 },
          { name: 'df', type: 'pandas.DataFrame', bytes: 2_000_000 },
        ],
        notKept: [{ name: 'fh', type: '_io.TextIOWrapper', reason: 'an open file' }],
        bytes: 2_000_005,
      });
    },
    ...over,
    asked,
  };
};

test('the expression names the notebook as a Python string literal, quotes and all', () => {
  const e = expressionFor('save', 'a "quoted"\\ name.ipynb');
  assert.equal(
    e,
    `__import__('ngsci_magic.keep_state', fromlist=['keep_state']).save_json("a \\"quoted\\"\\\\ name.ipynb")`,
  );
});

test('a check lists what each notebook keeps and everything it does not, with why', async () => {
  const k = kernel();
  const reports = await runInAll(
    [
      k,
      kernel({ kind: 'console', label: 'console 1', path: 'console-1' }),
      kernel({ python: false, label: 'r.ipynb' }),
      kernel({ busy: true, label: 'training.ipynb' }),
    ],
    'check',
  );
  assert.match(k.asked[0]!, /check_json\("work\/analysis.ipynb"\)/);
  const s = summarize(reports);
  assert.deepEqual(s.kept, ['analysis.ipynb: x, df (1.9 MB)']);
  assert.equal(s.bytes, 2_000_005);
  assert.deepEqual(s.notKept, [
    'analysis.ipynb: fh — an open file',
    "console 1: nothing kept (a console: only notebooks' variables are kept)",
    'r.ipynb: nothing kept (not a Python kernel: its variables are not kept)',
    'training.ipynb: nothing kept (running a cell: its variables can be kept once it is idle (wait, or interrupt it))',
  ]);
});

test('a kernel that fails, answers nonsense or reports no room is listed as not kept', async () => {
  const failed = await runIn(
    kernel({
      evaluate: () => Promise.reject(new Error('the kernel did not answer within 120 s')),
    }),
    'save',
  );
  assert.equal(failed.ok, false);
  assert.equal(failed.error?.code, 'no_answer');
  assert.equal(parseAnswer({ label: 'a', path: 'a' }, "'not json'").error?.code, 'bad_answer');
  assert.equal(parseAnswer({ label: 'a', path: 'a' }, '[1]').error?.code, 'bad_answer');
  const refused = parseAnswer(
    { label: 'a', path: 'a' },
    JSON.stringify({ ok: false, code: 'no_dill', message: 'dill is not installed' }),
  );
  assert.deepEqual(refused.error, { code: 'no_dill', message: 'dill is not installed' });
  const full = parseAnswer(
    { label: 'a.ipynb', path: 'a.ipynb' },
    JSON.stringify({
      ok: true,
      kept: [{ name: 'big', type: 'numpy.ndarray', bytes: 9e9 }],
      notKept: [],
      bytes: 9e9,
      error: {
        code: 'no_room',
        message: 'the variables need 8,583 MB and the home has 10 MB free',
      },
    }),
  );
  assert.equal(full.ok, false);
  assert.deepEqual(summarize([full]).notKept, [
    'a.ipynb: nothing kept (the variables need 8,583 MB and the home has 10 MB free)',
  ]);
});

test('a restore says what came back and what did not; no snapshot says nothing', () => {
  const back = parseAnswer(
    { label: 'a.ipynb', path: 'a.ipynb' },
    JSON.stringify({
      ok: true,
      found: true,
      restored: [{ name: 'x', type: 'int' }],
      notRestored: [
        {
          name: 'model',
          type: 'mylib.Model',
          reason: "cannot be loaded here (No module named 'mylib')",
        },
      ],
    }),
  );
  assert.deepEqual(restoreNotice(back), {
    level: 'warning',
    text: "a.ipynb: restored x; not restored: model (cannot be loaded here (No module named 'mylib'))",
  });
  const none = parseAnswer(
    { label: 'a.ipynb', path: 'a.ipynb' },
    JSON.stringify({ ok: true, found: false, restored: [], notRestored: [] }),
  );
  assert.equal(restoreNotice(none), null);
  const ok = parseAnswer(
    { label: 'a.ipynb', path: 'a.ipynb' },
    JSON.stringify({
      ok: true,
      found: true,
      restored: [{ name: 'x', type: 'int' }],
      notRestored: [],
    }),
  );
  assert.deepEqual(restoreNotice(ok), { level: 'success', text: 'a.ipynb: restored x' });
});
