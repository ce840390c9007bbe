import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Signal } from '@lumino/signaling';
import { NgsciApiError } from './api';
import { connectionLostHandler, STOPPED_NOTE, type ConnectionLostDeps } from './connection-lost';

type Model = ConnectionLostDeps['model'];

function setup(
  model: Partial<Model>,
  ask: (withdrawn: AbortSignal) => Promise<boolean> = async () => false,
) {
  const said: string[] = [];
  const owner = {};
  const changed = new Signal<object, string>(owner);
  const m: Model = {
    changed: changed as unknown as Model['changed'],
    server: 'default',
    resizing: null,
    pageServerEnded: false,
    errors: { instance: null, usage: null, billing: null, me: null },
    refreshInstances: async () => undefined,
    ...model,
  };
  const handler = connectionLostHandler({
    model: m,
    ask: async (withdrawn) => {
      said.push('asked');
      return ask(withdrawn);
    },
    restart: async () => {
      said.push('restarted');
    },
    note: (msg) => said.push(`note: ${msg}`),
    waitMs: 200,
  });
  return { handler, said, m, emit: () => changed.emit('instance') };
}

test('a server that ngsci stopped gets a note, once, and no modal question', async () => {
  const { handler, said } = setup({ pageServerEnded: true });
  await handler();
  await handler();
  assert.deepEqual(said, [`note: ${STOPPED_NOTE}`]);
});

test('a server being resized gets nothing: the overlay says it and reloads the page', async () => {
  const { handler, said } = setup({
    resizing: {
      server: 'default',
      fromInstanceId: 'i1',
      toSize: 'cpu-large',
      last: null,
      readyInstanceId: null,
      failed: null,
    },
  });
  await handler();
  assert.deepEqual(said, []);
});

test('the stop noticed by JupyterLab before the page heard of it: the service is asked first', async () => {
  const { handler, said, m } = setup({
    refreshInstances: async () => {
      (m as { pageServerEnded: boolean }).pageServerEnded = true;
    },
  });
  await handler();
  assert.deepEqual(said, [`note: ${STOPPED_NOTE}`]);
});

test('a refused token (the hub revoked it with the server) counts as stopped', async () => {
  const { handler, said, m } = setup({});
  m.refreshInstances = async () => {
    m.errors.instance = new NgsciApiError(401, 'unauthenticated', 'invalid token');
  };
  await handler();
  assert.deepEqual(said, [`note: ${STOPPED_NOTE}`]);
});

test('any other loss (the server runs, the network broke) gets the question', async () => {
  const { handler, said } = setup({});
  await handler();
  assert.deepEqual(said, ['asked']);
});

test(
  'a service that does not answer is not waited on: the question comes',
  { timeout: 5_000 },
  async () => {
    const { handler, said } = setup({ refreshInstances: () => new Promise(() => undefined) });
    await handler();
    assert.deepEqual(said, ['asked']);
  },
);

test('the question is withdrawn when the stop event comes while it is up: a note instead', async () => {
  let emitLater = () => undefined as void;
  const { handler, said, m, emit } = setup(
    {},
    (withdrawn) =>
      new Promise((resolve) => {
        withdrawn.addEventListener('abort', () => resolve(false));
        emitLater();
      }),
  );
  emitLater = () => {
    (m as { pageServerEnded: boolean }).pageServerEnded = true;
    emit();
  };
  await handler();
  assert.deepEqual(said, ['asked', `note: ${STOPPED_NOTE}`]);
});
