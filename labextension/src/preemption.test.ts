/**
 * The cloud took this page's spot machine back and the service starts the server again: the
 * model follows it as a resize (the same `resizing` progress the restart overlay shows), marked as
 * a preemption, until the new instance runs. A preemption left stopped starts nothing here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi } from './api';
import { NgsciModel } from './model';
import { SPOT_NOTICE_PHRASE } from '@ngsci/contract';
import { fakeFetch, json } from './testing';

const spotInstance = {
  id: 'i-old',
  user: 'researcher',
  server: 'default',
  size: 'cpu-small',
  cloud: 'local',
  region: 'here',
  spot: true,
  state: 'running',
  errorCode: null,
  errorMessage: null,
  exitCode: null,
  url: null,
  ratePerHourMicros: 40_000,
  createdAt: '2026-11-23T10:00:00.000Z',
  readyAt: '2026-11-23T10:00:00.000Z',
  stoppedAt: null,
  onPreemption: 'on-demand',
};
const event = (
  id: number,
  instanceId: string,
  state: string,
  message: string,
  kind: 'spot_notice' | null = null,
) =>
  `id: ${id}\nevent: instance\ndata: ${JSON.stringify({
    id,
    instanceId,
    at: '2026-11-23T12:00:00.000Z',
    state,
    progress: 100,
    message,
    kind,
  })}\n\n`;

function model(stoppedMessage: string) {
  let streams = 0;
  const { fetch } = fakeFetch({
    'GET /me': () =>
      json(200, {
        name: 'researcher',
        admin: false,
        groups: [],
        plan: { id: 'private', label: 'Private', multiplierPpm: 1_000_000 },
      }),
    'GET /catalog': () =>
      json(200, {
        asOf: '2025-07-01',
        currency: 'USD',
        defaultCloud: 'local',
        clouds: ['local'],
        sizes: [],
      }),
    'GET /instances': () => json(200, { instances: [spotInstance] }),
    'GET /instances/default/events': async () => {
      streams++;
      // the page's watch sees the old machine end; a follower then sees the new one come up
      return new Response(
        streams === 1
          ? event(2, 'i-old', 'running', 'server is ready') +
              event(3, 'i-old', 'stopped', stoppedMessage)
          : event(4, 'i-new', 'requested', 'requested CPU small') +
              event(5, 'i-new', 'running', 'server is ready'),
      );
    },
  });
  const m = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => Date.parse('2026-11-23T12:00:00Z'),
  });
  return m;
}

test(
  'a relaunch after a preemption is followed like a resize until the new instance runs',
  { timeout: 10_000 },
  async () => {
    const m = model(
      'the cloud took this spot machine back; starting the server again on demand (billed at the on-demand price)',
    );
    await m.refresh(['instance']);
    m.watch();
    await new Promise<void>((resolve) => {
      const check = () => {
        if (m.resizing?.readyInstanceId) resolve();
      };
      m.changed.connect(check);
    });
    assert.equal(m.resizing?.preempted, true);
    assert.equal(m.resizing?.fromInstanceId, 'i-old');
    assert.equal(m.resizing?.readyInstanceId, 'i-new');
    m.dispose();
  },
);

test(
  'a preemption that leaves the server stopped starts no follow',
  { timeout: 10_000 },
  async () => {
    const m = model(
      'the cloud took this spot machine back; stopped, as chosen at launch (on preemption: stop)',
    );
    await m.refresh(['instance']);
    m.watch();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(m.resizing, null);
    m.dispose();
  },
);

test(
  "the cloud's spot notice on the page's own event stream is passed on at once by its kind, other events are not",
  { timeout: 10_000 },
  async () => {
    const m = model('the cloud took this spot machine back; stopped, as chosen at launch');
    const seen: string[] = [];
    m.spotNotice.connect((_, e) => seen.push(e.message));
    // the first stream: "server is ready", then the stop; neither is a notice
    await m.refresh(['instance']);
    m.watch();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen, []);
    m.dispose();

    const { fetch } = fakeFetch({
      'GET /me': () => json(200, { name: 'researcher', admin: false, groups: [], plan: null }),
      'GET /instances': () => json(200, { instances: [spotInstance] }),
      'GET /instances/default/events': () =>
        new Response(
          event(2, 'i-old', 'running', 'server is ready') +
            // the words alone are not a notice (a message may quote them)
            event(3, 'i-old', 'running', `quoting: "AWS ${SPOT_NOTICE_PHRASE}"`) +
            event(
              4,
              'i-old',
              'running',
              `AWS ${SPOT_NOTICE_PHRASE} at 12:02:00 UTC; open documents are being saved`,
              'spot_notice',
            ),
        ),
    });
    const n = new NgsciModel({
      api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
      server: 'default',
      user: 'researcher',
    });
    const notices: number[] = [];
    n.spotNotice.connect((_, e) => notices.push(e.id));
    n.watch();
    for (let waited = 0; !notices.length && waited < 3000; waited += 20)
      await new Promise((r) => setTimeout(r, 20));
    n.dispose();
    assert.deepEqual(notices.slice(0, 1), [4]);
  },
);
