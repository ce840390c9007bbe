/**
 * `%%ngsci stop_after` in JupyterLab. When the cell has run, the magic asks the service for a stop
 * after a grace and tells the pages that show its kernel (a comm, target `ngsci`). This page then
 * waits for the cell to end, saves every open document (the cell's output with it), closes its
 * own connections to the server (so JupyterLab raises no "server unavailable" dialog), confirms
 * the stop to the service, and says in place of JupyterLab what happened: "Stopped by %%ngsci
 * stop_after at 15:01 after the cell finished; this run cost $0.09 — Start again".
 * When saving fails the page does not stop the machine: it says so, and the service stops it
 * when the grace is over. Kept apart from the page (stop-after-page.ts) so unit tests drive it
 * with plain functions.
 */
import { formatMicros } from '@ngsci/contract';
import type { Instance } from './api';
import { hubBase, type HubPage } from './urls';

export const COMM_TARGET = 'ngsci';

/** What the magic sends over the comm (magic.py `_stop_after_cell`). */
export interface StopAfterMessage {
  kind: 'stop_after';
  server: string;
  cell: 'finished' | 'failed';
  graceSeconds: number;
  requestedAt: string;
  id: string;
}

/** The comm's data as a stop_after message, or null for anything else. */
export function parseStopAfter(data: unknown): StopAfterMessage | null {
  if (!data || typeof data !== 'object') return null;
  const d = data as Record<string, unknown>;
  if (d.kind !== 'stop_after') return null;
  if (typeof d.server !== 'string' || typeof d.id !== 'string') return null;
  if (d.cell !== 'finished' && d.cell !== 'failed') return null;
  const grace = typeof d.graceSeconds === 'number' ? d.graceSeconds : 0;
  const at = typeof d.requestedAt === 'string' ? d.requestedAt : new Date().toISOString();
  return {
    kind: 'stop_after',
    server: d.server,
    cell: d.cell,
    graceSeconds: grace,
    requestedAt: at,
    id: d.id,
  };
}

/** What the page says once the machine is stopped. */
export interface StoppedText {
  headline: string;
  detail: string;
}

/** "Stopped by %%ngsci stop_after at 15:01 after the cell finished; this run cost $0.09". */
export function stoppedText(
  msg: Pick<StopAfterMessage, 'cell'>,
  inst: Pick<Instance, 'state' | 'stoppedAt' | 'billedMicros'> | null,
  now: Date,
  clock: (d: Date) => string = hhmm,
): StoppedText {
  const at = inst?.stoppedAt ? new Date(inst.stoppedAt) : now;
  const stopped = inst?.state === 'stopped';
  const cost =
    inst && typeof inst.billedMicros === 'number'
      ? `; this run cost ${formatMicros(inst.billedMicros)}`
      : '';
  return {
    headline: stopped
      ? `Stopped by %%ngsci stop_after at ${clock(at)} after the cell ${msg.cell}${cost}`
      : `Stopping: %%ngsci stop_after asked at ${clock(at)}, after the cell ${msg.cell}`,
    detail:
      'Your open documents were saved, with the output of the cell, before the machine stopped.',
  };
}

