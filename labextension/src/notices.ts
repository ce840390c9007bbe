/**
 * The service's notices in JupyterLab: each becomes a JupyterLab notification with its actions.
 * A `spot` notice (the cloud may take a spot machine back) first saves every open document, then
 * says so; with the researcher's "Keep my variables" (GET /me/preemption keepState) it also saves
 * each notebook's kernel variables of this page's server (keep-state, as a resize does), which the
 * notebooks restore once the relaunched server's page is back. Kept apart from the plugin so the
 * unit tests drive it through the fake `fetch` seam.
 */
import type { NgsciApi, Notice } from './api';

export type NoticeLevel = Notice['level'];

export interface NoticeDeps {
  /** saves every open document (`docmanager:save-all`, as the Stop button does) */
  saveAll: () => Promise<void>;
  /** shows one notification; `autoClose` false keeps it until dismissed */
  show: (
    level: NoticeLevel | 'success',
    text: string,
    opts: { autoClose: number | false; actions: { label: string; callback: () => void }[] },
  ) => void;
  /** runs one of a notice's actions (Keep running, Open usage, Open billing) */
  run: (action: Notice['actions'][number]['id'], notice: Notice) => void;
  /**
   * at a spot notice, after the documents: saves the kernel variables when the researcher chose
   * to keep them (and the notice is about this page's server); resolves with what to say, or
   * null when nothing was to be kept
   */
  keepState?: (notice: Notice) => Promise<string | null>;
}

/** Shows one notice; for a spot warning, saves the documents first and says whether that worked. */
export async function showNotice(n: Notice, deps: NoticeDeps): Promise<void> {
  const actions = n.actions.map((a) => ({ label: a.label, callback: () => deps.run(a.id, n) }));
  const text = `${n.title}${n.body ? `: ${n.body}` : ''}`;
  if (n.kind === 'spot') {
    let saved: string;
    try {
      await deps.saveAll();
      saved = 'Your open documents were saved.';
    } catch (err) {
      saved = `Saving your open documents failed (${err instanceof Error ? err.message : String(err)}): save them now.`;
    }
    if (deps.keepState) {
      try {
        const kept = await deps.keepState(n);
        if (kept) saved += ` ${kept}`;
      } catch (err) {
        saved += ` Saving your notebooks' variables failed (${err instanceof Error ? err.message : String(err)}).`;
      }
    }
    deps.show('warning', `The cloud may take this spot machine back soon. ${saved} ${text}`, {
      autoClose: false,
      actions,
    });
    return;
  }
  deps.show(n.level, text, { autoClose: n.level === 'info' ? 8000 : false, actions });
}

/**
 * Fetches the notices newer than `after`, shows each, acknowledges them (so another tab or a
 * reload does not repeat them) and returns the id to ask after next time.
 */
export async function pollNotices(api: NgsciApi, after: number, deps: NoticeDeps): Promise<number> {
  const { notifications, lastId } = await api.notifications(after);
  for (const n of notifications) await showNotice(n, deps);
  if (notifications.length) await api.acknowledge(notifications.map((n) => n.id));
  return Math.max(after, lastId);
}
