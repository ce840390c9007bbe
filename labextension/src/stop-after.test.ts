/**
 * `%%ngsci stop_after` in the page: the comm's message is checked, the documents are saved before
 * anything stops, a failed save stops nothing, and the page names the stop, its time and its cost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from './api';
import {
  handleStopAfter,
  listenForStopAfter,
  parseStopAfter,
  startAgainUrl,
  stoppedText,
  type StopAfterDeps,
  type StoppedText,
} from './stop-after';

const message = {
  kind: 'stop_after',
  server: 'default',
  cell: 'finished',
  graceSeconds: 30,
  requestedAt: '2026-11-29T15:01:00+00:00',
  id: 'a1',
};

const inst = (over: Partial<Instance>): Instance =>
  ({
    id: 'i1',
    user: 'ada',
    server: 'default',
    size: 'cpu-small',
    cloud: 'local',
    region: 'local',
    spot: false,
    state: 'running',
    errorCode: null,
    errorMessage: null,
    exitCode: null,
    url: '/user/ada/',
    ratePerHourMicros: 380_000,
    createdAt: '2026-11-29T14:00:00.000Z',
    readyAt: '2026-11-29T14:00:05.000Z',
    stoppedAt: null,
    ...over,
  }) as Instance;

function recorder(save: () => Promise<void> = async () => undefined) {
  const steps: string[] = [];
  const shown: StoppedText[] = [];
  const warnings: string[] = [];
  let polls = 0;
  const deps: StopAfterDeps = {
    server: 'default',
    waitIdle: async () => void steps.push('idle'),
    saveAll: async () => {
      steps.push('save');
      await save();
    },
    quiesce: () => void steps.push('quiesce'),
    stop: async (s) => {
      steps.push(`stop ${s}`);
      return inst({ state: 'stopping' });
    },
    instance: async () => {
      polls++;
      return polls < 2
        ? inst({ state: 'stopping' })
        : inst({ state: 'stopped', stoppedAt: '2026-11-29T15:01:20.000Z', billedMicros: 90_000 });
    },
    showStopped: (t) => void shown.push(t),
    warn: (t) => void warnings.push(t),
    sleep: async () => undefined,
    now: () => new Date('2026-11-29T15:01:10.000Z'),
  };
  return { deps, steps, shown, warnings };
}

test('only a well-formed stop_after message is one', () => {
  assert.deepEqual(parseStopAfter(message), message);
  assert.equal(parseStopAfter(null), null);
  assert.equal(parseStopAfter('stop'), null);
  assert.equal(parseStopAfter({ ...message, kind: 'other' }), null);
  assert.equal(parseStopAfter({ ...message, cell: 'maybe' }), null);
  assert.equal(parseStopAfter({ ...message, server: 3 }), null);
});

test('the documents are saved after the cell ends and before the stop; the page names the stop and its cost', async () => {
  const r = recorder();
  const seen = new Set<string>();
  assert.equal(await handleStopAfter(parseStopAfter(message)!, r.deps, seen), 'stopped');
  assert.deepEqual(r.steps, ['idle', 'save', 'quiesce', 'stop default']);
  const last = r.shown.at(-1)!;
  assert.match(
    last.headline,
    /^Stopped by %%ngsci stop_after at \d\d:\d\d after the cell finished; this run cost \$0\.090$/,
  );
  assert.match(last.detail, /saved/);
  // the same message again (a second notebook on the same kernel) does nothing more
  assert.equal(await handleStopAfter(parseStopAfter(message)!, r.deps, seen), 'ignored');
  assert.equal(r.steps.filter((s) => s === 'save').length, 1);
});

test("another server's message is not this page's business", async () => {
  const r = recorder();
  const msg = parseStopAfter({ ...message, server: 'gpu1', id: 'b2' })!;
  assert.equal(await handleStopAfter(msg, r.deps, new Set()), 'ignored');
  assert.deepEqual(r.steps, []);
});

test('when saving fails nothing is stopped here, and the page says to save now', async () => {
  const r = recorder(async () => {
    throw new Error('disk full');
  });
  assert.equal(await handleStopAfter(parseStopAfter(message)!, r.deps, new Set()), 'not_saved');
  assert.deepEqual(r.steps, ['idle', 'save']);
  assert.match(r.warnings[0] ?? '', /saving your open documents failed \(disk full\).*within 30 s/);
  assert.deepEqual(r.shown, []);
});

test('the text: the time of the stop in the local clock, the cost only when the service gave it', () => {
  const clock = (d: Date) => d.toISOString().slice(11, 16);
  const t = stoppedText(
    { cell: 'failed' },
    inst({ state: 'stopped', stoppedAt: '2026-11-29T15:01:40.000Z', billedMicros: 1_234_567 }),
    new Date(),
    clock,
  );
  assert.equal(
    t.headline,
    'Stopped by %%ngsci stop_after at 15:01 after the cell failed; this run cost $1.23',
  );
  const early = stoppedText(
    { cell: 'finished' },
    inst({ state: 'stopping' }),
    new Date('2026-11-29T15:00:59Z'),
    clock,
  );
  assert.equal(
    early.headline,
    'Stopping: %%ngsci stop_after asked at 15:00, after the cell finished',
  );
});

test('every kernel the page shows gets the comm target, once; its messages arrive', () => {
  const targets: Array<{
    name: string;
    cb: (c: unknown, m: { content: { data: unknown } }) => void;
  }> = [];
  const kernel = {
    status: 'busy',
    isDisposed: false,
    registerCommTarget: (name: string, cb: (typeof targets)[number]['cb']) =>
      void targets.push({ name, cb }),
    statusChanged: { connect: () => true, disconnect: () => true },
  };
  const changed: Array<() => void> = [];
  const ctx = {
    session: { kernel },
    kernelChanged: { connect: (fn: () => void) => (changed.push(fn), true) },
  };
  const widgets = [{ sessionContext: ctx }, { title: 'no kernel here' }];
  const got: string[] = [];
  const stop = listenForStopAfter(
    { widgets: () => widgets[Symbol.iterator]() },
    (m) => void got.push(m.id),
    60_000,
  );
  stop();
  assert.equal(targets.length, 1);
  assert.equal(targets[0]!.name, 'ngsci');
  changed[0]!(); // the same kernel again: not registered twice
  assert.equal(targets.length, 1);
  targets[0]!.cb(null, { content: { data: message } });
  targets[0]!.cb(null, { content: { data: { kind: 'something else' } } });
  assert.deepEqual(got, ['a1']);
});

test('"Start again" is the hub\'s spawn page of the server', () => {
  const page = { hubPrefix: '/hub/', hubHost: '' };
  assert.equal(startAgainUrl(page, 'ada', 'default'), '/hub/spawn/ada');
  assert.equal(startAgainUrl(page, 'ada', 'gpu1'), '/hub/spawn/ada/gpu1');
});
