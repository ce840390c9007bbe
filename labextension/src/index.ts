/**
 * ngsci in JupyterLab. This file only wires plugins: the model (the state of this page's user
 * and server), the sidebar, the status bar item, the commands, notifications and the admin panel.
 */
import {
  ConnectionLost,
  IConnectionLost,
  ILayoutRestorer,
  JupyterLab,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin,
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  IThemeManager,
  MainAreaWidget,
  Notification,
} from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { AccordionPanel, Widget } from '@lumino/widgets';
import { NgsciApi } from './api';
import { NgsciModel } from './model';
import { pollNotices, type NoticeDeps } from './notices';
import { CommandIDs, INgsciModel } from './tokens';
import { apiServerName, hubHomeUrl, serviceUrl } from './urls';
import { followRestarts } from './restart';
import { followStopAfter } from './stop-after-page';
import { budgetAlertFallback } from './budget-alerts';
import { AdminPanel } from './widgets/admin';
import { BillingSection } from './widgets/billing';
import { InstanceSection } from './widgets/instance';
import { NgsciSidebar } from './widgets/sidebar';
import { NgsciStatus } from './widgets/status';
import { UsageSection } from './widgets/usage';
import { ResizeSection } from './widgets/resize';
import { IdleSection } from './widgets/idle';
import { followBudgetStop } from './countdown';
import { followKeepStateRestores, serverKernels } from './keep-state-page';
import { connectionLostHandler } from './connection-lost';
import { keepStateAtSpot } from './spot-keep-state';

const PKG = 'ngsci-labextension';

/** Saves every open document, as the Stop button and a spot warning do. */
function saveAllOf(app: JupyterFrontEnd): () => Promise<void> {
  return async () => {
    if (app.commands.hasCommand('docmanager:save-all'))
      await app.commands.execute('docmanager:save-all');
  };
}

/** Opens one section of the sidebar's accordion (0 Instance, 1 Resize, 2 Usage, 3 Billing). */
function expand(sidebar: NgsciSidebar, index: number): void {
  const accordion = sidebar.content;
  if (accordion instanceof AccordionPanel && accordion.widgets[index]?.isHidden)
    accordion.expand(index);
}

/** Reads a plugin's settings, falling back to the schema defaults when there is no registry. */
async function settingsOf<T extends object>(
  registry: ISettingRegistry | null,
  plugin: string,
  defaults: T,
): Promise<() => T> {
  if (!registry) return () => defaults;
  try {
    const s = await registry.load(plugin);
    return () => ({ ...defaults, ...(s.composite as Partial<T>) });
  } catch {
    return () => defaults;
  }
}

