/**
 * The sidebar's "On spot preemption" control without a DOM (preemption-default.ts): what it shows
 * for each answer, what a change sends; and the save of kernel variables at a spot notice
 * (spot-keep-state.ts) through the fake `fetch` seam, with fake kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi, type Notice } from './api';
import type { KeepStateKernel } from './keep-state';
import {
  appliesText,
  changeBody,
  isPreemptionDefault,
  savedText,
  selectOptions,
  selectValue,
  type PreemptionDefault,
} from './preemption-default';
import { showNotice } from './notices';
import { keepStateAtSpot } from './spot-keep-state';
import { fakeFetch, json } from './testing';

const answer = (over: Partial<PreemptionDefault> = {}): PreemptionDefault => ({
  user: 'ada',
  chosen: null,
  adminDefault: 'stop',
  effective: 'stop',
  source: 'admin',
  keepState: false,
  updatedAt: null,
  ...over,
});

test('the select: three choices and the organisation default, which names its value', () => {
  const opts = selectOptions(answer({ adminDefault: 'spot', effective: 'spot' }));
  assert.deepEqual(
    opts.map((o) => [o.value, o.label]),
    [
      ['on-demand', 'Relaunch on-demand'],
      ['spot', 'Relaunch spot'],
      ['stop', 'Stop'],
      ['default', 'Organisation default (relaunch spot)'],
    ],
  );
  assert.equal(selectOptions(null)[3]!.label, 'Organisation default');
  assert.equal(selectValue(answer()), 'default');
  assert.equal(selectValue(answer({ chosen: 'on-demand' })), 'on-demand');
});

test('what applies and whose it is', () => {
  assert.equal(
    appliesText(answer()),
    "Applies to spot launches that do not choose: stop (your organisation's default).",
  );
  const mine = answer({ chosen: 'on-demand', effective: 'on-demand', source: 'user' });
  assert.equal(
    appliesText(mine),
    'Applies to spot launches that do not choose: relaunch on-demand (your choice).',
  );
  assert.equal(savedText(mine), 'Saved: on spot preemption, relaunch on-demand.');
  assert.equal(
    savedText(answer({ keepState: true })),
    "Saved: on spot preemption, stop (your organisation's default); notebooks' variables are saved at a spot notice.",
  );
});

test('a change sends one field; the organisation default clears the choice; junk is refused', () => {
  assert.deepEqual(changeBody({ select: 'spot' }), { onPreemption: 'spot' });
  assert.deepEqual(changeBody({ select: 'default' }), { onPreemption: null });
  assert.deepEqual(changeBody({ keepState: true }), { keepState: true });
  assert.throws(() => changeBody({ select: 'sometimes' }), /"sometimes" is not a choice/);
});

test("the answer's check: older services without keepState pass, wrong values do not", () => {
  assert.ok(isPreemptionDefault(answer()));
  const { keepState: _, ...older } = answer();
  assert.ok(isPreemptionDefault(older));
  assert.ok(!isPreemptionDefault({ ...answer(), effective: 'later' }));
  assert.ok(!isPreemptionDefault({ ...answer(), keepState: 'yes' }));
  assert.ok(!isPreemptionDefault(null));
});

let instances = 0;
const spot = (server: string | null = 'default', instanceId = `i${++instances}`): Notice => ({
  id: 3,
  kind: 'spot',
  level: 'warning',
  title: 'Spot interruption',
  body: '',
  server,
  instanceId,
  actions: [],
  createdAt: '2026-11-30T08:00:00.000Z',
  acknowledged: false,
});

function kernel(path: string, answerText: string, seen: string[]): KeepStateKernel {
  return {
    path,
    label: path,
    kind: path.endsWith('.ipynb') ? 'notebook' : 'console',
    python: true,
    busy: false,
    evaluate: async (expression) => {
      seen.push(`${path}: ${expression}`);
      return answerText;
    },
  };
}

test('at a spot notice with keep-state: each notebook saves, the page says what was kept and not', async () => {
  const { fetch, calls } = fakeFetch({
    'GET /me/preemption': () => json(200, answer({ keepState: true })),
  });
  const api = new NgsciApi({ baseUrl: '/services/ngsci/api/v1', token: 't', fetch });
  const seen: string[] = [];
  const saved = JSON.stringify({
    ok: true,
    kept: [{ name: 'x', type: 'int', bytes: 5 }],
    notKept: [{ name: 'f', type: 'TextIOWrapper', reason: 'an open file' }],
    bytes: 5,
  });
  const text = await keepStateAtSpot(api, spot(), 'default', async () => [
    kernel('a.ipynb', saved, seen),
    kernel('console-1', saved, seen),
  ]);
  assert.deepEqual(calls, ['GET /me/preemption']);
  // the notebook's kernel ran the same save a resize runs; the console was left out
  assert.equal(seen.length, 1);
  assert.match(seen[0]!, /^a\.ipynb: .*keep_state.*save_json\("a\.ipynb"\)$/);
  assert.equal(
    text,
    "Your notebooks' variables were saved (a.ipynb: x (5 B)); they come back after the relaunch. Not kept: a.ipynb: f — an open file.",
  );
});

test('at a spot notice without keep-state, or for another server: no kernel runs anything', async () => {
  const { fetch, calls } = fakeFetch({
    'GET /me/preemption': () => json(200, answer({ keepState: false })),
  });
  const api = new NgsciApi({ baseUrl: '/services/ngsci/api/v1', token: 't', fetch });
  const seen: string[] = [];
  const kernels = async () => [kernel('a.ipynb', '{"ok":true}', seen)];
  assert.equal(await keepStateAtSpot(api, spot(), 'default', kernels), null);
  assert.equal(await keepStateAtSpot(api, spot('gpu'), 'default', kernels), null);
  assert.deepEqual(calls, ['GET /me/preemption']);
  assert.deepEqual(seen, []);
});

test('a kernel that cannot save is said, not hidden', async () => {
  const { fetch } = fakeFetch({
    'GET /me/preemption': () => json(200, answer({ keepState: true })),
  });
  const api = new NgsciApi({ baseUrl: '/services/ngsci/api/v1', token: 't', fetch });
  const text = await keepStateAtSpot(api, spot(), 'default', async () => [
    kernel('b.ipynb', JSON.stringify({ ok: false, code: 'no_room', message: 'no room' }), []),
  ]);
  assert.equal(
    text,
    "None of your notebooks' variables could be saved. Not kept: b.ipynb: nothing kept (no room).",
  );
});

test("the agent's follow-up notice of the same instance is not a second save", async () => {
  const { fetch, calls } = fakeFetch({
    'GET /me/preemption': () => json(200, answer({ keepState: true })),
  });
  const api = new NgsciApi({ baseUrl: '/services/ngsci/api/v1', token: 't', fetch });
  const seen: string[] = [];
  const ok = JSON.stringify({
    ok: true,
    kept: [{ name: 'x', type: 'int', bytes: 5 }],
    notKept: [],
    bytes: 5,
  });
  const kernels = async () => [kernel('a.ipynb', ok, seen)];
  assert.ok(await keepStateAtSpot(api, spot('default', 'i-follow'), 'default', kernels));
  assert.equal(await keepStateAtSpot(api, spot('default', 'i-follow'), 'default', kernels), null);
  assert.equal(seen.length, 1);
  assert.deepEqual(calls, ['GET /me/preemption']);
});

test("a kernel busy (with the agent's save) is asked once more, a little later", async () => {
  const { fetch } = fakeFetch({
    'GET /me/preemption': () => json(200, answer({ keepState: true })),
  });
  const api = new NgsciApi({ baseUrl: '/services/ngsci/api/v1', token: 't', fetch });
  const seen: string[] = [];
  const ok = JSON.stringify({
    ok: true,
    kept: [{ name: 'x', type: 'int', bytes: 5 }],
    notKept: [],
    bytes: 5,
  });
  let listed = 0;
  const waited: number[] = [];
  const text = await keepStateAtSpot(
    api,
    spot(),
    'default',
    async () => [{ ...kernel('a.ipynb', ok, seen), busy: listed++ === 0 }],
    async (ms) => void waited.push(ms),
  );
  assert.equal(listed, 2);
  assert.equal(waited.length, 1);
  assert.equal(seen.length, 1, 'saved once, when idle');
  assert.match(text ?? '', /variables were saved \(a\.ipynb: x/);
  assert.doesNotMatch(text ?? '', /Not kept/);
});

test('the spot notification: documents first, then the variables, and what happened to each', async () => {
  const steps: string[] = [];
  const shown: string[] = [];
  const deps = (keep: () => Promise<string | null>) => ({
    saveAll: async () => void steps.push('documents'),
    keepState: async () => {
      steps.push('variables');
      return keep();
    },
    show: (_level: string, text: string) => void shown.push(text),
    run: () => undefined,
  });
  await showNotice(
    spot(),
    deps(async () => "Your notebooks' variables were saved (a.ipynb: x)."),
  );
  assert.deepEqual(steps, ['documents', 'variables']);
  assert.match(
    shown[0]!,
    /Your open documents were saved\. Your notebooks' variables were saved \(a\.ipynb: x\)\./,
  );
  await showNotice(
    spot(),
    deps(async () => {
      throw new Error('the kernel did not answer within 600 s');
    }),
  );
  assert.match(
    shown[1]!,
    /Saving your notebooks' variables failed \(the kernel did not answer within 600 s\)/,
  );
  await showNotice(
    spot(),
    deps(async () => null),
  );
  assert.doesNotMatch(shown[2]!, /variables/);
});
