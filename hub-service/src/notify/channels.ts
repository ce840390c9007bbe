/**
 * The channels a notice can leave the service by: email over SMTP (nodemailer) and a webhook
 * (a JSON POST with Slack's `text` field). Both answer an error message without secrets, or null.
 */
import { isIP } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type { WebhookBody } from '@ngsci/contract';
import type { StoredNotice } from './store.js';

/** Why a webhook URL is refused, or null when it may be used. */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'the webhook URL is not a valid URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return 'the webhook URL must start with https:// or http://';
  if (url.username || url.password) return 'the webhook URL must not carry a user name or password';
  if (!allowPrivate && isPrivateHost(url.hostname)) {
    return `the webhook host ${url.hostname} is a local or private address; the admin can allow such hosts with NGSCI_WEBHOOK_ALLOW_PRIVATE`;
  }
  return null;
}

/** Literal local, private and link-local addresses (the cloud metadata endpoint among them). */
export function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (
    h === 'localhost' ||
    h.endsWith('.localhost') ||
    h.endsWith('.internal') ||
    h.endsWith('.local')
  )
    return true;
  const v = isIP(h);
  if (v === 4) {
    const [a, b] = h.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      a === 127 ||
      a === 0 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (v === 6)
    return (
      h === '::1' ||
      h === '::' ||
      h.startsWith('fc') ||
      h.startsWith('fd') ||
      h.startsWith('fe80') ||
      h.startsWith('::ffff:')
    );
  return false;
}

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

export async function postWebhook(
  url: string,
  body: WebhookBody,
  timeoutSeconds: number,
  fetchImpl: typeof fetch = fetch,
): Promise<string | null> {
  try {
    const res = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'ngsci-notify' },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
    await res.body?.cancel();
    return res.ok ? null : `the webhook answered HTTP ${res.status}`;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'TimeoutError') return `the webhook did not answer within ${timeoutSeconds} s`;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return `the webhook could not be reached${cause ? ` (${cause})` : ''}`;
  }
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

  close(): void {
    this.transport.close();
  }
}