const modelPlugin: JupyterFrontEndPlugin<INgsciModel> = {
  id: `${PKG}:model`,
  description: 'The ngsci state of this page: user, instances, usage, budget, statements.',
  autoStart: true,
  provides: INgsciModel,
  activate: (): INgsciModel => {
    const page = {
      hubPrefix: PageConfig.getOption('hubPrefix') || '/hub/',
      hubHost: PageConfig.getOption('hubHost'),
      hubServerName: PageConfig.getOption('hubServerName'),
      hubUser: PageConfig.getOption('hubUser'),
    };
    const api = new NgsciApi({
      baseUrl: serviceUrl(page),
      token: PageConfig.getToken(),
      user: page.hubUser,
    });
    const model = new NgsciModel({ api, server: apiServerName(page), user: page.hubUser });
    // this page's server's starts, stops and resizes refresh every money figure at once
    void model.refresh(['instance']).then(() => model.watch());
    return model;
  },
};

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PKG}:sidebar`,
  description: 'The ngsci sidebar: Instance, Usage and Billing.',
  autoStart: true,
  requires: [INgsciModel],
  optional: [ILayoutRestorer, ISettingRegistry, IThemeManager],
  activate: async (
    app: JupyterFrontEnd,
    model: INgsciModel,
    restorer: ILayoutRestorer | null,
    registry: ISettingRegistry | null,
    themes: IThemeManager | null,
  ) => {
    const settings = await settingsOf(registry, `${PKG}:sidebar`, {
      refreshSeconds: 30,
      rank: 600,
    });
    const refresh = () => settings().refreshSeconds;
    const page = {
      hubPrefix: PageConfig.getOption('hubPrefix') || '/hub/',
      hubHost: PageConfig.getOption('hubHost'),
    };
    const instance = new InstanceSection(
      model,
      {
        saveAll: saveAllOf(app),
        onResized: () => undefined,
        onStoppedSelf: () => {
          app.serviceManager.dispose();
          window.location.assign(hubHomeUrl(page));
        },
      },
      refresh,
    );
    const resize = new ResizeSection(
      model,
      { saveAll: saveAllOf(app), kernels: () => serverKernels(app.serviceManager) },
      refresh,
    );
    const usage = new UsageSection(model, refresh);
    const billing = new BillingSection(model, refresh);
    const idle = new IdleSection(model, refresh);
    const sidebar = new NgsciSidebar([instance, resize, usage, billing, idle]);
    // the sizes get the most room, so they are in sight at a glance (issue 13)
    // the idle timeout (widgets/idle.ts) is set now and then: its title stays, its body folded
    // (folded first: folding recomputes the sizes, which are not laid out yet); Resize gets 3.5
    // so its title bar costs the sizes nothing at 1400×900
    if (sidebar.content instanceof AccordionPanel) sidebar.content.collapse(4);
    if (sidebar.content instanceof AccordionPanel)
      sidebar.content.setRelativeSizes([2, 3.5, 2, 2, 1]);
    app.shell.add(sidebar, 'left', { rank: settings().rank });
    restorer?.add(sidebar, 'ngsci-sidebar');
    themes?.themeChanged.connect(() => usage.restyle());

    // admins get a way into the admin panel from the sidebar's header
    let adminButton: Widget | null = null;
    const offerAdmin = () => {
      if (adminButton || !model.me?.admin) return;
      const node = document.createElement('button');
      node.type = 'button';
      node.className = 'jp-mod-styled jp-ngsci-admin-open';
      node.textContent = 'Admin panel';
      node.addEventListener('click', () => void app.commands.execute(CommandIDs.openAdmin));
      adminButton = new Widget({ node });
      sidebar.header.addWidget(adminButton);
    };
    model.changed.connect((_, what) => what === 'me' && offerAdmin());
    offerAdmin();

    followRestarts(app, model, page);
    // kernel variables kept across a resize come back in the notebooks' new kernels
    followKeepStateRestores(app);
    followStopAfter(app, model, page, saveAllOf(app));
    // a spent hard-stop budget: documents saved before the stop (countdown.ts)
    followBudgetStop(model, {
      saveAll: saveAllOf(app),
      tell: (level, text) =>
        (level === 'error' ? Notification.error : Notification.warning)(text, { autoClose: false }),
    });

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'ngsci: Open the sidebar',
      execute: () => app.shell.activateById(sidebar.id),
    });
    app.commands.addCommand(CommandIDs.openUsage, {
      label: 'ngsci: Open usage',
      execute: () => {
        app.shell.activateById(sidebar.id);
        expand(sidebar, 2);
        usage.node.scrollIntoView({ block: 'start' });
      },
    });
    app.commands.addCommand(CommandIDs.openBilling, {
      label: 'ngsci: Open billing',
      execute: () => {
        app.shell.activateById(sidebar.id);
        expand(sidebar, 3);
        billing.node.scrollIntoView({ block: 'start' });
      },
    });
    app.commands.addCommand(CommandIDs.resize, {
      label: 'ngsci: Resize this machine…',
      isEnabled: () => model.current?.state === 'running',
      execute: async () => {
        app.shell.activateById(sidebar.id);
        expand(sidebar, 1);
        await model.refresh(['instance', 'billing']);
        (resize.node.querySelector('.jp-ngsci-resize-btn') as HTMLElement | null)?.focus();
      },
    });
    app.commands.addCommand(CommandIDs.stop, {
      label: 'ngsci: Stop this machine…',
      isEnabled: () => model.current?.state === 'running',
      execute: () => instance.confirmStop(model.server),
    });
  },
};

const palettePlugin: JupyterFrontEndPlugin<void> = {
  id: `${PKG}:palette`,
  description: 'ngsci commands in the command palette.',
  autoStart: true,
  requires: [INgsciModel, ICommandPalette],
  activate: (app: JupyterFrontEnd, _model: INgsciModel, palette: ICommandPalette) => {
    const category = 'ngsci';
    // the sidebar plugin adds the commands; the palette lists them once they exist
    void app.restored.then(() => {
      for (const command of [
        CommandIDs.openSidebar,
        CommandIDs.resize,
        CommandIDs.stop,
        CommandIDs.openUsage,
        CommandIDs.openBilling,
        CommandIDs.openAdmin,
      ]) {
        if (app.commands.hasCommand(command)) palette.addItem({ command, category });
      }
    });
  },
};

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PKG}:status-bar`,
  description: 'The status bar item: $ spent today · size · uptime.',
  autoStart: true,
  requires: [INgsciModel],
  optional: [IStatusBar, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    model: INgsciModel,
    statusBar: IStatusBar | null,
    registry: ISettingRegistry | null,
  ) => {
    if (!statusBar) return;
    const settings = await settingsOf(registry, `${PKG}:status-bar`, {
      show: true,
      refreshSeconds: 300,
    });
    if (!settings().show) return;
    const item = new NgsciStatus(
      model,
      () => void app.commands.execute(CommandIDs.openSidebar),
      settings().refreshSeconds,
    );
    statusBar.registerStatusItem(`${PKG}:status-bar`, { item, align: 'left', rank: 50 });
    void model.refresh(['usage']);
  },
};

const notificationsPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PKG}:notifications`,
  description:
    'Notifications: budget thresholds, a coming idle stop (Keep running), a failed start, a spot warning (saves the open documents).',
  autoStart: true,
  requires: [INgsciModel],
  optional: [ISettingRegistry],
  activate: async (app: JupyterFrontEnd, model: INgsciModel, registry: ISettingRegistry | null) => {
    const settings = await settingsOf(registry, `${PKG}:notifications`, {
      enabled: true,
      pollSeconds: 60,
    });
    if (!settings().enabled) return;
    const saveAll = saveAllOf(app);

    app.commands.addCommand(CommandIDs.keepRunning, {
      label: 'ngsci: Keep this machine running',
      execute: async (args) => {
        const server = (args.server as string | undefined) ?? model.server;
        try {
          await model.api.keepRunning(server);
          Notification.success(`${server} keeps running.`, { autoClose: 4000 });
        } catch (err) {
          Notification.error(
            `Could not keep ${server} running: ${(err as { userMessage?: string }).userMessage ?? String(err)}`,
          );
        }
      },
    });

    // budget thresholds come as the service's notices; without the notices endpoint, from the
    // budget figures (budget-alerts.ts)
    let serviceNotices: boolean | null = null;
    budgetAlertFallback(model, () => serviceNotices === false, {
      show: (level, text, openBilling) =>
        (level === 'error' ? Notification.error : Notification.warning)(text, {
          autoClose: false,
          actions: [{ label: 'Open billing', callback: openBilling }],
        }),
      openBilling: () => void app.commands.execute(CommandIDs.openBilling),
    });

    // a failed start, once per instance
    const failed = new Set<string>();
    model.instanceEvent.connect((_, { server, event }) => {
      if (event.state !== 'failed' || failed.has(event.instanceId)) return;
      failed.add(event.instanceId);
      Notification.error(`${server} failed to start: ${event.message}`, { autoClose: false });
    });

    // the service's own notices (idle stop coming, budget alerts, spot warnings...), while the
    // page is visible; each is acknowledged once shown, so another tab or a reload does not repeat it
    let lastId = 0;
    let timer = 0;
    const deps: NoticeDeps = {
      saveAll,
      // "Keep my variables" at a spot notice: each notebook's kernel saves its variables
      keepState: (n) =>
        keepStateAtSpot(model.api, n, model.server, () => serverKernels(app.serviceManager)),
      show: (level, text, opts) =>
        (level === 'error'
          ? Notification.error
          : level === 'warning'
            ? Notification.warning
            : level === 'success'
              ? Notification.success
              : Notification.info)(text, opts),
      run: (action, n) => {
        if (action === 'keep_running')
          void app.commands.execute(CommandIDs.keepRunning, { server: n.server ?? model.server });
        else if (action === 'open_usage') void app.commands.execute(CommandIDs.openUsage);
        else void app.commands.execute(CommandIDs.openBilling);
      },
    };
    // one poll at a time: two at once would both handle the notices after the same lastId
    let polling: Promise<void> = Promise.resolve();
    const pollOnce = async (always: boolean) => {
      if (serviceNotices === false) return;
      if (!always && document.visibilityState !== 'visible') return;
      try {
        lastId = await pollNotices(model.api, lastId, deps);
        serviceNotices = true;
      } catch (err) {
        if ((err as { code?: string }).code === 'endpoint_missing') {
          serviceNotices = false;
          window.clearInterval(timer);
        }
      }
    };
    const poll = (always = false) => (polling = polling.then(() => pollOnce(always)));
    void app.restored.then(() => poll());
    timer = window.setInterval(() => void poll(), Math.max(15, settings().pollSeconds) * 1000);
    // a spot notice cannot wait for the next poll (AWS gives two minutes): the page's own event
    // stream says so at once, and the documents are saved even in a background tab
    model.spotNotice.connect(() => void poll(true));
  },
};

const adminPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PKG}:admin`,
  description: 'The admin panel, for holders of custom:ngsci:admin.',
  autoStart: true,
  requires: [INgsciModel],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, model: INgsciModel, palette: ICommandPalette | null) => {
    // never awaits the service: JupyterLab renders only after every plugin has activated
    let widget: MainAreaWidget<AdminPanel> | null = null;
    const offer = () => {
      if (!model.me?.admin || app.commands.hasCommand(CommandIDs.openAdmin)) return;
      app.commands.addCommand(CommandIDs.openAdmin, {
        label: 'ngsci: Open the admin panel',
        execute: () => {
          if (!widget || widget.isDisposed) {
            widget = new MainAreaWidget({ content: new AdminPanel(model.api) });
            widget.id = 'ngsci-admin-panel';
            widget.title.label = 'ngsci admin';
            widget.title.icon = widget.content.title.icon;
            widget.title.closable = true;
          }
          if (!widget.isAttached) app.shell.add(widget, 'main');
          app.shell.activateById(widget.id);
        },
      });
      palette?.addItem({ command: CommandIDs.openAdmin, category: 'ngsci' });
    };
    model.changed.connect((_, what) => what === 'me' && offer());
    offer();
  },
};

