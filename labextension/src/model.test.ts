import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NgsciApi } from './api';
import { NgsciModel } from './model';
import { fakeFetch, json } from './testing';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const catalog = {
  asOf: '2025-07-01',
  currency: 'USD',
  defaultCloud: 'local',
  clouds: ['local', 'aws'],
  sizes: [
    {
      id: 'cpu-small',
      label: 'CPU small',
      class: 'cpu',
      vcpu: 2,
      memoryGiB: 8,
      gpu: null,
      offers: [
        {
          cloud: 'local',
          region: 'here',
          instanceType: 'x',
          available: true,
          onDemandMicrosPerHour: 96_000,
          spotMicrosPerHour: null,
        },
      ],
    },
    {
      id: 'gpu-t4',
      label: 'T4',
      class: 'gpu',
      vcpu: 4,
      memoryGiB: 16,
      gpu: { model: 'T4', count: 1, memoryGiB: 16 },
      offers: [
        {
          cloud: 'local',
          region: 'here',
          instanceType: 'y',
          available: true,
          onDemandMicrosPerHour: 526_000,
          spotMicrosPerHour: 210_000,
        },
        {
          cloud: 'aws',
          region: 'us-east-1',
          instanceType: 'g4dn.xlarge',
          available: true,
          onDemandMicrosPerHour: 600_000,
          spotMicrosPerHour: 240_000,
        },
      ],
    },
  ],
};
const inst = (server: string, state: string, extra: object = {}) => ({
  id: `i-${server}`,
  user: 'researcher',
  server,
  size: 'cpu-small',
  cloud: 'local',
  region: 'here',
  spot: false,
  state,
  errorCode: null,
  errorMessage: null,
  exitCode: null,
  url: null,
  ratePerHourMicros: 96_000,
  createdAt: '2026-11-23T10:00:00.000Z',
  readyAt: state === 'running' ? '2026-11-23T10:00:00.000Z' : null,
  stoppedAt: null,
  ...extra,
});
const me = (multiplierPpm = 1_000_000) => ({
  name: 'researcher',
  admin: false,
  groups: [],
  plan: { id: 'private', label: 'Private', multiplierPpm },
});

test("the model finds this page's server among the user's, and prices sizes with the user's plan", async () => {
  const { fetch } = fakeFetch({
    'GET /me': () => json(200, me(500_000)),
    'GET /catalog': () => json(200, catalog),
    'GET /instances': () =>
      json(200, { instances: [inst('gpu', 'stopped'), inst('default', 'running')] }),
  });
  const model = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => NOW,
  });
  await model.refresh(['instance']);
  assert.equal(model.errors.instance, null);
  assert.equal(model.current?.server, 'default');
  assert.deepEqual(
    model.otherServers.map((i) => i.server),
    ['gpu'],
  );
  assert.equal(model.rateOf('gpu-t4'), 263_000, 'a half-price plan halves the list price');
  assert.equal(model.rateOf('gpu-t4', 'aws'), 300_000, "each cloud's own price");
  assert.equal(
    model.rateOf('cpu-small', 'aws'),
    null,
    'not offered there: no price borrowed from another cloud',
  );
  assert.deepEqual(model.clouds, ['local', 'aws']);
  assert.equal(model.burnMicrosPerHour, 96_000);
  // without a usage endpoint, today's spend is what the running instance cost since midnight
  assert.equal(model.spentToday(NOW), 192_000);
});

test('a section whose endpoint is missing says so, and the other sections still work', async () => {
  const { fetch } = fakeFetch({
    'GET /me': () => json(200, me()),
    'GET /catalog': () => json(200, catalog),
    'GET /instances': () => json(200, { instances: [] }),
  });
  const model = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => NOW,
  });
  const seen: string[] = [];
  model.changed.connect((_, what) => seen.push(what));
  await model.refresh();
  assert.equal(model.errors.billing?.code, 'endpoint_missing');
  assert.equal(model.errors.usage?.code, 'endpoint_missing');
  assert.equal(model.errors.instance, null);
  assert.ok(seen.includes('billing') && seen.includes('usage') && seen.includes('instance'));
});

