/**
 * Kernel variables kept across a resize, the page's side: each Python kernel of the server runs
 * ngsci_magic.keep_state (shipped with the %ngsci magic) silently, through a user expression,
 * to check what it could keep, to save it before the stop, and to restore it once the page is
 * back on the new size. DOM-free: the kernels come in as `KeepStateKernel`s (keep-state-page.ts
 * makes them from JupyterLab's sessions).
 */

import {
  keepStateExpression,
  keepStateFailure,
  keepStateRefusal,
  parseKeepStateAnswer,
  type KeepStateVerb,
  type KernelKeepReport,
} from '@ngsci/contract/client';

export type {
  KeepStateVerb,
  KeptVariable,
  KernelKeepReport,
  UnkeptVariable,
} from '@ngsci/contract/client';

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

/** How long each step may take in one kernel: a check pickles to a counter, a save writes. */
export const TIMEOUTS: Record<KeepStateVerb, number> = {
  check: 120_000,
  save: 600_000,
  restore: 600_000,
  discard: 30_000,
};

/** Runs one step in one kernel; every failure becomes the report's error. */
export async function runIn(k: KeepStateKernel, verb: KeepStateVerb): Promise<KernelKeepReport> {
  const error = keepStateRefusal(k, verb);
  if (error) return keepStateFailure(k, error);
  try {
    return parseKeepStateAnswer(
      k,
      await k.evaluate(keepStateExpression(verb, k.path), TIMEOUTS[verb]),
    );
  } catch (err) {
    return keepStateFailure(k, {
      code: 'no_answer',
      message: (err as Error).message || String(err),
    });
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