/**
 * Replaces JupyterHub's "Server unavailable or unreachable" dialog (package.json disables
 * `@jupyterlab/hub-extension:connectionlost`): a server that ngsci stopped or is resizing gets a
 * note, not a modal question (connection-lost.ts); any other loss gets the hub's question.
 */
const connectionLostPlugin: JupyterFrontEndPlugin<IConnectionLost> = {
  id: `${PKG}:connection-lost`,
  description: 'What the page says when its server goes away: a note when ngsci stopped it.',
  autoStart: true,
  requires: [INgsciModel],
  optional: [JupyterLab.IInfo],
  provides: IConnectionLost,
  activate: (
    app: JupyterFrontEnd,
    model: INgsciModel,
    info: JupyterLab.IInfo | null,
  ): IConnectionLost => {
    // outside JupyterHub, JupyterLab's own handler
    if (!PageConfig.getOption('hubPrefix')) return ConnectionLost;
    const handler = connectionLostHandler({
      model,
      ask: async (withdrawn) => {
        const dialog = new Dialog({
          title: 'Server unavailable or unreachable',
          body: `Your server at ${PageConfig.getBaseUrl()} is not answering.\nWould you like to restart it?`,
          buttons: [
            Dialog.okButton({ label: 'Restart' }),
            Dialog.cancelButton({ label: 'Dismiss' }),
          ],
        });
        const withdraw = () => dialog.reject();
        withdrawn.addEventListener('abort', withdraw, { once: true });
        try {
          return (await dialog.launch()).button.accept;
        } finally {
          withdrawn.removeEventListener('abort', withdraw);
        }
      },
      restart: async () => {
        if (app.commands.hasCommand('hub:restart')) await app.commands.execute('hub:restart');
      },
      note: (message) => Notification.info(message, { autoClose: false }),
      setConnected: (connected) => {
        if (info) info.isConnected = connected;
      },
    });
    return () => handler();
  },
};

export default [
  modelPlugin,
  connectionLostPlugin,
  sidebarPlugin,
  palettePlugin,
  statusPlugin,
  notificationsPlugin,
  adminPlugin,
];
