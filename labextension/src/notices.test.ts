import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi, type Notice } from './api';
import { pollNotices, type NoticeDeps } from './notices';
import { fakeFetch, json } from './testing';

const base = '/services/ngsci/api/v1';
const notice = (over: Partial<Notice>): Notice => ({
  id: 1,
  kind: 'message',
  level: 'info',
  title: 'Hello',
  body: '',
  server: 'default',
  instanceId: 'i1',
  actions: [],
  createdAt: '2026-11-23T10:00:00.000Z',
  acknowledged: false,
  ...over,
});

function recorder(saveAll: () => Promise<void> = async () => undefined) {
  const steps: string[] = [];
  const shown: { level: string; text: string; actions: string[]; autoClose: number | false }[] = [];
  const ran: string[] = [];
  const deps: NoticeDeps = {
    saveAll: async () => {
      steps.push('save');
      await saveAll();
    },
    show: (level, text, opts) => {
      steps.push('show');
      shown.push({
        level,
        text,
        actions: opts.actions.map((a) => a.label),
        autoClose: opts.autoClose,
      });
      for (const a of opts.actions) a.callback();
    },
    run: (action) => ran.push(action),
  };
  return { deps, steps, shown, ran };
}

test('a spot warning saves every open document first, then says the cloud may take the machine back', async () => {
  let acked: unknown;
  const { fetch, calls } = fakeFetch({
    'GET /notifications': ({ url }) => {
      assert.equal(url.searchParams.get('after'), '4');
      assert.equal(url.searchParams.get('unacknowledged'), 'true');
      return json(200, {
        notifications: [
          notice({
            id: 5,
            kind: 'spot',
            level: 'warning',
            title: 'Spot interruption',
            body: 'aws reclaims default in 2 minutes',
          }),
        ],
        lastId: 5,
      });
    },
    'POST /notifications/ack': ({ body }) => {
      acked = body;
      return json(200, { acknowledged: 1 });
    },
  });
  const api = new NgsciApi({ baseUrl: base, token: 't', fetch });
  const r = recorder();
  assert.equal(await pollNotices(api, 4, r.deps), 5);
  assert.deepEqual(r.steps, ['save', 'show']);
  assert.equal(r.shown[0]!.level, 'warning');
  assert.equal(r.shown[0]!.autoClose, false);
  assert.match(r.shown[0]!.text, /The cloud may take this spot machine back soon/);
  assert.match(r.shown[0]!.text, /Your open documents were saved\./);
  assert.match(r.shown[0]!.text, /aws reclaims default in 2 minutes/);
  assert.deepEqual(acked, { ids: [5] });
  assert.deepEqual(calls, ['GET /notifications', 'POST /notifications/ack']);
});

test('when saving fails on a spot warning, the notification says to save now', async () => {
  const { fetch } = fakeFetch({
    'GET /notifications': () =>
      json(200, {
        notifications: [notice({ id: 2, kind: 'spot', level: 'warning', title: 'Spot' })],
        lastId: 2,
      }),
    'POST /notifications/ack': () => json(200, {}),
  });
  const r = recorder(async () => {
    throw new Error('disk full');
  });
  await pollNotices(new NgsciApi({ baseUrl: base, token: 't', fetch }), 0, r.deps);
  assert.match(r.shown[0]!.text, /Saving your open documents failed \(disk full\): save them now/);
});

test('other notices do not save anything; their actions run; nothing new means no acknowledgement', async () => {
  let page = 0;
  const { fetch, calls } = fakeFetch({
    'GET /notifications': () =>
      page++ === 0
        ? json(200, {
            notifications: [
              notice({
                id: 7,
                kind: 'idle_stop',
                level: 'warning',
                title: 'default stops soon',
                body: 'idle for 30 minutes',
                actions: [{ id: 'keep_running', label: 'Keep running' }],
              }),
              notice({ id: 8, kind: 'message', title: 'Training done' }),
            ],
            lastId: 8,
          })
        : json(200, { notifications: [], lastId: 8 }),
    'POST /notifications/ack': () => json(200, {}),
  });
  const api = new NgsciApi({ baseUrl: base, token: 't', fetch });
  const r = recorder();
  const next = await pollNotices(api, 0, r.deps);
  assert.equal(await pollNotices(api, next, r.deps), 8);
  assert.deepEqual(r.steps, ['show', 'show']);
  assert.deepEqual(
    r.shown.map((s) => [s.level, s.text, s.actions, s.autoClose]),
    [
      ['warning', 'default stops soon: idle for 30 minutes', ['Keep running'], false],
      ['info', 'Training done', [], 8000],
    ],
  );
  assert.deepEqual(r.ran, ['keep_running']);
  assert.equal(calls.filter((c) => c === 'POST /notifications/ack').length, 1);
});
