/**
 * A user's notices: the list JupyterLab polls (`?after=<id>`), acknowledgements, channel
 * preferences, and `POST /notify` for `%ngsci notify` and `ngsci notify`; and, without a hub
 * token, the link that confirms an email address (the token in it is the proof).
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import {
  AckRequest,
  AckResult,
  EmailConfirmation,
  EmailConfirmationQuery,
  NotificationList,
  NotificationPreferences,
  NotificationPreferencesInput,
  NotificationQuery,
  NotifyRequest,
  NotifyResult,
} from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { ApiError } from '../errors.js';
import type { Preferences } from '../notify/store.js';
import {
  CONFIRMATION_MAILS_PER_HOUR,
  confirmationLink,
  hashConfirmationToken,
  newConfirmationToken,
} from '../notify/confirmation.js';
import { notifySettings } from '../notify/settings.js';
import type { UseVerdict } from '../notify/uses.js';
import { errors, json } from './common.js';

function publicPreferences(p: Preferences): NotificationPreferences {
  return {
    email: p.email,
    emailConfirmed: p.emailConfirmed,
    webhook: { configured: p.webhookSealed !== null, host: p.webhookHost },
    channels: p.channels,
  };
}

/** A per-hour limit reached: 429 rate_limited, with Retry-After. */
function refuseIfOver(c: Context, verdict: UseVerdict, message: (seconds: number) => string) {
  if (verdict.ok) return;
  c.header('retry-after', String(verdict.retryAfterSeconds));
  throw new ApiError(429, 'rate_limited', message(verdict.retryAfterSeconds));
}

