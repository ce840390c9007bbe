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
    if (!r.readyInstanceId || reloading) return;
    reloading = true;
    void reloadWhenReady(
      serverApiUrl(page, model.user, model.server),
      labUrl(page, model.user, model.server),
    );
  });
}

/** Waits (up to two minutes) until the new server answers through the proxy, then goes there. */
async function reloadWhenReady(probe: string, target: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
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
