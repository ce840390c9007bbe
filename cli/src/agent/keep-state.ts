/**
 * Kernel variables kept at a spot notice, by the agent (no browser page needed): when the service
 * answers the notice with the researcher's keepState, the agent asks its own server (on loopback,
 * with the server's own token) for its sessions and, through each notebook kernel's websocket,
 * runs the keep-state save silently in it (jupyter.ts), bounded by a timeout, and reports what
 * each notebook kept and what it did not. Every Python notebook kernel saves its variables to
 * `~/.ngsci/state` as before a resize with keep-state; a busy kernel is reported `busy`, never
 * interrupted. The relaunched server's page restores them. No kernel connection file and no
 * Python on the agent's side: the same path on a local instance and on a cloud VM, where the
 * agent runs in its own container (docker) or as root (pip).
 */
import { z } from 'zod';
import {
  keepStateExpression,
  keepStateFailure,
  keepStateRefusal,
  parseKeepStateAnswer,
  type KernelKeepReport,
} from '@ngsci/contract/client';
import {
  evaluateSilently,
  kernelLanguages,
  listSessions,
  type JupyterError,
  type JupyterServer,
  type Session,
} from './jupyter.js';

const Variable = z.object({ name: z.string().max(255), type: z.string().max(255) });
const KeptNotebook = z.object({
  notebook: z.string().max(1024),
  path: z.string().max(4096),
  variables: z.array(Variable).max(10_000),
});
const NotKeptRow = z.object({
  notebook: z.string().max(1024),
  variable: z.string().max(255).nullable(),
  reason: z.string().max(2000),
  code: z.string().max(64).optional(),
});

/** The save's outcome: the notebooks' results, or why it could not reach them at all. */
export const SaveAllAnswer = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    notebooks: z.number().int().min(0),
    kept: z.array(KeptNotebook),
    notKept: z.array(NotKeptRow),
  }),
  z.object({ ok: z.literal(false), code: z.string().max(64), message: z.string().max(2000) }),
]);
export type SaveAllAnswer = z.infer<typeof SaveAllAnswer>;

/** What the agent sends to POST /agent/spot/variables (the service tells the researcher). */
export interface VariablesReport {
  notebooks: number;
  kept: Array<{ notebook: string; variables: Array<{ name: string; type: string }> }>;
  notKept: Array<{ notebook: string; variable: string | null; reason: string; code?: string }>;
  error?: { code: string; message: string };
}

/** Runs the save in every notebook kernel; resolves with its answer, never rejects. */
export type SaveRunner = (timeoutMs: number) => Promise<SaveAllAnswer>;

const LIMIT = 200;

/** The agent's report from the save's answer (long lists cut to what a notice can say). */
export function toReport(a: SaveAllAnswer): VariablesReport {
  if (!a.ok)
    return { notebooks: 0, kept: [], notKept: [], error: { code: a.code, message: a.message } };
  return {
    notebooks: a.notebooks,
    kept: a.kept.slice(0, LIMIT).map((k) => ({
      notebook: k.notebook,
      variables: k.variables.slice(0, LIMIT),
    })),
    notKept: a.notKept.slice(0, LIMIT),
  };
}

interface Target {
  label: string;
  path: string;
  kind: 'notebook' | 'console' | 'other';
  python: boolean;
  state: string;
  kernelId: string;
}

export interface ServerSaveOptions {
  fetch?: typeof fetch;
  /** kernels saved at once (default 4) */
  concurrency?: number;
  /** runs the expression in a kernel (tests: the real one against a fake server) */
  evaluate?: typeof evaluateSilently;
}

/**
 * The save in every notebook's Python kernel of the server, through the server's own HTTP API
 * and kernel websockets (jupyter.ts), with the server's token: the same on a local instance and
 * a cloud VM. Consoles and kernels without a notebook are left out; a busy kernel is reported
 * `busy` and never sent anything; every kernel's save is bounded by the same deadline, and one
 * that has not answered by then is reported `no_answer` while the others' results stand.
 */
