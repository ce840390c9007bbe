/**
 * The Notifier producers call (budget alerts, idle stops, failures, spot notices, `%ngsci
 * notify`): it stores each notice once (JupyterLab lists it from the store) and then sends it to
 * the user's other channels in the background. A channel that fails is recorded and logged
 * without secrets; it never fails the producer's request.
 */
import type { Logger } from '../logger.js';
import type { SecretBox } from '../secrets.js';
import { EmailChannel, postWebhook, redact, webhookBody } from './channels.js';
import { NotificationStore, type StoredNotice } from './store.js';
import type { Notice, Notifier } from './types.js';

export interface ChannelNotifierOptions {
  store: NotificationStore;
  box: SecretBox;
  logger: Logger;
  smtpUrl?: string;
  smtpFrom: string;
  timeoutSeconds: number;
  fetch?: typeof fetch;
}

export class ChannelNotifier implements Notifier {
  private readonly email: EmailChannel | null;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: ChannelNotifierOptions) {
    this.email = o.smtpUrl ? new EmailChannel(o.smtpUrl, o.smtpFrom, o.timeoutSeconds) : null;
  }

  get store(): NotificationStore {
    return this.o.store;
  }

  /** Seals a webhook URL for storage: it may carry a token. */
  seal(url: string): string {
    return this.o.box.seal(url);
  }

  /** Whether email can be sent at all (an SMTP server is configured). */
  get emailEnabled(): boolean {
    return this.email !== null;
  }

  async send(notice: Notice): Promise<void> {
    let stored: StoredNotice | null;
    try {
      stored = await this.o.store.insert(notice);
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message, user: notice.user, kind: notice.kind },
        'notice could not be stored',
      );
      return;
    }
    if (!stored) return; // already sent once under this dedupe key
    this.o.logger.info({ notice: stored.id, user: notice.user, kind: notice.kind }, 'notice');
    const job = this.fanOut(notice.user, stored).catch((err: unknown) => {
      this.o.logger.error(
        { notice: stored.id, err: redact(String((err as Error)?.message ?? err), []) },
        'notice fan-out failed',
      );
    });
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
  }

  /** Resolves once every delivery started so far has finished (tests, and shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  close(): void {
    this.email?.close();
  }

  private async fanOut(user: string, n: StoredNotice): Promise<void> {
    const prefs = await this.o.store.preferences(user);
    const channels = prefs.channels[n.kind as keyof typeof prefs.channels] ?? [];
    const work: Array<Promise<void>> = [];
    if (channels.includes('email') && prefs.email) {
      if (!this.email) {
        work.push(this.record(n, 'email', 'email is not configured on this hub (NGSCI_SMTP_URL)'));
      } else {
        const to = prefs.email;
        work.push(this.email.send(to, n).then((error) => this.record(n, 'email', error)));
      }
    }
    if (channels.includes('webhook') && prefs.webhookSealed) {
      let url: string | null = null;
      try {
        url = this.o.box.open(prefs.webhookSealed);
      } catch {
        work.push(
          this.record(
            n,
            'webhook',
            'the stored webhook URL cannot be decrypted (was NGSCI_SECRET_KEY changed?)',
          ),
        );
      }
      if (url) {
        const secret = url;
        work.push(
          postWebhook(url, webhookBody(user, n), this.o.timeoutSeconds, this.o.fetch).then(
            (error) =>
              this.record(
                n,
                'webhook',
                error ? `${redact(error, [secret])} (host ${prefs.webhookHost})` : null,
              ),
          ),
        );
      }
    }
    await Promise.all(work);
  }

  private async record(
    n: StoredNotice,
    channel: 'email' | 'webhook',
    error: string | null,
  ): Promise<void> {
    if (error)
      this.o.logger.warn(
        { notice: n.id, user: n.userName, channel, error },
        'notice delivery failed',
      );
    await this.o.store.recordDelivery(n.id, channel, error);
  }
}
