/**
 * The Notifier producers call (budget alerts, idle stops, failures, spot notices, `%ngsci
 * notify`): it stores each notice once (JupyterLab lists it from the store) and then sends it to
 * the user's other channels in the background. A channel that fails is recorded and logged
 * without secrets; it never fails the producer's request.
 */
import type { Logger } from '../logger.js';
import { ApiError } from '../errors.js';
import { rowContext, type SecretBox } from '../secrets.js';
import { EmailChannel, postWebhook, redact, webhookBody } from './channels.js';
import { NotificationStore, type StoredNotice } from './store.js';
import type { Notice, Notifier } from './types.js';
import { judgeWebhook, WebhookAllow, type Resolver } from './webhook-guard.js';

export interface ChannelNotifierOptions {
  store: NotificationStore;
  box: SecretBox;
  logger: Logger;
  smtpUrl?: string;
  smtpFrom: string;
  timeoutSeconds: number;
  /** NGSCI_WEBHOOK_ALLOW: internal hosts and networks webhooks may reach; none when absent */
  webhookAllow?: WebhookAllow;
  /** how webhook hosts are resolved (tests inject answers); the system resolver otherwise */
  resolve?: Resolver;
}

export class ChannelNotifier implements Notifier {
  private readonly email: EmailChannel | null;
  private readonly pending = new Set<Promise<void>>();
  private readonly webhookAllow: WebhookAllow;

  constructor(private readonly o: ChannelNotifierOptions) {
    this.email = o.smtpUrl ? new EmailChannel(o.smtpUrl, o.smtpFrom, o.timeoutSeconds) : null;
    this.webhookAllow = o.webhookAllow ?? WebhookAllow.parse('');
  }

  get store(): NotificationStore {
    return this.o.store;
  }

  /**
   * A user's new webhook, judged as every send will judge it again (DNS lookup included; 400
   * invalid_webhook_url naming the reason) and sealed to the user's preferences row, ready for
   * NotificationStore.savePreferences.
   */
  async webhookFor(user: string, url: string): Promise<{ sealed: string; host: string }> {
    const verdict = await judgeWebhook(url, this.webhookAllow, this.o.resolve);
    if (!verdict.ok) throw new ApiError(400, 'invalid_webhook_url', verdict.problem);
    return { sealed: this.o.box.seal(url, webhookRow(user)), host: new URL(url).host };
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

  /**
   * Mails the link that confirms a user's address, in the background like notices (a slow mail
   * server never holds up the request); a failure is logged without the link.
   */
  sendConfirmation(user: string, to: string, link: string): void {
    const email = this.email;
    if (!email) return;
    const job = email.sendConfirmation(to, user, link).then((error) => {
      if (error) this.o.logger.warn({ user, error }, 'confirmation mail failed');
      else this.o.logger.info({ user }, 'confirmation mail sent');
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
      if (!prefs.emailConfirmed) {
        // kept in JupyterLab only; the note says why no mail went
        work.push(
          this.record(
            n,
            'email',
            'not mailed: the address is not confirmed yet (open the link mailed to it, or set it again for a new link)',
          ),
        );
      } else if (!this.email) {
        work.push(this.record(n, 'email', 'email is not configured on this hub (NGSCI_SMTP_URL)'));
      } else {
        const to = prefs.email;
        work.push(this.email.send(to, n).then((error) => this.record(n, 'email', error)));
      }
    }
    if (channels.includes('webhook') && prefs.webhookSealed) {
      let url: string | null = null;
      try {
        url = this.o.box.open(prefs.webhookSealed, webhookRow(user));
      } catch {
        work.push(
          this.record(
            n,
            'webhook',
            'the stored webhook URL cannot be decrypted (was NGSCI_SECRET_KEY changed?)',
          ),
        );
      }
      if (url) work.push(this.postWebhook(user, n, url, prefs.webhookHost));
    }
    await Promise.all(work);
  }

  /** Judges the URL again (DNS answers change) and posts to the very address judged. */
  private async postWebhook(
    user: string,
    n: StoredNotice,
    url: string,
    host: string | null,
  ): Promise<void> {
    const verdict = await judgeWebhook(url, this.webhookAllow, this.o.resolve);
    const error = verdict.ok
      ? await postWebhook(verdict.target, webhookBody(user, n), this.o.timeoutSeconds)
      : verdict.problem;
    await this.record(n, 'webhook', error ? `${redact(error, [url])} (host ${host})` : null);
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

/** Where a user's sealed webhook URL is kept: their notification preferences row. */
const webhookRow = (user: string) => rowContext('notification_preferences', user);
