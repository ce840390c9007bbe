/**
 * The service's notices in JupyterLab: each becomes a JupyterLab notification with its actions.
 * A `spot` notice (the cloud may take a spot machine back) first saves every open document, then
 * says so. Kept apart from the plugin so the unit tests drive it through the fake `fetch` seam.
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
