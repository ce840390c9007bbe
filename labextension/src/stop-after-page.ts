/** `%%ngsci stop_after` wired into this page: comms, saving, the stop, and the page that says so. */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import { handleStopAfter, idleOf, listenForStopAfter, startAgainUrl } from './stop-after';
import type { INgsciModel } from './tokens';
import type { HubPage } from './urls';
import { StoppedPage } from './widgets/stopped';

/** Wires stop_after into this page: the comms, the saving, the stop and the page that says so. */
export function followStopAfter(
  app: JupyterFrontEnd,
  model: INgsciModel,
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
  saveAll: () => Promise<void>,
): void {
  const seen = new Set<string>();
  let stopped: StoppedPage | null = null;
  listenForStopAfter(app.shell, (msg, kernel) => {
    void handleStopAfter(
      msg,
      {
        server: model.server,
        waitIdle: () => idleOf(kernel),
        saveAll,
        quiesce: () => {
          try {
            app.serviceManager.dispose();
          } catch {
            // already closed
          }
        },
        stop: (server) => model.api.stop(server),
        instance: (server) => model.api.instance(server),
        showStopped: (text) => {
          if (!stopped) {
            stopped = new StoppedPage(startAgainUrl(page, model.user, model.server));
            Widget.attach(stopped, document.body);
          }
          stopped.showText(text);
        },
        warn: (text) => void Notification.warning(text, { autoClose: false }),
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        now: () => new Date(),
      },
      seen,
    );
  });
}
