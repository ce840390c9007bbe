/**
 * Kernel variables kept across a resize or a spot notice: the one reading of what a Python kernel
 * answers when `ngsci_magic.keep_state` runs in it (shipped with the %ngsci magic), shared by the
 * page (labextension, before a resize and after it) and the agent (cli, at a spot notice). Zod-free
 * like the rest of this entry point: the page's bundle carries no schema library.
 */

export type KeepStateVerb = 'check' | 'save' | 'restore' | 'discard';

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

/** A kernel, as far as whether its variables can be kept goes. */
export interface KeepStateTarget {
  kind: 'notebook' | 'console' | 'other';
  python: boolean;
  /** running a cell just now: a request would wait for it */
  busy: boolean;
  /** its kernel has died */
  dead?: boolean;
}

/** The longest texts a kernel's answer may carry: longer ones are shortened, never refused. */
export const KEEP_STATE_TEXT_MAX = { name: 255, type: 255, reason: 2000, code: 64, message: 2000 };
/** The most variables one kernel's answer is read for. */
const MAX_VARIABLES = 100_000;

/** The user expression that runs `verb` for a notebook path (a JSON string is a Python literal). */
export function keepStateExpression(verb: KeepStateVerb, path: string): string {
  return `__import__('ngsci_magic.keep_state', fromlist=['keep_state']).${verb}_json(${JSON.stringify(path)})`;
}

/** Why a kernel is left out of `verb`, or null when it takes part. */
export function keepStateRefusal(
  k: KeepStateTarget,
  verb: KeepStateVerb,
): { code: string; message: string } | null {
  if (k.kind !== 'notebook')
    return {
      code: 'not_a_notebook',
      message: `a ${k.kind === 'console' ? 'console' : 'kernel without a notebook'}: only notebooks' variables are kept`,
    };
  if (!k.python)
    return { code: 'not_python', message: 'not a Python kernel: its variables are not kept' };
  if (k.dead) return { code: 'no_kernel', message: 'its kernel has died' };
  if (k.busy && (verb === 'check' || verb === 'save'))
    return {
      code: 'busy',
      message: 'running a cell: its variables can be kept once it is idle (wait, or interrupt it)',
    };
  return null;
}

/** A report of a kernel that took no part or gave no answer. */
export function keepStateFailure(
  k: { label: string; path: string },
  error: { code: string; message: string },
): KernelKeepReport {
  return { label: k.label, path: k.path, ok: false, kept: [], notKept: [], bytes: 0, error };
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): string => (typeof v === 'string' ? v.slice(0, max) : '');
const T = KEEP_STATE_TEXT_MAX;

function variables(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v)
    ? v
        .slice(0, MAX_VARIABLES)
        .filter(isObj)
        .filter((x) => typeof x.name === 'string')
    : [];
}

/** Reads a kernel's answer (keep_state.py's JSON); anything else is a failure, never a throw. */
export function parseKeepStateAnswer(
  k: { label: string; path: string },
  text: string,
): KernelKeepReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return keepStateFailure(k, {
      code: 'bad_answer',
      message: `the kernel answered: ${text.slice(0, 200)}`,
    });
  }
  if (!isObj(data))
    return keepStateFailure(k, {
      code: 'bad_answer',
      message: 'the kernel answered nothing usable',
    });
  if (data.ok !== true)
    return keepStateFailure(k, {
      code: str(data.code, T.code) || 'failed',
      message: str(data.message, T.message) || 'failed',
    });
  const kept = variables(data.kept ?? data.restored).map((v) => ({
    name: str(v.name, T.name),
    type: str(v.type, T.type),
    ...(typeof v.bytes === 'number' ? { bytes: v.bytes } : {}),
  }));
  const notKept = variables(data.notKept ?? data.notRestored).map((v) => ({
    name: str(v.name, T.name),
    type: str(v.type, T.type),
    reason: str(v.reason, T.reason) || 'not kept',
  }));
  const error = isObj(data.error)
    ? {
        code: str(data.error.code, T.code) || 'failed',
        message: str(data.error.message, T.message),
      }
    : null;
  return {
    label: k.label,
    path: k.path,
    ok: error === null,
    kept,
    notKept,
    bytes: typeof data.bytes === 'number' ? data.bytes : 0,
    error,
    ...(typeof data.found === 'boolean' ? { found: data.found } : {}),
  };
}
