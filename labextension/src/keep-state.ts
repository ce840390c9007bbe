/**
 * Kernel variables kept across a resize, the page's side: each Python kernel of the server runs
 * ngsci_magic.keep_state (shipped with the %ngsci magic) silently, through a user expression,
 * to check what it could keep, to save it before the stop, and to restore it once the page is
 * back on the new size. DOM-free: the kernels come in as `KeepStateKernel`s (keep-state-page.ts
 * makes them from JupyterLab's sessions).
 */

export type KeepStateVerb = 'check' | 'save' | 'restore' | 'discard';

/** One kernel of the server, as far as keeping its variables goes. */
export interface KeepStateKernel {
  /** the session's path: a notebook's path, or a console's */
  path: string;
  /** what the user sees: the notebook's file name, or "console" */
  label: string;
  kind: 'notebook' | 'console' | 'other';
  /** its language is Python (other kernels cannot be kept) */
  python: boolean;
  /** running a cell just now: a request would wait for it */
  busy: boolean;
  /** evaluates `expression` silently in the kernel; resolves with its text/plain repr */
  evaluate(expression: string, timeoutMs: number): Promise<string>;
}

export interface KeptVariable {
  name: string;
  type: string;
  bytes?: number;
}

export interface UnkeptVariable {
  name: string;
  type: string;
  reason: string;
}

/** What one kernel answered (or why it could not). */
export interface KernelKeepReport {
  label: string;
  path: string;
  ok: boolean;
  kept: KeptVariable[];
  notKept: UnkeptVariable[];
  bytes: number;
  /** a failure of the kernel as a whole: not Python, busy, no room, no answer... */
  error: { code: string; message: string } | null;
  /** restore: a snapshot was there */
  found?: boolean;
}

/** How long each step may take in one kernel: a check pickles to a counter, a save writes. */
export const TIMEOUTS: Record<KeepStateVerb, number> = {
  check: 120_000,
  save: 600_000,
  restore: 600_000,
  discard: 30_000,
};

/** The user expression that runs `verb` for a notebook path (a JSON string is a Python literal). */
export function expressionFor(verb: KeepStateVerb, path: string): string {
  return `__import__('ngsci_magic.keep_state', fromlist=['keep_state']).${verb}_json(${JSON.stringify(path)})`;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function variables(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter(isObj).filter((x) => typeof x.name === 'string') : [];
}

/** Reads a kernel's answer (JSON from keep_state.py); anything else is a failure, never a throw. */
export function parseAnswer(
  k: Pick<KeepStateKernel, 'label' | 'path'>,
  text: string,
): KernelKeepReport {
  const base = { label: k.label, path: k.path, kept: [], notKept: [], bytes: 0 };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return {
      ...base,
      ok: false,
      error: { code: 'bad_answer', message: `the kernel answered: ${text.slice(0, 200)}` },
    };
  }
  if (!isObj(data))
    return {
      ...base,
      ok: false,
      error: { code: 'bad_answer', message: 'the kernel answered nothing usable' },
    };
  if (data.ok !== true)
    return {
      ...base,
      ok: false,
      error: { code: str(data.code) || 'failed', message: str(data.message) || 'failed' },
    };
  const kept = variables(data.kept ?? data.restored).map((v) => ({
    name: str(v.name),
    type: str(v.type),
    ...(typeof v.bytes === 'number' ? { bytes: v.bytes } : {}),
  }));
  const notKept = variables(data.notKept ?? data.notRestored).map((v) => ({
    name: str(v.name),
    type: str(v.type),
    reason: str(v.reason) || 'not kept',
  }));
  const error = isObj(data.error)
    ? { code: str(data.error.code) || 'failed', message: str(data.error.message) }
    : null;
  return {
    ...base,
    ok: error === null,
    kept,
    notKept,
    bytes: typeof data.bytes === 'number' ? data.bytes : 0,
    error,
    ...(typeof data.found === 'boolean' ? { found: data.found } : {}),
  };
}

/** Why a kernel is left out before anything runs in it, or null. */
function leftOut(k: KeepStateKernel, verb: KeepStateVerb): KernelKeepReport['error'] {
  if (k.kind !== 'notebook')
    return {
      code: 'not_a_notebook',
      message: `a ${k.kind === 'console' ? 'console' : 'kernel without a notebook'}: only notebooks' variables are kept`,
    };
  if (!k.python)
    return { code: 'not_python', message: 'not a Python kernel: its variables are not kept' };
  if (k.busy && (verb === 'check' || verb === 'save'))
    return {
      code: 'busy',
      message: 'running a cell: its variables can be kept once it is idle (wait, or interrupt it)',
    };
  return null;
}

/** Runs one step in one kernel; every failure becomes the report's error. */
export async function runIn(k: KeepStateKernel, verb: KeepStateVerb): Promise<KernelKeepReport> {
  const error = leftOut(k, verb);
  if (error)
    return { label: k.label, path: k.path, ok: false, kept: [], notKept: [], bytes: 0, error };
  try {
    return parseAnswer(k, await k.evaluate(expressionFor(verb, k.path), TIMEOUTS[verb]));
  } catch (err) {
    return {
      label: k.label,
      path: k.path,
      ok: false,
      kept: [],
      notKept: [],
      bytes: 0,
      error: { code: 'no_answer', message: (err as Error).message || String(err) },
    };
  }
}

/** Runs one step in every kernel, one kernel at a time (a save may write gigabytes). */
export async function runInAll(
  kernels: KeepStateKernel[],
  verb: KeepStateVerb,
): Promise<KernelKeepReport[]> {
  const out: KernelKeepReport[] = [];
  for (const k of kernels) out.push(await runIn(k, verb));
  return out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** What the dialog lists: per kernel, what is kept and everything that is not (with why). */
export function summarize(reports: KernelKeepReport[]): {
  kept: string[];
  notKept: string[];
  bytes: number;
} {
  const kept: string[] = [];
  const notKept: string[] = [];
  let bytes = 0;
  for (const r of reports) {
    if (r.kept.length) {
      kept.push(
        `${r.label}: ${r.kept.map((v) => v.name).join(', ')}${r.bytes ? ` (${formatBytes(r.bytes)})` : ''}`,
      );
      bytes += r.bytes;
    }
    if (r.error) notKept.push(`${r.label}: nothing kept (${r.error.message})`);
    for (const v of r.notKept) notKept.push(`${r.label}: ${v.name} — ${v.reason}`);
  }
  return { kept, notKept, bytes };
}

/** The notice after a restore, or null when there was nothing to restore. */
export function restoreNotice(
  r: KernelKeepReport,
): { level: 'success' | 'warning'; text: string } | null {
  if (r.ok && !r.found) return null;
  if (!r.ok)
    return {
      level: 'warning',
      text: `${r.label}: the variables kept across the resize could not be restored (${r.error?.message ?? 'failed'})`,
    };
  const names = r.kept.map((v) => v.name);
  const lost = r.notKept.map((v) => `${v.name} (${v.reason})`);
  if (!names.length && !lost.length) return null;
  const text =
    `${r.label}: ${names.length ? `restored ${names.join(', ')}` : 'nothing restored'}` +
    (lost.length ? `; not restored: ${lost.join('; ')}` : '');
  return { level: lost.length ? 'warning' : 'success', text };
}