test('the budget and the usage ledger drive month-to-date and today, ticking with the burn rate', async () => {
  const { fetch } = fakeFetch({
    'GET /me': () => json(200, me()),
    'GET /catalog': () => json(200, catalog),
    'GET /instances': () => json(200, { instances: [inst('default', 'running')] }),
    'GET /budget': () =>
      json(200, {
        user: 'researcher',
        month: '2026-11',
        spentMicros: 5_000_000,
        burnMicrosPerHour: 96_000,
        gpuHoursUsed: 0,
        gpuHoursLimit: null,
        budgets: [],
        exhaustedAt: null,
        limits: {
          maxConcurrent: null,
          allowedSizes: ['cpu-small'],
          idleTimeoutCpuSeconds: 3600,
          idleTimeoutGpuSeconds: 1800,
          maxAgeSeconds: null,
        },
      }),
    'GET /billing/statements': () =>
      json(200, {
        user: 'researcher',
        statements: [{ month: '2026-11', totalMicros: 5_000_000, seconds: 3600 }],
      }),
    'GET /usage': ({ url }) => {
      assert.equal(url.searchParams.get('granularity'), 'day');
      return json(200, {
        user: 'researcher',
        from: url.searchParams.get('from'),
        to: '',
        granularity: 'day',
        totalMicros: 900_000,
        series: [
          {
            start: '2026-11-23T00:00:00.000Z',
            size: 'cpu-small',
            seconds: 3600,
            activeSeconds: 3600,
            idleSeconds: 0,
            amountMicros: 100_000,
          },
          {
            start: '2026-11-20T00:00:00.000Z',
            size: 'cpu-small',
            seconds: 3600,
            activeSeconds: 3600,
            idleSeconds: 0,
            amountMicros: 800_000,
          },
        ],
      });
    },
  });
  let now = NOW;
  const model = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => now,
  });
  await model.refresh();
  assert.equal(model.monthToDate(NOW), 5_000_000);
  assert.equal(model.monthToDate(NOW + 3_600_000), 5_096_000);
  assert.equal(model.spentToday(NOW), 100_000, "today's ledger only");
  assert.equal(model.spentToday(NOW + 1_800_000), 148_000);
  assert.deepEqual(
    model.allowedSizes.map((s) => s.id),
    ['cpu-small'],
    'the quota limits the sizes offered',
  );
  assert.equal(model.statements?.length, 1);
  now += 1;
});

test('a resize follows the events until the new instance runs', async () => {
  const events = [
    {
      id: 10,
      instanceId: 'i-default',
      at: '2026-11-23T12:00:00.000Z',
      state: 'stopping',
      progress: 0,
      message: 'stopping',
    },
    {
      id: 11,
      instanceId: 'i-default',
      at: '2026-11-23T12:00:01.000Z',
      state: 'stopped',
      progress: 100,
      message: 'stopped',
    },
    {
      id: 12,
      instanceId: 'i-new',
      at: '2026-11-23T12:00:02.000Z',
      state: 'starting',
      progress: 40,
      message: 'starting the server',
    },
    {
      id: 13,
      instanceId: 'i-new',
      at: '2026-11-23T12:00:09.000Z',
      state: 'running',
      progress: 100,
      message: 'ready',
    },
  ];
  let listed = [inst('default', 'running')];
  const { fetch } = fakeFetch({
    'GET /me': () => json(200, me()),
    'GET /catalog': () => json(200, catalog),
    'GET /instances': () => json(200, { instances: listed }),
    'POST /instances/default/resize': () => json(202, { ...inst('default', 'stopping') }),
    'GET /instances/default/events': () => {
      listed = [
        {
          ...inst('default', 'running'),
          id: 'i-new',
          size: 'gpu-t4',
          createdAt: '2026-11-23T12:00:02.000Z',
        },
      ];
      return new Response(
        events.map((e) => `id: ${e.id}\nevent: instance\ndata: ${JSON.stringify(e)}\n\n`).join(''),
      );
    },
  });
  const model = new NgsciModel({
    api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
    server: 'default',
    user: 'researcher',
    now: () => NOW,
  });
  await model.refresh(['instance']);
  const ready = new Promise<void>((resolve) =>
    model.changed.connect(() => model.resizing?.readyInstanceId && resolve()),
  );
  await model.resize('default', 'gpu-t4');
  await ready;
  assert.equal(model.resizing?.readyInstanceId, 'i-new');
  assert.equal(model.resizing?.failed, null);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(model.current?.size, 'gpu-t4', 'the list is refreshed once the new instance runs');
  model.dispose();
});

test(
  'a resize whose event stream the hub cut (the old machine stopped) says so, once',
  { timeout: 10_000 },
  async () => {
    let opened = 0;
    const { fetch } = fakeFetch({
      'GET /me': () => json(200, me()),
      'GET /catalog': () => json(200, catalog),
      'GET /instances': () => json(200, { instances: [inst('default', 'running')] }),
      'POST /instances/default/resize': () => json(202, { ...inst('default', 'stopping') }),
      'GET /instances/default/events': () => {
        opened++;
        // the first stream ends with the old machine; the reconnect's token is refused
        return opened === 1
          ? new Response(
              `id: 10\nevent: instance\ndata: ${JSON.stringify({
                id: 10,
                instanceId: 'i-default',
                at: '2026-11-23T12:00:00.000Z',
                state: 'stopping',
                progress: 0,
                message: 'stopping',
              })}\n\n`,
            )
          : json(401, { code: 'unauthenticated', message: 'invalid token', requestId: 'r1' });
      },
      // no sign-in of this browser to fall back on
      'GET /session': () =>
        json(401, { code: 'login_required', message: 'sign in', requestId: 'r2' }),
    });
    const model = new NgsciModel({
      api: new NgsciApi({ baseUrl: '', token: 't', fetch, user: 'researcher' }),
      server: 'default',
      user: 'researcher',
      now: () => NOW,
    });
    await model.refresh(['instance']);
    const lost = new Promise<void>((resolve) =>
      model.changed.connect(() => model.resizing?.eventsLost && resolve()),
    );
    await model.resize('default', 'gpu-t4');
    await lost;
    assert.equal(model.resizing?.readyInstanceId, null);
    assert.equal(model.resizing?.failed, null, 'not a failure: the page watches the address');
    assert.equal(model.resizing?.last?.state, 'stopping');
    await new Promise((r) => setTimeout(r, 1_200));
    assert.equal(opened, 2, 'no retries against a token the hub revoked');
    model.dispose();
  },
);

