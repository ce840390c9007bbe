/**
 * The agent's client for its own single-user server, through the server's HTTP API only (no
 * kernel connection files, which a VM's agent in its own container or as root cannot use): the
 * sessions and kernel specs over REST, and one silent `execute_request` in a kernel over the
 * kernel's websocket (`/api/kernels/<id>/channels`), as the JupyterLab page sends it. Every call
 * carries the server's own token in the Authorization header, never in a URL; no error message
 * holds it.
 *
 * The websocket speaks the Jupyter server's default framing (no subprotocol asked for): each
 * message a JSON text frame of the messaging protocol's dict (header, parent_header, metadata,
 * content, buffers) plus its `channel`. Binary frames (messages with buffers) are never replies
 * to what the agent sends and are skipped.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { z } from 'zod';

/** The server: its base URL on loopback (ending in /) and its own token. */
export interface JupyterServer {
  url: string;
  token: string;
}

/** A failure with a code the report carries (no_sessions, no_kernel, no_answer, failed...). */
export class JupyterError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'JupyterError';
  }
}

const Session = z.object({
  path: z.string().max(4096).nullish(),
  type: z.string().max(64).nullish(),
  kernel: z
    .object({
      id: z.string().min(1).max(128),
      name: z.string().max(255).nullish(),
      execution_state: z.string().max(64).nullish(),
    })
    .nullish(),
});
export type Session = z.infer<typeof Session>;

const KernelSpecs = z.object({
  kernelspecs: z.record(
    z.string(),
    z.object({ spec: z.object({ language: z.string().max(255).nullish() }).nullish() }),
  ),
});

const auth = (s: JupyterServer) => ({ authorization: `token ${s.token}` });