export function notificationRoutes(deps: Pick<AppDeps, 'notifications' | 'notifier' | 'config'>) {
  const r = newRouter();
  const store = deps.notifications.store;
  const { NGSCI_NOTIFY_PER_HOUR: notifyPerHour } = notifySettings(deps.config);

  r.openapi(
    createRoute({
      method: 'get',
      path: '/notifications',
      description:
        "The caller's notices, oldest first. Poll with `after` set to the last `lastId` you saw.",
      request: { query: NotificationQuery },
      responses: { 200: json(NotificationList, 'notices'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const user = c.get('user').name;
      const list = await store.list(user, {
        after: q.after,
        limit: q.limit,
        unacknowledged: q.unacknowledged === 'true',
      });
      const lastId = list.length ? list[list.length - 1]!.id : Math.max(q.after, 0);
      return c.json({ notifications: list, lastId }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/notifications/ack',
      request: {
        body: { content: { 'application/json': { schema: AckRequest } }, required: true },
      },
      responses: {
        200: json(AckResult, 'how many notices were newly acknowledged'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const n = await store.acknowledge(c.get('user').name, c.req.valid('json'));
      return c.json({ acknowledged: n }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/notifications/preferences',
      responses: {
        200: json(NotificationPreferences, 'channels per kind, email, webhook host'),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json(publicPreferences(await store.preferences(c.get('user').name)), 200),
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/notifications/preferences',
      description:
        'Changes only the fields sent. `null` removes the email address or the webhook. A new address is mailed a confirmation link and receives notices once it is opened (`emailConfirmed`); sending the unconfirmed address again mails a new link.',
      request: {
        body: {
          content: { 'application/json': { schema: NotificationPreferencesInput } },
          // only the fields sent change, so no body at all changes nothing
          required: false,
        },
      },
      responses: {
        200: json(NotificationPreferences, 'the preferences now'),
        ...errors(400, 401, 403, 429),
      },
    }),
    async (c) => {
      const user = c.get('user').name;
      const body = c.req.valid('json');
      let webhook: { sealed: string; host: string } | null | undefined;
      if (typeof body.webhookUrl === 'string') {
        webhook = await deps.notifications.webhookFor(user, body.webhookUrl);
      } else if (body.webhookUrl === null) {
        webhook = null;
      }
      const current = await store.preferences(user);
      const email = body.email !== undefined ? body.email : current.email;
      const hasWebhook = webhook !== undefined ? webhook !== null : current.webhookSealed !== null;
      const channels = { ...current.channels, ...(body.channels ?? {}) };
      for (const [kind, list] of Object.entries(channels)) {
        if (new Set(list).size !== list.length)
          throw new ApiError(400, 'invalid_preferences', `channels for ${kind} repeat a channel`);
        if (list.includes('email') && !email)
          throw new ApiError(
            400,
            'invalid_preferences',
            `${kind} notices go to email, but no email address is set`,
          );
        if (list.includes('webhook') && !hasWebhook)
          throw new ApiError(
            400,
            'invalid_preferences',
            `${kind} notices go to the webhook, but no webhook URL is set`,
          );
        if (list.includes('email') && !deps.notifications.emailEnabled) {
          throw new ApiError(
            400,
            'invalid_preferences',
            'this hub sends no email (the admin has not set NGSCI_SMTP_URL)',
          );
        }
      }
      // a new address, or the unconfirmed one sent again, is mailed a (new) confirmation link
      const confirm =
        typeof body.email === 'string' &&
        deps.notifications.emailEnabled &&
        (body.email !== current.email || !current.emailConfirmed);
      if (confirm)
        refuseIfOver(
          c,
          await store.uses.take(user, 'confirmation_mail', CONFIRMATION_MAILS_PER_HOUR),
          (s) =>
            `too many confirmation mails for ${user}: at most ${CONFIRMATION_MAILS_PER_HOUR} an hour; try again in ${s} s`,
        );
      await store.savePreferences(user, { email: body.email, webhook, channels: body.channels });
      if (confirm && typeof body.email === 'string') {
        const token = newConfirmationToken();
        if (await store.expectConfirmation(user, body.email, token)) {
          const link = confirmationLink({
            hubHost: deps.config.JUPYTERHUB_HOST,
            requestUrl: c.req.url,
            forwardedProto: c.req.header('x-forwarded-proto'),
            servicePrefix: deps.config.JUPYTERHUB_SERVICE_PREFIX,
            token: token.token,
          });
          deps.notifications.sendConfirmation(user, body.email, link);
        }
      }
      return c.json(publicPreferences(await store.preferences(user)), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/notify',
      description:
        'Sends the caller a notice of their own (`%ngsci notify "done"`), through their channels; at most NGSCI_NOTIFY_PER_HOUR an hour per user.',
      request: {
        body: { content: { 'application/json': { schema: NotifyRequest } }, required: true },
      },
      responses: {
        202: json(NotifyResult, 'sent'),
        ...errors(400, 401, 403, 429),
      },
    }),
    async (c) => {
      const user = c.get('user').name;
      const b = c.req.valid('json');
      refuseIfOver(
        c,
        await store.uses.take(user, 'notify', notifyPerHour),
        (s) =>
          `too many notices sent by ${user}: at most ${notifyPerHour} an hour (NGSCI_NOTIFY_PER_HOUR); try again in ${s} s`,
      );
      const title =
        b.title ?? (b.kind === 'failure' ? 'A cell failed' : 'Message from your notebook');
      await deps.notifier.send({
        user,
        kind: b.kind,
        level: b.level,
        title,
        body: b.message,
        ...(b.server ? { server: b.server } : {}),
      });
      return c.json({ title, body: b.message, level: b.level }, 202);
    },
  );

  return r;
}

/**
 * `GET /notifications/confirm?token=…`, the link mailed to a new address. It needs no hub token
 * (it is opened from a mail, maybe on another device): the single-use token is the proof. So it
 * is mounted before authentication (app.ts), apart from the routes above.
 */
export function notificationConfirmRoutes(deps: Pick<AppDeps, 'notifications'>) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/notifications/confirm',
      description:
        'Confirms the email address a link was mailed to; the link works once, within 24 hours. No hub token: the token in the link is the proof.',
      security: [],
      request: { query: EmailConfirmationQuery },
      responses: {
        200: json(EmailConfirmation, 'the address now receives notices'),
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const { token } = c.req.valid('query');
      const done = await deps.notifications.store.confirmEmail(hashConfirmationToken(token));
      if (!done)
        throw new ApiError(
          404,
          'not_found',
          'this confirmation link is unknown, expired or already used: set the address again in your notification preferences for a new link',
        );
      c.header('cache-control', 'no-store');
      return c.json(
        {
          email: done.email,
          confirmed: true as const,
          message: `${done.email} is confirmed: ngsci notices for ${done.user} are mailed to it from now on`,
        },
        200,
      );
    },
  );
  return r;
}