test(
  "a stop of this page's server, seen on its event stream, refreshes every money part at once",
  { timeout: 10_000 },
  async () => {
    let state = 'running';
    let budgetCalls = 0;
    let usageCalls = 0;
    let statementCalls = 0;
    let refuse = false;
    const refused = () =>
      json(401, { code: 'unauthenticated', message: 'the token is not valid', requestId: 'r' });
    const stopped = (i: number) => ({
      id: i,
      instanceId: 'i-default',
      at: '2026-11-23T12:00:00.000Z',
      state: i === 2 ? 'running' : i === 3 ? 'stopping' : 'stopped',
      progress: 100,
      message: '',
    });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { fetch } = fakeFetch({
      'GET /me': () => json(200, me()),
      'GET /catalog': () => json(200, catalog),
      'GET /instances': () =>
        refuse
          ? refused()
          : json(200, { instances: state === 'stopped' ? [] : [inst('default', state)] }),
      'GET /instances/default': () =>
        json(200, {
          ...inst('default', 'stopped', {
            readyAt: '2026-11-23T10:00:00.000Z',
            stoppedAt: '2026-11-23T12:00:00.000Z',
          }),
          billedMicros: 192_000,
        }),
      'GET /usage': () => {
        usageCalls++;
        return refuse
          ? refused()
          : json(200, {
              from: '2026-11-01T00:00:00Z',
              to: '2026-11-24T00:00:00Z',
              series: [],
              totalMicros: 0,
            });
      },
      'GET /budget': () => {
        budgetCalls++;
        return refuse
          ? refused()
          : json(200, {
              user: 'researcher',
              month: '2026-11',
              spentMicros: 192_000 + budgetCalls,
              burnMicrosPerHour: 0,
              gpuHoursUsed: 0,
              gpuHoursLimit: null,
              budgets: [],
              exhaustedAt: null,
              limits: {
                maxConcurrent: null,
                allowedSizes: null,
                idleTimeoutCpuSeconds: 3600,
                idleTimeoutGpuSeconds: 1800,
              },
            });
      },
      'GET /billing/statements': () => {
        statementCalls++;
        return refuse
          ? refused()
          : json(200, { statements: [{ month: '2026-11', totalMicros: 192_000, seconds: 7200 }] });
      },
      'GET /instances/default/events': async () => {
        // the replay of the running instance, then (once the test says) its stop
        await gate;
        state = 'stopped';
        return new Response(
          [2, 3, 4]
            .map((i) => `id: ${i}\nevent: instance\ndata: ${JSON.stringify(stopped(i))}\n\n`)
            .join(''),
        );
      },
    });
    const model = new NgsciModel({
      api: new NgsciApi({ baseUrl: '', token: 't', fetch }),
      server: 'default',
      user: 'researcher',
      now: () => NOW,
    });
    await model.refresh();
    assert.equal(model.current?.state, 'running');
    const before = { budgetCalls, usageCalls, statementCalls };
    model.watch();
    const changed = new Promise<void>((resolve) =>
      model.changed.connect(() => {
        if (model.current?.state === 'stopped' && budgetCalls > before.budgetCalls) resolve();
      }),
    );
    release();
    await changed;
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(usageCalls > before.usageCalls, 'the usage asked again');
    assert.ok(statementCalls > before.statementCalls, 'the statements asked again');
    // the stopped instance, with its final cost, stays in the Instance section
    assert.equal(model.current?.state, 'stopped');
    assert.equal(model.billedSoFar(model.current!), 192_000);
    assert.equal(model.statements?.length, 1);

    // then the hub revokes the page's token: a refresh keeps the last figures, and says why
    refuse = true;
    await model.refresh();
    assert.equal(model.errors.billing?.code, 'page_server_stopped');
    assert.match(model.errors.billing!.userMessage, /This machine has stopped/);
    assert.equal(model.statements?.length, 1, 'the last statements stay (not an empty list)');
    assert.ok(model.budget, 'the last budget stays');
    model.dispose();
  },
);