async function getJson(
  s: JupyterServer,
  path: string,
  timeoutMs: number,
  fetchImpl: typeof fetch,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetchImpl(`${s.url}${path}`, {
      headers: { ...auth(s), accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new JupyterError('no_sessions', `cannot reach this server (${(err as Error).message})`);
  }
  if (!res.ok) throw new JupyterError('no_sessions', `GET ${path} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch {
    throw new JupyterError('no_sessions', `GET ${path} answered something other than JSON`);
  }
}

/** The server's sessions (`GET api/sessions`); entries that are not sessions are left out. */
export async function listSessions(
  s: JupyterServer,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<Session[]> {
  const data = await getJson(s, 'api/sessions', timeoutMs, fetchImpl);
  if (!Array.isArray(data))
    throw new JupyterError('no_sessions', "this server's session list is not a list");
  return data.flatMap((d) => {
    const parsed = Session.safeParse(d);
    return parsed.success && parsed.data.kernel ? [parsed.data] : [];
  });
}

/**
 * How many of the server's kernels exist and how many are executing (`GET api/kernels`), for the
 * agent's kernel report; null when the server cannot say.
 */
export async function countKernels(
  s: JupyterServer,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<{ total: number; busy: number } | null> {
  let kernels: unknown;
  try {
    kernels = await getJson(s, 'api/kernels', timeoutMs, fetchImpl);
  } catch {
    return null;
  }
  if (!Array.isArray(kernels)) return null;
  const states = kernels.map((k) => (k as { execution_state?: unknown } | null)?.execution_state);
  return { total: states.length, busy: states.filter((st) => st === 'busy').length };
}

/** Each kernel spec's language, lower case (`GET api/kernelspecs`); null if the server cannot say. */
export async function kernelLanguages(
  s: JupyterServer,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<Map<string, string> | null> {
  try {
    const parsed = KernelSpecs.safeParse(await getJson(s, 'api/kernelspecs', timeoutMs, fetchImpl));
    if (!parsed.success) return null;
    return new Map(
      Object.entries(parsed.data.kernelspecs).map(([name, k]) => [
        name,
        (k.spec?.language ?? '').toLowerCase(),
      ]),
    );
  } catch {
    return null;
  }
}

/** A Jupyter message as the server's websocket carries it (messaging protocol 5.3 + channel). */
export interface WireMessage {
  header: {
    msg_id: string;
    session: string;
    username: string;
    date: string;
    msg_type: string;
    version: string;
  };
  parent_header: Record<string, unknown>;
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
  buffers: unknown[];
  channel: 'shell';
}

/**
 * An execute_request that only evaluates `expression` as the user expression `ngsci`: no code,
 * silent (no output, no execution count), out of the history, never waiting for input.
 */
export function silentExecuteRequest(
  expression: string,
  session: string,
  msgId = randomUUID(),
): WireMessage {
  return {
    header: {
      msg_id: msgId,
      session,
      username: 'ngsci-agent',
      date: new Date().toISOString(),
      msg_type: 'execute_request',
      version: '5.3',
    },
    parent_header: {},
    metadata: {},
    content: {
      code: '',
      silent: true,
      store_history: false,
      user_expressions: { ngsci: expression },
      allow_stdin: false,
      stop_on_error: false,
    },
    buffers: [],
    channel: 'shell',
  };
}

const ExecuteReply = z.object({
  header: z.object({ msg_type: z.string() }),
  parent_header: z.object({ msg_id: z.string().optional() }).loose(),
  content: z
    .object({
      status: z.string(),
      ename: z.string().optional(),
      evalue: z.string().optional(),
      user_expressions: z
        .record(
          z.string(),
          z
            .object({
              status: z.string(),
              data: z.record(z.string(), z.unknown()).optional(),
              ename: z.string().optional(),
              evalue: z.string().optional(),
            })
            .loose(),
        )
        .optional(),
    })
    .loose(),
});

/** The kernel's websocket URL (ws for http, wss for https), with a session id of its own. */
export function channelsUrl(s: JupyterServer, kernelId: string, session: string): string {
  const u = new URL(`api/kernels/${encodeURIComponent(kernelId)}/channels`, s.url);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.searchParams.set('session_id', session);
  return u.toString();
}

const short = (t: string) => t.slice(0, 300);

/**
 * Evaluates `expression` silently in one kernel and resolves with its text/plain repr. Rejects
 * with a JupyterError: `no_kernel` (the server refused the connection or the kernel is gone),
 * `no_answer` (no reply by the deadline, or the connection closed first), `no_magic` (the kernel
 * has no ngsci_magic), `failed` (the expression raised). Never interrupts the kernel.
 * `saidTimeout` is the wait a `no_answer` names (default timeoutMs: a caller that shares one
 * deadline among kernels names the whole of it).
 */
export function evaluateSilently(
  s: JupyterServer,
  kernelId: string,
  expression: string,
  timeoutMs: number,
  saidTimeout = timeoutMs,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const session = randomUUID();
    const request = silentExecuteRequest(expression, session);
    const ws = new WebSocket(channelsUrl(s, kernelId, session), {
      headers: auth(s),
      handshakeTimeout: Math.max(1, timeoutMs),
      maxPayload: 64 * 1024 * 1024,
    });
    let done = false;
    const finish = (err: JupyterError | null, text = '') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeAllListeners('message');
      // an error after this one (the close below) has nobody to tell
      ws.on('error', () => {});
      ws.terminate();
      if (err) reject(err);
      else resolve(text);
    };
    const timer = setTimeout(
      () =>
        finish(
          new JupyterError(
            'no_answer',
            `no answer within ${Math.max(1, Math.round(saidTimeout / 1000))} s`,
          ),
        ),
      timeoutMs,
    );
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(
        new JupyterError(
          'no_kernel',
          status === 404
            ? 'its kernel is gone'
            : `the server refused the connection to its kernel (HTTP ${status})`,
        ),
      );
    });
    ws.on('error', (err) =>
      finish(new JupyterError('no_kernel', `cannot connect to its kernel (${short(err.message)})`)),
    );
    ws.on('close', () =>
      finish(
        new JupyterError('no_answer', 'the connection to its kernel closed before it answered'),
      ),
    );
    ws.on('open', () => ws.send(JSON.stringify(request)));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(data));
      } catch {
        return;
      }
      const m = ExecuteReply.safeParse(parsed);
      if (
        !m.success ||
        m.data.header.msg_type !== 'execute_reply' ||
        m.data.parent_header.msg_id !== request.header.msg_id
      )
        return;
      const c = m.data.content;
      if (c.status !== 'ok')
        return finish(
          new JupyterError(
            'failed',
            `the kernel answered ${c.status}${c.ename ? ` (${c.ename}: ${short(c.evalue ?? '')})` : ''}`,
          ),
        );
      const out = c.user_expressions?.ngsci;
      if (!out) return finish(new JupyterError('failed', 'the kernel evaluated nothing'));
      if (out.status !== 'ok') {
        if (out.ename === 'ModuleNotFoundError')
          return finish(
            new JupyterError(
              'no_magic',
              "this kernel has no ngsci_magic: its variables can't be kept (pip install ngsci-magic in its environment)",
            ),
          );
        return finish(
          new JupyterError('failed', `${out.ename ?? 'error'}: ${short(out.evalue ?? '')}`),
        );
      }
      const text = out.data?.['text/plain'];
      if (typeof text !== 'string')
        return finish(new JupyterError('bad_answer', 'the kernel answered no text'));
      finish(null, text);
    });
  });
}
