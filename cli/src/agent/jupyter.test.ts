/**
 * The agent's save in the kernels through the server's HTTP API, against a fake Jupyter server
 * (REST sessions and kernel specs, kernel websockets that answer as ipykernel does, hang, raise,
 * or refuse): the messages' framing, which kernels are asked and which are left alone, the
 * deadline, and the report; then `ngsci agent --once` at a spot notice with no seam, which finds
 * the server from its environment as on a VM (0.0.0.0 in JUPYTERHUB_SERVICE_URL).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { fakeService } from '../testing.js';
import { agent } from './index.js';
import {
  channelsUrl,
  evaluateSilently,
  JupyterError,
  listSessions,
  type JupyterServer,
} from './jupyter.js';
import { keepStateExpression } from '@ngsci/contract/client';
import { serverSaveRunner } from './keep-state.js';

const TOKEN = 'server-token-SECRET-9f8e';
const BASE = '/user/r/';

type Behaviour =
  | { saves: Record<string, unknown> }
  | 'hangs'
  | 'raises'
  | 'no-magic'
  | 'aborts'
  | 'closes'
  | 'not-json'
  | 'refuses';

interface Received {
  kernelId: string;
  sessionId: string | null;
  authorization: string | undefined;
  origin: string | undefined;
  protocol: string | undefined;
  messages: Record<string, unknown>[];
}

/** A Jupyter server with its REST API and its kernels' websockets, all behind one token. */
async function fakeJupyter(
  sessions: unknown[],
  kernels: Record<string, Behaviour>,
  specs: Record<string, string> = { python3: 'python', ir: 'R' },
) {
  const http: string[] = [];
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    http.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    if (req.headers.authorization !== `token ${TOKEN}`) {
      res.writeHead(403).end('{"message":"Forbidden"}');
      return;
    }
    const body =
      req.url === `${BASE}api/sessions`
        ? sessions
        : req.url === `${BASE}api/kernelspecs`
          ? {
              default: 'python3',
              kernelspecs: Object.fromEntries(
                Object.entries(specs).map(([name, language]) => [
                  name,
                  { name, spec: { language, display_name: name } },
                ]),
              ),
            }
          : null;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = new RegExp(`^${BASE}api/kernels/([^/]+)/channels$`).exec(url.pathname);
    const id = m ? decodeURIComponent(m[1] as string) : '';
    const behaviour = kernels[id];
    const refuse = (status: number) => {
      socket.end(`HTTP/1.1 ${status} No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (req.headers.authorization !== `token ${TOKEN}` || behaviour === 'refuses')
      return refuse(403);
    if (!behaviour) return refuse(404);
    const r: Received = {
      kernelId: id,
      sessionId: url.searchParams.get('session_id'),
      authorization: req.headers.authorization,
      origin: req.headers.origin,
      protocol: req.headers['sec-websocket-protocol'] as string | undefined,
      messages: [],
    };
    received.push(r);
    wss.handleUpgrade(req, socket, head, (ws) => kernel(ws, behaviour, r));
  });
  const kernel = (ws: WebSocket, behaviour: Behaviour, r: Received) => {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as {
        header: { msg_id: string; session: string };
        channel: string;
      };
      r.messages.push(msg as unknown as Record<string, unknown>);
      const reply = (content: Record<string, unknown>, msgId = msg.header.msg_id) =>
        JSON.stringify({
          header: { msg_id: `r-${msgId}`, msg_type: 'execute_reply', session: 'k', version: '5.3' },
          parent_header: { msg_id: msgId, session: msg.header.session },
          metadata: {},
          content,
          buffers: [],
          channel: 'shell',
        });
      const status = (state: string) =>
        JSON.stringify({
          header: { msg_id: `s-${state}`, msg_type: 'status' },
          parent_header: { msg_id: msg.header.msg_id },
          metadata: {},
          content: { execution_state: state },
          channel: 'iopub',
        });
      const expr = (value: Record<string, unknown>) => ({
        status: 'ok',
        execution_count: 0,
        user_expressions: { ngsci: value },
      });
      if (behaviour === 'hangs') return;
      if (behaviour === 'closes') return ws.close();
      ws.send(status('busy'));
      // what a kernel also sends: a reply to somebody else's request, a frame with buffers
      ws.send(reply(expr({ status: 'ok', data: { 'text/plain': '{"ok":false}' } }), 'other'));
      ws.send(Buffer.from([0, 0, 0, 1, 0, 0, 0, 8]), { binary: true });
      if (behaviour === 'raises')
        ws.send(
          reply(
            expr({ status: 'error', ename: 'PermissionError', evalue: "can't write ~/.ngsci" }),
          ),
        );
      else if (behaviour === 'no-magic')
        ws.send(
          reply(
            expr({
              status: 'error',
              ename: 'ModuleNotFoundError',
              evalue: "No module named 'ngsci_magic'",
            }),
          ),
        );
      else if (behaviour === 'aborts') ws.send(reply({ status: 'aborted' }));
      else if (behaviour === 'not-json')
        ws.send(reply(expr({ status: 'ok', data: { 'text/plain': '<object at 0x7f>' } })));
      else if (typeof behaviour === 'object')
        ws.send(
          reply(expr({ status: 'ok', data: { 'text/plain': JSON.stringify(behaviour.saves) } })),
        );
      ws.send(status('idle'));
    });
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    server: { url: `http://127.0.0.1:${port}${BASE}`, token: TOKEN } as JupyterServer,
    http,
    received,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const session = (path: string, type: string, id: string, state = 'idle', name = 'python3') => ({
  id: `s-${id}`,
  path,
  name: path,
  type,
  kernel: { id, name, execution_state: state, last_activity: '2026-11-30T00:00:00Z' },
});

const SAVED = {
  ok: true,
  path: 'work/a.ipynb',
  file: '/home/jovyan/.ngsci/state/0123.pkl',
  kept: [
    { name: 'x', type: 'int', bytes: 5 },
    { name: 'df', type: 'pandas.core.frame.DataFrame', bytes: 2048 },
  ],
  notKept: [{ name: 'fh', type: 'TextIOWrapper', reason: 'an open file: open it again' }],
  bytes: 2053,
  saved: true,
};

describe("one silent execute_request over a kernel's websocket", () => {
  let j: Awaited<ReturnType<typeof fakeJupyter>>;
  before(async () => {
    j = await fakeJupyter([], {
      k1: { saves: { ok: true, kept: [] } },
      raises: 'raises',
      nomagic: 'no-magic',
      aborts: 'aborts',
      hangs: 'hangs',
      closes: 'closes',
      refuses: 'refuses',
    });
  });
  after(() => j.close());

  test('framed as the messaging protocol says, on the shell channel, with the token in the header only', async () => {
    const text = await evaluateSilently(
      j.server,
      'k1',
      keepStateExpression('save', 'a "b".ipynb'),
      5_000,
    );
    assert.deepEqual(JSON.parse(text), { ok: true, kept: [] }, 'the reply to its own request');
    const [r] = j.received;
    assert.equal(r?.authorization, `token ${TOKEN}`);
    assert.equal(r?.origin, undefined, 'no Origin: the server takes it as a script, not a page');
    assert.equal(r?.protocol, undefined, "no subprotocol: the server's JSON framing");
    const m = r?.messages[0] as {
      header: Record<string, string>;
      parent_header: object;
      metadata: object;
      content: Record<string, unknown>;
      channel: string;
      buffers: unknown[];
    };
    assert.equal(r?.messages.length, 1);
    assert.equal(m.channel, 'shell');
    assert.equal(m.header.msg_type, 'execute_request');
    assert.equal(m.header.version, '5.3');
    assert.match(m.header.msg_id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(m.header.session, r?.sessionId, "the message's session is the websocket's");
    assert.ok(!Number.isNaN(Date.parse(m.header.date ?? '')));
    assert.deepEqual(m.parent_header, {});
    assert.deepEqual(m.metadata, {});
    assert.deepEqual(m.buffers, []);
    assert.deepEqual(m.content, {
      code: '',
      silent: true,
      store_history: false,
      user_expressions: {
        ngsci: `__import__('ngsci_magic.keep_state', fromlist=['keep_state']).save_json("a \\"b\\".ipynb")`,
      },
      allow_stdin: false,
      stop_on_error: false,
    });
    assert.ok(!channelsUrl(j.server, 'k1', 's').includes(TOKEN), 'no token in the URL');
    assert.equal(
      channelsUrl({ url: 'https://127.0.0.1:1/user/r/', token: TOKEN }, 'k/1', 's'),
      'wss://127.0.0.1:1/user/r/api/kernels/k%2F1/channels?session_id=s',
    );
  });

  test('a kernel that raises, has no ngsci_magic, or aborts: a failure that says so', async () => {
    const fail = async (id: string) => {
      try {
        await evaluateSilently(j.server, id, 'x', 5_000);
      } catch (err) {
        assert.ok(err instanceof JupyterError);
        return { code: err.code, message: err.message };
      }
      assert.fail(`${id} answered`);
    };
    assert.deepEqual(await fail('raises'), {
      code: 'failed',
      message: "PermissionError: can't write ~/.ngsci",
    });
    assert.equal((await fail('nomagic')).code, 'no_magic');
    assert.deepEqual(await fail('aborts'), {
      code: 'failed',
      message: 'the kernel answered aborted',
    });
    assert.deepEqual(await fail('closes'), {
      code: 'no_answer',
      message: 'the connection to its kernel closed before it answered',
    });
    assert.deepEqual(await fail('refuses'), {
      code: 'no_kernel',
      message: 'the server refused the connection to its kernel (HTTP 403)',
    });
    assert.deepEqual(await fail('gone'), { code: 'no_kernel', message: 'its kernel is gone' });
  });

  test('a kernel that never answers is left at the deadline, not interrupted', async () => {
    const t0 = Date.now();
    await assert.rejects(evaluateSilently(j.server, 'hangs', 'x', 300), {
      code: 'no_answer',
      message: 'no answer within 1 s',
    });
    assert.ok(Date.now() - t0 < 2_000);
    const sent = j.received.filter((r) => r.kernelId === 'hangs').flatMap((r) => r.messages);
    assert.deepEqual(
      sent.map((m) => (m.header as { msg_type: string }).msg_type),
      ['execute_request'],
      'no interrupt_request, nothing else',
    );
  });

  test('the session list needs the token', async () => {
    await assert.rejects(listSessions({ ...j.server, token: 'wrong' }, 5_000), {
      code: 'no_sessions',
      message: 'GET api/sessions answered HTTP 403',
    });
  });
});

describe("the save in every notebook's kernel, through the server", () => {
  let j: Awaited<ReturnType<typeof fakeJupyter>>;
  before(async () => {
    j = await fakeJupyter(
      [
        session('work/a.ipynb', 'notebook', 'k-a'),
        session('work/b.ipynb', 'notebook', 'k-b', 'busy'),
        session('console-1', 'console', 'k-c'),
        session('stats.ipynb', 'notebook', 'k-r', 'idle', 'ir'),
        session('c.ipynb', 'notebook', 'k-err'),
        session('d.ipynb', 'notebook', 'k-dead', 'dead'),
        session('full.ipynb', 'notebook', 'k-full'),
        { id: 'broken' },
      ],
      {
        'k-a': { saves: SAVED },
        'k-b': { saves: SAVED },
        'k-c': { saves: SAVED },
        'k-r': { saves: SAVED },
        'k-err': 'raises',
        'k-dead': { saves: SAVED },
        'k-full': {
          saves: {
            ok: false,
            path: 'full.ipynb',
            code: 'no_room',
            message: 'the variables need 9.0 MB and the home volume has 1.0 MB free',
          },
        },
      },
    );
  });
  after(() => j.close());

  test('idle Python notebooks save; busy, R, dead kernels and consoles are never sent anything', async () => {
    const answer = await serverSaveRunner(j.server)(10_000);
    assert.deepEqual(answer, {
      ok: true,
      notebooks: 6,
      kept: [
        {
          notebook: 'a.ipynb',
          path: 'work/a.ipynb',
          variables: [
            { name: 'x', type: 'int' },
            { name: 'df', type: 'pandas.core.frame.DataFrame' },
          ],
        },
      ],
      notKept: [
        { notebook: 'a.ipynb', variable: 'fh', reason: 'an open file: open it again' },
        {
          notebook: 'b.ipynb',
          variable: null,
          reason:
            'running a cell: its variables can be kept once it is idle (wait, or interrupt it)',
          code: 'busy',
        },
        {
          notebook: 'stats.ipynb',
          variable: null,
          reason: 'not a Python kernel: its variables are not kept',
          code: 'not_python',
        },
        {
          notebook: 'c.ipynb',
          variable: null,
          reason: "PermissionError: can't write ~/.ngsci",
          code: 'failed',
        },
        { notebook: 'd.ipynb', variable: null, reason: 'its kernel has died', code: 'no_kernel' },
        {
          notebook: 'full.ipynb',
          variable: null,
          reason: 'the variables need 9.0 MB and the home volume has 1.0 MB free',
          code: 'no_room',
        },
      ],
    });
    assert.deepEqual(
      j.received.map((r) => r.kernelId).sort(),
      ['k-a', 'k-err', 'k-full'],
      'only the idle Python notebooks were reached',
    );
    const sent = j.received.find((r) => r.kernelId === 'k-a')?.messages[0] as {
      content: { user_expressions: { ngsci: string } };
    };
    assert.equal(
      sent.content.user_expressions.ngsci,
      `__import__('ngsci_magic.keep_state', fromlist=['keep_state']).save_json("work/a.ipynb")`,
      "each kernel saves under its own notebook's path",
    );
    assert.ok(
      j.http.every((h) => h.endsWith(`token ${TOKEN}`)),
      'every request with the token',
    );
    assert.ok(!JSON.stringify(answer).includes(TOKEN));
  });

  test('without the kernel specs, kernels named python* are taken as Python', async () => {
    const k = await fakeJupyter(
      [session('a.ipynb', 'notebook', 'k-a', 'idle', 'python3')],
      {
        'k-a': { saves: SAVED },
      },
      {},
    );
    try {
      const answer = await serverSaveRunner(k.server)(10_000);
      assert.equal(answer.ok && answer.kept.length, 1);
    } finally {
      await k.close();
    }
  });

  test('a server that refuses the token, or is not there: no save, and why', async () => {
    const refused = await serverSaveRunner({ ...j.server, token: 'wrong' })(5_000);
    assert.deepEqual(refused, {
      ok: false,
      code: 'no_sessions',
      message: "cannot list this server's kernels: GET api/sessions answered HTTP 403",
    });
    const gone = await serverSaveRunner({ url: 'http://127.0.0.1:9/user/r/', token: TOKEN })(5_000);
    assert.equal(!gone.ok && gone.code, 'no_sessions');
    assert.ok(!JSON.stringify(gone).includes(TOKEN));
  });
});

describe('the deadline', () => {
  test('a kernel that hangs is reported no_answer at the deadline; the others are kept', async () => {
    const j = await fakeJupyter(
      [session('hang.ipynb', 'notebook', 'k-h'), session('a.ipynb', 'notebook', 'k-a')],
      { 'k-h': 'hangs', 'k-a': { saves: SAVED } },
    );
    try {
      const t0 = Date.now();
      const answer = await serverSaveRunner(j.server)(800);
      const took = Date.now() - t0;
      assert.ok(took >= 700 && took < 2_500, `took ${took} ms`);
      assert.equal(answer.ok, true);
      assert.deepEqual(answer.ok && answer.kept.map((k) => k.notebook), ['a.ipynb']);
      assert.deepEqual(answer.ok && answer.notKept[0], {
        notebook: 'hang.ipynb',
        variable: null,
        reason: 'no answer within 1 s',
        code: 'no_answer',
      });
    } finally {
      await j.close();
    }
  });

  test('more notebooks than run at once all share the one deadline', async () => {
    const sessions = Array.from({ length: 6 }, (_, i) =>
      session(`h${i}.ipynb`, 'notebook', `h${i}`),
    );
    const j = await fakeJupyter(
      sessions,
      Object.fromEntries(sessions.map((s) => [s.kernel.id, 'hangs' as const])),
    );
    try {
      const t0 = Date.now();
      const answer = await serverSaveRunner(j.server, { concurrency: 4 })(3_000);
      assert.ok(Date.now() - t0 < 4_500, 'the fifth and sixth did not get a deadline of their own');
      assert.deepEqual(
        answer.ok && answer.notKept.map((r) => `${r.code}: ${r.reason}`),
        Array(6).fill('no_answer: no answer within 3 s'),
        'each names the whole wait, also those that waited their turn',
      );
    } finally {
      await j.close();
    }
  });
});

describe('ngsci agent at a spot notice, with no seam: the server from its environment', () => {
  test("it finds the server on loopback from JUPYTERHUB_SERVICE_URL (0.0.0.0 on a VM), saves with the server's token, and reports it; the token is in no log", async () => {
    const j = await fakeJupyter(
      [session('work/a.ipynb', 'notebook', 'k-a'), session('b.ipynb', 'notebook', 'k-b', 'busy')],
      { 'k-a': { saves: SAVED }, 'k-b': { saves: SAVED } },
    );
    try {
      const svc = fakeService((url, init) => {
        if (url.host === 'meta.test') return new Response('TRUE', { status: 200 });
        if (url.host === `127.0.0.1:${j.port}`) return fetch(url, init);
        if (url.pathname.endsWith('/agent/spot'))
          return Response.json({ ok: true, keepState: true }, { status: 202 });
        return Response.json({ ok: true }, { status: 202 });
      });
      Object.assign(svc.io.env, {
        NGSCI_AGENT_TOKEN: 'ngsa_agent',
        JUPYTERHUB_SERVICE_URL: `http://0.0.0.0:${j.port}${BASE}`,
        JUPYTERHUB_API_TOKEN: TOKEN,
      });
      const code = await agent(
        svc.io,
        [
          '--once',
          '--cloud',
          'gcp',
          '--metadata-url',
          'http://meta.test',
          '--nvidia-smi',
          '/nonexistent/nvidia-smi',
        ],
        new AbortController().signal,
      );
      assert.equal(code, 0, svc.err());
      const posted = (p: string) =>
        svc.calls.filter((c) => c.method === 'POST' && c.path.endsWith(p)).map((c) => c.body);
      assert.equal((posted('/agent/spot')[0] as { savesVariables: boolean }).savesVariables, true);
      assert.deepEqual(posted('/agent/spot/variables'), [
        {
          notebooks: 2,
          kept: [
            {
              notebook: 'a.ipynb',
              variables: [
                { name: 'x', type: 'int' },
                { name: 'df', type: 'pandas.core.frame.DataFrame' },
              ],
            },
          ],
          notKept: [
            { notebook: 'a.ipynb', variable: 'fh', reason: 'an open file: open it again' },
            {
              notebook: 'b.ipynb',
              variable: null,
              reason:
                'running a cell: its variables can be kept once it is idle (wait, or interrupt it)',
              code: 'busy',
            },
          ],
        },
      ]);
      assert.deepEqual(
        j.received.map((r) => r.kernelId),
        ['k-a'],
      );
      assert.match(svc.err(), /kernel variables saved: 2 in 1 of 2 notebooks, 2 not kept/);
      assert.ok(!svc.err().includes(TOKEN), 'the server token is in no log line');
      // the server's token went to the server only, never to the service
      for (const c of svc.calls.filter((c) => !c.path.startsWith(BASE)))
        assert.ok(!JSON.stringify(c).includes(TOKEN));
    } finally {
      await j.close();
    }
  });
});
