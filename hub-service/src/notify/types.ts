/**
 * The one way the service tells a user something: budget thresholds, an idle stop that is coming,
 * a failed start, a spot interruption, a `%ngsci notify` message. Producers call `send`; the
 * notifier stores the notice (JupyterLab shows it) and fans it out to the user's channels.
 */
export type NoticeKind = 'budget' | 'idle_stop' | 'failure' | 'spot' | 'message' | 'security';

export interface NoticeAction {
  /** what the extension calls when the user clicks, e.g. keep_running */
  id: 'keep_running' | 'open_usage' | 'open_billing';
  label: string;
}

export interface Notice {
  user: string;
  kind: NoticeKind;
  level: 'info' | 'warning' | 'error';
  title: string;
  body: string;
  instanceId?: string;
  server?: string;
  actions?: NoticeAction[];
  /** a notice with a key already sent is dropped: "each alert is sent once" */
  dedupeKey?: string;
}

export interface Notifier {
  send(notice: Notice): Promise<void>;
}

/** Until a channel-backed notifier is configured: notices go to the log only. */
export class LogNotifier implements Notifier {
  constructor(private readonly log: (notice: Notice) => void) {}

  async send(notice: Notice): Promise<void> {
    this.log(notice);
  }
}
