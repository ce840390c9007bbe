/**
 * A user's notices: the list JupyterLab polls (`?after=<id>`), acknowledgements, channel
 * preferences, and `POST /notify` for `%ngsci notify` and `ngsci notify`.
 */
import { createRoute } from '@hono/zod-openapi';
import {
  AckRequest,
  AckResult,
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
import { errors, json } from './common.js';

function publicPreferences(p: Preferences): NotificationPreferences {
  return {
    email: p.email,
    webhook: { configured: p.webhookSealed !== null, host: p.webhookHost },
    channels: p.channels,
  };
}

export function notificationRoutes(deps: Pick<AppDeps, 'notifications' | 'notifier' | 'config'>) {
  const r = newRouter();
  const store = deps.notifications.store;

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
      description: 'Changes only the fields sent. `null` removes the email address or the webhook.',
      request: {
        body: {
          content: { 'application/json': { schema: NotificationPreferencesInput } },
          required: true,
        },
      },
      responses: {
        200: json(NotificationPreferences, 'the preferences now'),
        ...errors(400, 401, 403),
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
      await store.savePreferences(user, { email: body.email, webhook, channels: body.channels });
      return c.json(publicPreferences(await store.preferences(user)), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/notify',
      description:
        'Sends the caller a notice of their own (`%ngsci notify "done"`), through their channels.',
      request: {
        body: { content: { 'application/json': { schema: NotifyRequest } }, required: true },
      },
      responses: {
        202: json(NotifyResult, 'sent'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const user = c.get('user').name;
      const b = c.req.valid('json');
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
