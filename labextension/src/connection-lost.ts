/**
 * What the page does when JupyterLab loses its server. JupyterHub's own handler puts up a modal
 * "Server unavailable or unreachable … restart it?" dialog. When the server stopped through ngsci
 * (the sidebar's Stop, the CLI, an admin, a budget's hard stop, the idle culler) or is being
 * resized, that question is the wrong one: the sidebar already says what happened and offers a
 * start at a chosen size, and a resize reloads the page by itself. So the page asks the service
 * first, and only a server lost for another reason (a network break, a crash) gets the question.
 */
import type { INgsciModel } from './tokens';

export interface ConnectionLostDeps {
  model: Pick<
    INgsciModel,
    'server' | 'resizing' | 'pageServerEnded' | 'errors' | 'refreshInstances' | 'changed'
  >;
  /**
   * asks whether to restart the server; true for yes. `withdrawn` aborts when the page learns
   * while asking that ngsci stopped the server (its stop event came late): the question goes
   */
  ask(withdrawn: AbortSignal): Promise<boolean>;
  restart(): Promise<void>;
  /** a note that does not block the page */
  note(message: string): void;
  /** JupyterLab's "connected" flag, cleared while the question is up */
  setConnected?(connected: boolean): void;
  /** how long the service's answer is awaited before deciding (ms) */
  waitMs?: number;
}

export const STOPPED_NOTE =
  'Your server has stopped. Its figures stay in the ngsci sidebar, where you can start it again.';

/** The handler JupyterLab calls on every failed connection while the server is gone. */
export function connectionLostHandler(deps: ConnectionLostDeps): () => Promise<void> {
  let busy = false;
  let noted = false;
  return async () => {
    if (busy) return;
    busy = true;
    try {
      const why = await lostThroughNgsci(deps);
      if (why === 'resizing') return;
      if (why === 'stopped') {
        if (!noted) deps.note(STOPPED_NOTE);
        noted = true;
        return;
      }
      const withdraw = new AbortController();
      const learnt = () => {
        if (known(deps.model)) withdraw.abort();
      };
      deps.model.changed.connect(learnt);
      deps.setConnected?.(false);
      let yes: boolean;
      try {
        yes = await deps.ask(withdraw.signal);
      } finally {
        deps.model.changed.disconnect(learnt);
        deps.setConnected?.(true);
      }
      if (withdraw.signal.aborted) {
        if (known(deps.model) === 'stopped' && !noted) deps.note(STOPPED_NOTE);
        noted ||= known(deps.model) === 'stopped';
        return;
      }
      if (yes) await deps.restart();
    } finally {
      busy = false;
    }
  };
}

/** What the page knows already: its server is being resized, or has stopped. */
function known(m: ConnectionLostDeps['model']): 'resizing' | 'stopped' | null {
  if (m.resizing && m.resizing.server === m.server) return 'resizing';
  return m.pageServerEnded ? 'stopped' : null;
}

/** Why the server is gone, as far as ngsci knows; null when it does not. */
async function lostThroughNgsci(deps: ConnectionLostDeps): Promise<'resizing' | 'stopped' | null> {
  const m = deps.model;
  const seen = known(m);
  if (seen) return seen;
  // JupyterLab may notice before the server's stop event reaches the page: ask the service
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    m.refreshInstances().catch(() => undefined),
    new Promise((res) => (timer = setTimeout(res, deps.waitMs ?? 5000))),
  ]);
  clearTimeout(timer);
  const after = known(m);
  if (after) return after;
  // the hub revokes the page's token when it stops the server: refused means stopped
  const code = m.errors.instance?.code;
  return code === 'unauthenticated' || code === 'page_server_stopped' ? 'stopped' : null;
}
