/**
 * The agent's keep-state save at a spot notice: against a fake service (which answers the notice
 * with the researcher's keepState) and a fake GCP metadata endpoint, with a fake save runner (the
 * real one, against a fake Jupyter server, is in jupyter.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeService } from '../testing.js';
import { agent } from './index.js';
import type { SaveAllAnswer, SaveRunner } from './keep-state.js';

const SAVED: SaveAllAnswer = {
  ok: true,
  notebooks: 2,
  kept: [{ notebook: 'a.ipynb', path: 'work/a.ipynb', variables: [{ name: 'x', type: 'int' }] }],
  notKept: [
    {
      notebook: 'b.ipynb',
      variable: null,
      reason: 'running a cell: its variables can be kept once it is idle (wait, or interrupt it)',
      code: 'busy',
    },
  ],
};

function world(keepState: boolean) {
  const svc = fakeService((url) => {
    if (url.host === 'meta.test') return new Response('TRUE', { status: 200 });
    if (url.host === '127.0.0.1:8888') return Response.json([]);
    if (url.pathname.endsWith('/agent/spot'))
      return Response.json({ ok: true, keepState }, { status: 202 });
    return Response.json({ ok: true }, { status: 202 });
  });
  Object.assign(svc.io.env, {
    NGSCI_AGENT_TOKEN: 'ngsa_agent',
    JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:8888/user/r/',
    JUPYTERHUB_API_TOKEN: 'server-token',
  });
  const runs: number[] = [];
  const runner: SaveRunner = async (timeoutMs) => {
    runs.push(timeoutMs);
    return SAVED;
  };
  const once = (extra: string[] = []) =>
    agent(
      svc.io,
      [
        '--once',
        '--cloud',
        'gcp',
        '--metadata-url',
        'http://meta.test',
        '--nvidia-smi',
        '/nonexistent/nvidia-smi',
        ...extra,
      ],
      new AbortController().signal,
      { saveRunner: runner },
    );
  const posted = (path: string) =>
    svc.calls.filter((c) => c.method === 'POST' && c.path.endsWith(path)).map((c) => c.body);
  return { svc, runs, once, posted };
}

describe('at a spot notice', () => {
  test('keep-state on: one save in the kernels, with its timeout, and the service is told what was kept', async () => {
    const w = world(true);
    assert.equal(await w.once(['--keep-state-timeout', '45s']), 0);
    assert.deepEqual(w.posted('/agent/spot'), [
      { cloud: 'gcp', action: 'preempt', at: null, savesVariables: true },
    ]);
    assert.deepEqual(w.runs, [45_000]);
    assert.deepEqual(w.posted('/agent/spot/variables'), [
      {
        notebooks: 2,
        kept: [{ notebook: 'a.ipynb', variables: [{ name: 'x', type: 'int' }] }],
        notKept: SAVED.ok ? SAVED.notKept : [],
      },
    ]);
    // the log counts; it names no variable
    assert.match(w.svc.err(), /kernel variables saved: 1 in 1 of 2 notebooks, 1 not kept/);
    assert.doesNotMatch(w.svc.err(), /\bx\b.*int/);
  });

  test('keep-state off: no save, nothing more reported', async () => {
    const w = world(false);
    assert.equal(await w.once(), 0);
    assert.deepEqual(w.runs, []);
    assert.deepEqual(w.posted('/agent/spot/variables'), []);
  });

  test("without the server's token the agent cannot save, and says so to the service", async () => {
    const w = world(true);
    delete w.svc.io.env.JUPYTERHUB_API_TOKEN;
    assert.equal(await w.once(), 0);
    assert.equal((w.posted('/agent/spot')[0] as { savesVariables: boolean }).savesVariables, false);
    assert.deepEqual(w.runs, []);
  });
});