export function serverSaveRunner(server: JupyterServer, o: ServerSaveOptions = {}): SaveRunner {
  const fetchImpl = o.fetch ?? fetch;
  const evaluate = o.evaluate ?? evaluateSilently;
  return async (timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    let sessions: Session[];
    try {
      sessions = await listSessions(server, Math.min(10_000, left()), fetchImpl);
    } catch (err) {
      const e = err as JupyterError;
      return {
        ok: false,
        code: e.code ?? 'no_sessions',
        message: `cannot list this server's kernels: ${e.message}`,
      };
    }
    const languages = await kernelLanguages(server, Math.min(10_000, left()), fetchImpl);
    const targets = sessions.map((s) => toTarget(s, languages));
    const notebooks = targets.filter((t) => t.kind === 'notebook');
    const outcomes = await inTurn(notebooks, o.concurrency ?? 4, (t) =>
      saveIn(t, server, evaluate, left, timeoutMs),
    );
    return summarize(outcomes);
  };
}

function toTarget(s: Session, languages: Map<string, string> | null): Target {
  const path = s.path ?? '';
  const type = s.type ?? '';
  const name = s.kernel?.name ?? '';
  // without the specs, a kernel named python* is taken as Python (ipykernel's names)
  const language = languages?.get(name) ?? (/^python/i.test(name) ? 'python' : '');
  return {
    path,
    label: type === 'notebook' ? (path.split('/').pop() ?? path) : `${type || 'kernel'} ${path}`,
    kind: type === 'notebook' ? 'notebook' : type === 'console' ? 'console' : 'other',
    python: language === 'python',
    state: s.kernel?.execution_state ?? '',
    kernelId: s.kernel?.id ?? '',
  };
}

async function saveIn(
  t: Target,
  server: JupyterServer,
  evaluate: typeof evaluateSilently,
  left: () => number,
  timeoutMs: number,
): Promise<KernelKeepReport> {
  const refused = keepStateRefusal(
    { kind: t.kind, python: t.python, busy: t.state === 'busy', dead: t.state === 'dead' },
    'save',
  );
  if (refused) return keepStateFailure(t, refused);
  try {
    const expression = keepStateExpression('save', t.path);
    return parseKeepStateAnswer(
      t,
      await evaluate(server, t.kernelId, expression, left(), timeoutMs),
    );
  } catch (err) {
    const e = err as Partial<JupyterError>;
    return keepStateFailure(t, { code: e.code ?? 'failed', message: e.message ?? String(err) });
  }
}

/** What each notebook kept and everything not kept, in the sessions' order. */
function summarize(reports: KernelKeepReport[]): SaveAllAnswer {
  const kept: z.infer<typeof KeptNotebook>[] = [];
  const notKept: VariablesReport['notKept'] = [];
  for (const r of reports) {
    if (r.kept.length)
      kept.push({
        notebook: r.label,
        path: r.path,
        variables: r.kept.map((v) => ({ name: v.name, type: v.type })),
      });
    if (r.error)
      notKept.push({
        notebook: r.label,
        variable: null,
        reason: r.error.message,
        code: r.error.code,
      });
    for (const v of r.notKept)
      notKept.push({ notebook: r.label, variable: v.name, reason: v.reason });
  }
  return { ok: true, notebooks: reports.length, kept, notKept };
}

/** Runs fn over the items, at most `limit` at once; results in the items' order. */
async function inTurn<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** One line for the agent's log: counts only, never variable names or values. */
export function describeReport(r: VariablesReport): string {
  if (r.error) return `kernel variables not saved: [${r.error.code}] ${r.error.message}`;
  const vars = r.kept.reduce((n, k) => n + k.variables.length, 0);
  return `kernel variables saved: ${vars} in ${r.kept.length} of ${r.notebooks} notebooks, ${r.notKept.length} not kept`;
}
