/**
 * Notifications: what the service tells a user (budget alerts, idle stops, failures, spot
 * interruptions, `%ngsci notify` messages), the user's channel preferences, and `POST /notify`.
 * Notices are stored append-only; JupyterLab lists them with `?after=<id>` and acknowledges them.
 */
import { z } from 'zod';
import { queryInt } from './query.js';

export const NoticeKind = z
  .enum(['budget', 'idle_stop', 'failure', 'spot', 'message', 'security'])
  .meta({ id: 'NoticeKind' });
export type NoticeKind = z.infer<typeof NoticeKind>;
export const NOTICE_KINDS = NoticeKind.options;

export const NoticeLevel = z.enum(['info', 'warning', 'error']).meta({ id: 'NoticeLevel' });
export type NoticeLevel = z.infer<typeof NoticeLevel>;

/** Where a notice goes besides the store. `jupyterlab` is the extension's list, always stored. */
export const NotifyChannel = z
  .enum(['jupyterlab', 'email', 'webhook'])
  .meta({ id: 'NotifyChannel' });
export type NotifyChannel = z.infer<typeof NotifyChannel>;

export const NoticeActionSchema = z
  .object({ id: z.enum(['keep_running', 'open_usage', 'open_billing']), label: z.string() })
  .meta({ id: 'NoticeAction' });
export type NoticeAction = z.infer<typeof NoticeActionSchema>;

export const Notification = z
  .object({
    id: z.number().int(),
    kind: NoticeKind,
    level: NoticeLevel,
    title: z.string(),
    body: z.string(),
    server: z.string().nullable(),
    instanceId: z.string().nullable(),
    actions: z.array(NoticeActionSchema),
    createdAt: z.iso.datetime(),
    acknowledged: z.boolean(),
  })
  .meta({ id: 'Notification' });
export type Notification = z.infer<typeof Notification>;

export const NotificationList = z
  .object({
    notifications: z.array(Notification),
    lastId: z.number().int().meta({ description: 'pass as `after` to get only newer notices' }),
  })
  .meta({ id: 'NotificationList' });
export type NotificationList = z.infer<typeof NotificationList>;

export const NotificationQuery = z.object({
  after: queryInt(0, 0).meta({ description: 'only notices with a larger id' }),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  unacknowledged: z
    .enum(['true', 'false'])
    .optional()
    .meta({ description: 'only notices not yet acknowledged' }),
});
export type NotificationQuery = z.input<typeof NotificationQuery>;

export const AckRequest = z
  .object({
    ids: z.array(z.number().int().positive()).min(1).max(1000).optional(),
    upTo: z
      .number()
      .int()
      .positive()
      .optional()
      .meta({ description: 'acknowledge every notice with an id up to this' }),
  })
  .strict()
  .refine((a) => (a.ids === undefined) !== (a.upTo === undefined), {
    message: 'send either ids or upTo',
  })
  .meta({ id: 'AckRequest' });
export type AckRequest = z.infer<typeof AckRequest>;

export const AckResult = z.object({ acknowledged: z.number().int() }).meta({ id: 'AckResult' });
export type AckResult = z.infer<typeof AckResult>;

/** Channels per kind; a kind that is missing gets the default (jupyterlab, plus email if set). */
export const ChannelsByKind = z.partialRecord(NoticeKind, z.array(NotifyChannel).max(3));
export type ChannelsByKind = z.infer<typeof ChannelsByKind>;

export const NotificationPreferences = z
  .object({
    email: z.string().nullable(),
    emailConfirmed: z.boolean().meta({
      description:
        'whether the link mailed to `email` was opened; notices are mailed only to a confirmed address',
    }),
    webhook: z
      .object({ configured: z.boolean(), host: z.string().nullable() })
      .meta({ description: 'the URL itself may hold a token, so only its host is shown' }),
    channels: z.record(NoticeKind, z.array(NotifyChannel)),
  })
  .meta({ id: 'NotificationPreferences' });
export type NotificationPreferences = z.infer<typeof NotificationPreferences>;

export const NotificationPreferencesInput = z
  .object({
    email: z.email().max(320).nullable().optional().meta({
      description:
        'null removes it; absent keeps it. A new address gets a confirmation link by mail and receives notices once it is opened; sending the unconfirmed address again sends a new link',
    }),
    webhookUrl: z.string().max(2000).nullable().optional().meta({
      description:
        'an http(s) URL that receives a JSON POST (Slack-compatible `text`); null removes it; absent keeps it',
    }),
    channels: ChannelsByKind.optional(),
  })
  .strict()
  .meta({ id: 'NotificationPreferencesInput' });
export type NotificationPreferencesInput = z.infer<typeof NotificationPreferencesInput>;

export const EmailConfirmationQuery = z.object({
  token: z
    .string()
    .min(16)
    .max(200)
    .meta({ description: 'the single-use token from the link mailed to the address' }),
});
export type EmailConfirmationQuery = z.infer<typeof EmailConfirmationQuery>;

/** What opening a confirmation link answers. */
export const EmailConfirmation = z
  .object({ email: z.string(), confirmed: z.literal(true), message: z.string() })
  .meta({ id: 'EmailConfirmation' });
export type EmailConfirmation = z.infer<typeof EmailConfirmation>;

export const NotifyRequest = z
  .object({
    message: z.string().trim().min(1, 'the message is empty').max(4000),
    title: z.string().trim().min(1).max(200).optional(),
    level: NoticeLevel.default('info'),
    server: z.string().max(64).optional(),
    kind: z
      .enum(['message', 'failure'])
      .default('message')
      .meta({ description: '`failure` for a failed cell (`%ngsci notify --on-error`)' }),
  })
  .strict()
  .meta({ id: 'NotifyRequest' });
export type NotifyRequest = z.input<typeof NotifyRequest>;

/** What `POST /notify` answers: the notice as it was sent. */
export const NotifyResult = Notification.pick({ title: true, body: true, level: true }).meta({
  id: 'NotifyResult',
});
export type NotifyResult = z.infer<typeof NotifyResult>;

/** The body a webhook receives: Slack's `text`, plus the notice's fields for other receivers. */
export const WebhookBody = z
  .object({
    text: z.string(),
    user: z.string(),
    kind: NoticeKind,
    level: NoticeLevel,
    title: z.string(),
    body: z.string(),
    server: z.string().nullable(),
    instanceId: z.string().nullable(),
    id: z.number().int(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'WebhookBody' });
export type WebhookBody = z.infer<typeof WebhookBody>;
