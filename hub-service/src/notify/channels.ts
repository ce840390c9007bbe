/**
 * The channels a notice can leave the service by: email over SMTP (nodemailer) and a webhook
 * (a JSON POST with Slack's `text` field). Both answer an error message without secrets, or null.
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type { WebhookBody } from '@ngsci/contract';
import type { StoredNotice } from './store.js';
import type { WebhookTarget } from './webhook-guard.js';

/** Takes every occurrence of the given secrets (and any URL's credentials) out of a message. */
export function redact(message: string, secrets: Array<string | null | undefined>): string {
  let out = message;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out.replace(/(\w+:\/\/)[^/\s@]+@/g, '$1[redacted]@').slice(0, 500);
}

export function webhookBody(user: string, n: StoredNotice): WebhookBody {
  const icon =
    n.level === 'error'
      ? ':red_circle:'
      : n.level === 'warning'
        ? ':warning:'
        : ':information_source:';
  return {
    text: `${icon} *${n.title}*\n${n.body}`,
    user,
    kind: n.kind as WebhookBody['kind'],
    level: n.level as WebhookBody['level'],
    title: n.title,
    body: n.body,
    server: n.serverName,
    instanceId: n.instanceId,
    id: n.id,
    createdAt: n.createdAt.toISOString(),
  };
}

/**
 * Posts a notice to a judged webhook target. The connection goes to `target.address` (the one
 * judged): the lookup the socket asks for answers that address, so no second DNS answer is ever
 * used, while the Host header and TLS server name stay the URL's host. Redirects are not followed.
 */
export function postWebhook(
  target: WebhookTarget,
  body: WebhookBody,
  timeoutSeconds: number,
): Promise<string | null> {
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  const payload = JSON.stringify(body);
  const options: RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      'user-agent': 'ngsci-notify',
    },
    lookup: pinned,
    signal: AbortSignal.timeout(timeoutSeconds * 1000),
  };
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(target.url, options, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300 ? null : `the webhook answered HTTP ${status}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.name === 'AbortError'
          ? `the webhook did not answer within ${timeoutSeconds} s`
          : `the webhook could not be reached${err.code ? ` (${err.code})` : ''}`,
      ),
    );
    req.end(payload);
  });
}

export class EmailChannel {
  private readonly transport: Transporter;

  constructor(
    private readonly smtpUrl: string,
    private readonly from: string,
    timeoutSeconds: number,
  ) {
    const url = new URL(smtpUrl);
    this.transport = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
      secure: url.protocol === 'smtps:',
      auth: url.username
        ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
        : undefined,
      // a local relay (and the tests' server) may offer STARTTLS with a self-signed certificate
      tls: { rejectUnauthorized: url.searchParams.get('tls_verify') !== 'false' },
      ignoreTLS: url.searchParams.get('starttls') === 'false',
      connectionTimeout: timeoutSeconds * 1000,
      greetingTimeout: timeoutSeconds * 1000,
      socketTimeout: timeoutSeconds * 1000,
    });
  }

  async send(to: string, n: StoredNotice): Promise<string | null> {
    try {
      await this.transport.sendMail({
        from: this.from,
        to,
        subject: `[ngsci] ${n.title}`,
        text: `${n.body}\n\n${n.serverName ? `Server: ${n.serverName}\n` : ''}Kind: ${n.kind}\nTime: ${n.createdAt.toISOString()}\n\nChange where ngsci notices go in JupyterLab, or with: ngsci notify --preferences\n`,
        headers: { 'X-Ngsci-Kind': n.kind, 'X-Ngsci-Notice-Id': String(n.id) },
      });
      return null;
    } catch (err) {
      const url = new URL(this.smtpUrl);
      return `email to ${to} failed: ${redact((err as Error).message, [this.smtpUrl, decodeURIComponent(url.password), url.password])}`;
    }
  }

  /** Mails the link that confirms `to` as the user's address; answers an error, or null. */
  async sendConfirmation(to: string, user: string, link: string): Promise<string | null> {
    try {
      await this.transport.sendMail({
        from: this.from,
        to,
        subject: '[ngsci] Confirm your address for notices',
        text: `The JupyterHub user ${user} asked for ngsci notices (budget alerts, idle stops, messages from notebooks) at this address.\n\nTo receive them, open this link within 24 hours:\n${link}\n\nIf you did not ask for this, ignore this mail: nothing is sent to this address until the link is opened.\n`,
        headers: { 'X-Ngsci-Kind': 'confirmation' },
      });
      return null;
    } catch (err) {
      const url = new URL(this.smtpUrl);
      return `the confirmation mail to ${to} failed: ${redact((err as Error).message, [this.smtpUrl, decodeURIComponent(url.password), url.password, link])}`;
    }
  }

  close(): void {
    this.transport.close();
  }
}
