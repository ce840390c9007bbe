/**
 * Following a launch: a start that a limit refuses while the command waits ends with the error
 * line alone at the start of its line (the progress bar wiped on a terminal, no duplicate "failed"
 * line in a log), carrying the service's code, and exit 1 as when the launch itself is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './main.js';
import type { Io } from './output.js';

const instance = (state: string, extra: object = {}) => ({
  id: 'i1',
  user: 'ada',
  server: 'default',
  size: 'cpu-small',
  cloud: 'local',
  region: 'localhost',
  spot: false,
  state,
  errorCode: null,
  errorMessage: null,
  exitCode: null,
  url: null,
  ratePerHourMicros: 96_000,
  createdAt: '2026-11-29T15:00:00.000Z',
  readyAt: null,
  stoppedAt: null,
  ...extra,
});

const event = (id: number, state: string, progress: number, message: string) =>
  `event: instance\ndata: ${JSON.stringify({ id, instanceId: 'i1', at: '2026-11-29T15:00:00.000Z', state, progress, message })}\n\n`;

function fakeService(): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    if (method === 'POST' && url.pathname.endsWith('/instances'))
      return Response.json(instance('requested'), { status: 202 });
    if (url.pathname.endsWith('/instances/default/events'))
      return new Response(
        event(1, 'requested', 0, 'launch requested') +
          event(2, 'provisioning', 20, 'checking limits') +
          event(3, 'failed', 100, 'budget_exhausted: your monthly budget of $5.00 is spent'),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    if (url.pathname.endsWith('/instances/default'))
      return Response.json(
        instance('failed', {
          errorCode: 'budget_exhausted',
          errorMessage: 'your monthly budget of $5.00 is spent ($5.01)',
        }),
      );
    return Response.json(
      { code: 'not_found', message: url.pathname, requestId: 'r' },
      { status: 404 },
    );
  }) as typeof fetch;
}

function terminal(tty: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    tty,
    env: { NGSCI_API_URL: 'http://svc.test/services/ngsci/api/v1', JUPYTERHUB_API_TOKEN: 't' },
    fetch: fakeService(),
    sleep: async () => {},
  };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

test('on a terminal the bar is wiped and the refusal is one clean line with its code; exit 1', async () => {
  const t = terminal(true);
  assert.equal(await run(['launch', 'cpu-small'], t.io), 1);
  assert.equal(t.out(), '', 'nothing on stdout');
  const err = t.err();
  const screen = err.slice(err.lastIndexOf('\r') + 1);
  assert.equal(
    screen,
    'ngsci: [budget_exhausted] the instance failed: your monthly budget of $5.00 is spent ($5.01)\n',
    'what is left on the line after the bar is wiped',
  );
  assert.doesNotMatch(err, /failed: budget_exhausted/, 'the failure is said once');
});

test('in a log the progress lines stay, the failure is said once, by the error line', async () => {
  const t = terminal(false);
  assert.equal(await run(['launch', 'cpu-small'], t.io), 1);
  const lines = t.err().trimEnd().split('\n');
  assert.match(lines[0]!, /\] +0% requested: launch requested$/);
  assert.match(lines[1]!, /\] +20% provisioning: checking limits$/);
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /^ngsci: \[budget_exhausted\] the instance failed: /);
});
