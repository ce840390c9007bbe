/**
 * Following a restart of this page's own server (a resize): JupyterLab's connection to the old
 * server is closed at once (its polls against a restarting server pile up OAuth redirects and
 * cookies), an overlay shows the progress the service streams, and once the new instance answers
 * through the proxy the page reloads into it.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Widget } from '@lumino/widgets';
import type { INgsciModel } from './tokens';
import { hubHomeUrl, labUrl, serverApiUrl, type HubPage } from './urls';
import { RestartOverlay } from './widgets/overlay';

export function followRestarts(
  app: JupyterFrontEnd,
  model: INgsciModel,
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
): void {
  let overlay: RestartOverlay | null = null;
  const quiesce = () => {
    try {
      app.serviceManager.dispose();
    } catch {
      // already closed
    }
  };
  let reloading = false;
  model.changed.connect(() => {
    const r = model.resizing;
    if (!r || r.server !== model.server) return;
    if (!overlay) {
      quiesce();
      overlay = new RestartOverlay(hubHomeUrl(page));
      Widget.attach(overlay, document.body);
    }
    overlay.showProgress(r);
    if (reloading || r.failed) return;
    // the new instance runs (its event came), or the events broke off after the old machine
    // stopped: either way the next server to answer at this address is the new one
    if (!r.readyInstanceId && !r.eventsLost) return;
    reloading = true;
    void reloadWhenReady(
      serverApiUrl(page, model.user, model.server),
      labUrl(page, model.user, model.server),
      r.readyInstanceId ? 120 : 900,
    );
  });
}

/**
 * Waits (up to `seconds`) until the server answers through the proxy, then goes there; past
 * that, the hub's own page for the server says where it is.
 */
async function reloadWhenReady(probe: string, target: string, seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    try {
      const res = await fetch(probe, {
        credentials: 'omit',
        redirect: 'manual',
        cache: 'no-store',
      });
      if (res.status === 200 && 'version' in ((await res.json()) as object)) break;
    } catch {
      // the proxy may not have the new route yet
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  window.location.assign(target);
}