function hhmm(d: Date): string {
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

export interface StopAfterDeps {
  /** this page's server, as the API names it */
  server: string;
  /** resolves when the kernel that sent the message is idle (the cell has ended), or after a while */
  waitIdle: () => Promise<void>;
  /** saves every open document (`docmanager:save-all`) */
  saveAll: () => Promise<void>;
  /** closes JupyterLab's connections to this server, which is about to go away */
  quiesce: () => void;
  stop: (server: string) => Promise<Instance>;
  instance: (server: string) => Promise<Instance>;
  /** the page in place of JupyterLab; called again as the text gets more exact */
  showStopped: (text: StoppedText) => void;
  /** a notification that stays: saving failed, the machine stops at the grace */
  warn: (text: string) => void;
  sleep: (ms: number) => Promise<void>;
  now: () => Date;
}

/**
 * Carries out one stop_after message. Answers what happened: `stopped` (saved, then stopped),
 * `not_saved` (saving failed: nothing stopped here; the service stops at the grace) or `ignored`
 * (another server's, or a message seen already).
 */
export async function handleStopAfter(
  msg: StopAfterMessage,
  deps: StopAfterDeps,
  seen: Set<string>,
): Promise<'stopped' | 'not_saved' | 'ignored'> {
  if (msg.server !== deps.server || seen.has(msg.id)) return 'ignored';
  seen.add(msg.id);
  await deps.waitIdle();
  try {
    await deps.saveAll();
  } catch (err) {
    deps.warn(
      `%%ngsci stop_after: saving your open documents failed (${err instanceof Error ? err.message : String(err)}). ` +
        `Save them now: this machine stops within ${msg.graceSeconds} s.`,
    );
    return 'not_saved';
  }
  deps.quiesce();
  let inst: Instance | null = null;
  try {
    inst = await deps.stop(msg.server);
  } catch {
    // the grace may have stopped it already; what the service says next is what counts
  }
  deps.showStopped(stoppedText(msg, inst, deps.now()));
  // the final figure comes once the stop is through (the 60 s minimum is billed at the stop)
  for (let i = 0; i < 60; i++) {
    try {
      inst = await deps.instance(msg.server);
      if (inst.state === 'stopped' || inst.state === 'failed') break;
    } catch {
      // the service is reachable while the server stops; a miss is retried
    }
    await deps.sleep(1000);
  }
  deps.showStopped(stoppedText(msg, inst, deps.now()));
  return 'stopped';
}

/** The kernel connection as far as this module needs it (no dependency on @jupyterlab/services). */
interface KernelLike {
  readonly status: string;
  readonly isDisposed: boolean;
  registerCommTarget(
    target: string,
    cb: (comm: unknown, msg: { content: { data: unknown } }) => void,
  ): void;
  statusChanged: {
    connect(fn: (sender: unknown, status: string) => void): boolean;
    disconnect(fn: (sender: unknown, status: string) => void): boolean;
  };
}

/** A main-area widget that has a kernel: a notebook or a console. */
interface SessionOwner {
  sessionContext?: {
    session: { kernel: KernelLike | null } | null;
    kernelChanged: { connect(fn: () => void): boolean };
  };
}

/** Resolves when `kernel` reports idle (the cell has ended), or after `ms`. */
export function idleOf(kernel: KernelLike, ms = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (kernel.status === 'idle' || kernel.isDisposed) return resolve();
    const onStatus = (_: unknown, status: string) => {
      if (status === 'idle' || status === 'dead') done();
    };
    const done = () => {
      clearTimeout(timer);
      kernel.statusChanged.disconnect(onStatus);
      resolve();
    };
    const timer = setTimeout(done, ms);
    kernel.statusChanged.connect(onStatus);
  });
}

/**
 * Listens on the `ngsci` comm target of every kernel this page shows (notebooks and consoles,
 * as they open and as their kernels change) and hands each stop_after message to `onMessage`.
 */
export function listenForStopAfter(
  shell: { widgets(area?: string): IterableIterator<unknown> },
  onMessage: (msg: StopAfterMessage, kernel: KernelLike) => void,
  rescanMs = 2000,
): () => void {
  const kernels = new WeakSet<object>();
  const owners = new WeakSet<object>();
  const register = (kernel: KernelLike | null | undefined) => {
    if (!kernel || kernels.has(kernel) || kernel.isDisposed) return;
    kernels.add(kernel);
    kernel.registerCommTarget(COMM_TARGET, (_comm, m) => {
      const msg = parseStopAfter(m.content.data);
      if (msg) onMessage(msg, kernel);
    });
  };
  const scan = () => {
    for (const w of shell.widgets('main')) {
      const ctx = (w as SessionOwner).sessionContext;
      if (!ctx) continue;
      if (!owners.has(ctx)) {
        owners.add(ctx);
        ctx.kernelChanged.connect(() => register(ctx.session?.kernel));
      }
      register(ctx.session?.kernel);
    }
  };
  scan();
  const timer = setInterval(scan, rescanMs);
  return () => clearInterval(timer);
}

/** The hub's spawn page of a server: where "Start again" goes. */
export function startAgainUrl(
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
  user: string,
  apiServer: string,
): string {
  const server = apiServer === 'default' ? '' : `/${encodeURIComponent(apiServer)}`;
  return `${page.hubHost}${hubBase(page)}hub/spawn/${encodeURIComponent(user)}${server}`;
}
