/**
 * Email addresses are confirmed by a link before any notice is mailed to them, so the service
 * cannot be made to mail an address its owner never asked for. The link carries a random
 * single-use token; only its hash is stored, and it expires after a day.
 */
import { createHash, randomBytes } from 'node:crypto';

/** How long a confirmation link works. */
export const CONFIRMATION_TTL_SECONDS = 24 * 3600;

/** Confirmation mails one user may have sent in an hour (each asks to mail an address). */
export const CONFIRMATION_MAILS_PER_HOUR = 5;

export interface ConfirmationToken {
  /** goes into the link, and nowhere else */
  token: string;
  /** what the database keeps */
  hash: string;
  expiresAt: Date;
}

export function hashConfirmationToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newConfirmationToken(now = new Date()): ConfirmationToken {
  const token = randomBytes(32).toString('base64url');
  return {
    token,
    hash: hashConfirmationToken(token),
    expiresAt: new Date(now.getTime() + CONFIRMATION_TTL_SECONDS * 1000),
  };
}

/**
 * The link a confirmation mail carries: the hub's public origin (JUPYTERHUB_HOST) when it is
 * set, else the origin the request that set the address came in on, then the service's prefix.
 */
export function confirmationLink(opts: {
  hubHost: string;
  requestUrl: string;
  forwardedProto?: string;
  servicePrefix: string;
  token: string;
}): string {
  let origin = opts.hubHost.replace(/\/$/, '');
  if (!origin) {
    const url = new URL(opts.requestUrl);
    const proto = opts.forwardedProto?.split(',')[0]?.trim();
    origin = `${proto === 'https' || proto === 'http' ? proto : url.protocol.slice(0, -1)}://${url.host}`;
  }
  const prefix = opts.servicePrefix.endsWith('/') ? opts.servicePrefix : `${opts.servicePrefix}/`;
  return `${origin}${prefix}api/v1/notifications/confirm?token=${encodeURIComponent(opts.token)}`;
}
