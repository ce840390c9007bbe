/**
 * Notifications through the real app: stored once per dedupe key, listed and acknowledged, and
 * delivered by email to an SMTP server and by webhook to an HTTP server, both on 127.0.0.1 (the
 * webhook receiver reachable only because NGSCI_WEBHOOK_ALLOW names it). Mail goes only to an
 * address confirmed by the link mailed to it; `POST /notify` is limited per user and hour.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { sql } from 'drizzle-orm';
import { eventually, harness, type Harness } from '../testing/harness.js';
import type { ChannelNotifier } from './notifier.js';

interface Mail {
  from: string;
  to: string[];
  data: string;
  user: string | undefined;
}

let h: Harness;
let smtp: SMTPServer;
let hooks: Server;
const mails: Mail[] = [];
const posts: Array<{ path: string; body: Record<string, unknown> }> = [];
let smtpPort = 0;
let hookBase = '';
let hookStatus = 200;

before(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username });
    },
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (d: Buffer) => (data += d.toString()));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  hooks = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(hookStatus).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  hookBase = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;

  h = await harness({
    env: {
      NGSCI_SMTP_URL: `smtp://mailer:s3cret-smtp-pass@127.0.0.1:${smtpPort}?starttls=false`,
      NGSCI_SMTP_FROM: 'ngsci <noreply@hub.test>',
      // the receiver below is on loopback: only the allow list lets a webhook reach it
      NGSCI_WEBHOOK_ALLOW: '127.0.0.1',
      NGSCI_NOTIFY_TIMEOUT: '2',
    },
  });
});

after(async () => {
  await h.close();
  (h.services.notifications as ChannelNotifier).close();
  await new Promise<void>((r) => smtp.close(() => r()));
  await new Promise((r) => hooks.close(r));
});

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;
const idle = () => h.services.notifications.idle();

/** A mail's text with quoted-printable soft breaks and escapes undone. */
const decoded = (m: Mail) =>
  m.data
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

/** The confirmation links mailed to an address so far, oldest first, as paths under the prefix. */
function confirmationLinks(address: string): string[] {
  return mails
    .filter((m) => m.to.includes(address) && /X-Ngsci-Kind: confirmation/i.test(m.data))
    .map((m) => {
      const link = /https?:\/\/\S+\/api\/v1\/notifications\/confirm\?token=[\w%-]+/.exec(
        decoded(m),
      );
      assert.ok(link, 'the confirmation mail carries the link');
      const url = new URL(link[0]);
      return `${url.pathname.slice(h.config.JUPYTERHUB_SERVICE_PREFIX.length - 1)}${url.search}`;
    });
}

/** Waits for the next confirmation link mailed to an address (after `seen` earlier ones). */
async function nextLink(address: string, seen = 0): Promise<string> {
  await idle();
  return eventually(async () => confirmationLinks(address)[seen], `confirmation mail ${seen + 1}`);
}

const putPrefs = (token: string, b: unknown) =>
  h.request('/api/v1/notifications/preferences', {
    token,
    method: 'PUT',
    body: JSON.stringify(b),
  });

const notify = (token: string, message: string) =>
  h.request('/api/v1/notify', { token, method: 'POST', body: JSON.stringify({ message }) });

/** Opens a confirmation link as a mail reader would: no hub token. */
const openLink = (path: string) => h.request(path);

describe('notifications', () => {
  test('a notice is listed for its user only, once per dedupe key, and can be acknowledged', async () => {
    const alice = h.token({ name: 'nalice' });
    const bob = h.token({ name: 'nbob' });
    const notice = {
      user: 'nalice',
      kind: 'budget' as const,
      level: 'warning' as const,
      title: 'Budget 80 % used',
      body: '$80 of $100',
      dedupeKey: 'budget:nalice:2026-11:80',
    };
    await h.services.notifier.send(notice);
    await h.services.notifier.send(notice);
    await idle();

    const list = await body(await h.request('/api/v1/notifications', { token: alice }));
    const items = list.notifications as Array<{ id: number; title: string; acknowledged: boolean }>;
    assert.equal(items.length, 1, 'the second send with the same key was dropped');
    assert.equal(items[0]!.title, 'Budget 80 % used');
    assert.equal(items[0]!.acknowledged, false);
    assert.equal(list.lastId, items[0]!.id);

    const none = await body(
      await h.request(`/api/v1/notifications?after=${String(list.lastId)}`, { token: alice }),
    );
    assert.deepEqual(none.notifications, [], 'polling after the last id answers nothing new');
    assert.deepEqual(
      (await body(await h.request('/api/v1/notifications', { token: bob }))).notifications,
      [],
    );

    const otherAck = await body(
      await h.request('/api/v1/notifications/ack', {
        token: bob,
        method: 'POST',
        body: JSON.stringify({ ids: [items[0]!.id] }),
      }),
    );
    assert.equal(otherAck.acknowledged, 0, "bob cannot acknowledge alice's notice");
    const ack = await body(
      await h.request('/api/v1/notifications/ack', {
        token: alice,
        method: 'POST',
        body: JSON.stringify({ upTo: items[0]!.id }),
      }),
    );
    assert.equal(ack.acknowledged, 1);
    const unread = await body(
      await h.request('/api/v1/notifications?unacknowledged=true', { token: alice }),
    );
    assert.deepEqual(unread.notifications, []);
  });

  test('email: an unconfirmed address gets only the confirmation link; once it is opened, notices are mailed', async () => {
    const token = h.token({ name: 'mailer-user' });
    const put = await putPrefs(token, {
      email: 'mu@example.org',
      channels: { message: ['jupyterlab', 'email'] },
    });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal((await body(put)).emailConfirmed, false);
    const link = await nextLink('mu@example.org');
    const confirmation = mails.find((m) => m.to.includes('mu@example.org'))!;
    assert.match(confirmation.data, /Subject: \[ngsci\] Confirm your address/);
    assert.match(decoded(confirmation), /mailer-user/, 'the mail says which user asked');

    assert.equal((await notify(token, 'before confirming')).status, 202);
    await idle();
    assert.ok(
      !mails.some((m) => m.data.includes('before confirming')),
      'no notice is mailed to an unconfirmed address',
    );
    const list = await body(await h.request('/api/v1/notifications', { token }));
    const kept = (list.notifications as Array<{ id: number; body: string }>).find(
      (n) => n.body === 'before confirming',
    );
    assert.ok(kept, 'the notice is kept in JupyterLab');
    const [note] = await h.services.notifications.store.deliveries(kept.id);
    assert.equal(note?.ok, false);
    assert.match(String(note?.error), /not confirmed/);

    const opened = await openLink(link);
    assert.equal(opened.status, 200, await opened.clone().text());
    assert.deepEqual(
      { ...(await body(opened)), message: undefined },
      { email: 'mu@example.org', confirmed: true, message: undefined },
    );
    const prefs = await body(await h.request('/api/v1/notifications/preferences', { token }));
    assert.equal(prefs.emailConfirmed, true);

    assert.equal((await notify(token, 'training finished: loss 0.031')).status, 202);
    await idle();
    const mail = await eventually(
      async () => mails.find((m) => m.data.includes('training finished')),
      'the mail',
    );
    assert.deepEqual(mail.to, ['mu@example.org']);
    assert.equal(mail.from, 'noreply@hub.test');
    assert.equal(mail.user, 'mailer', 'the SMTP credentials from NGSCI_SMTP_URL were used');
    assert.match(mail.data, /Subject: \[ngsci\] Message from your notebook/);
    assert.match(mail.data, /training finished: loss 0\.031/);
  });

  test('a confirmation link works once; wrong, expired and replaced links are refused', async () => {
    const token = h.token({ name: 'link-user' });
    const address = 'links@example.org';
    await putPrefs(token, { email: address });
    const first = await nextLink(address);
    // the unconfirmed address sent again gets a new link, which replaces the first
    assert.equal((await putPrefs(token, { email: address })).status, 200);
    const second = await nextLink(address, 1);
    assert.notEqual(first, second);

    const refused = async (path: string, why: string) => {
      const res = await openLink(path);
      assert.equal(res.status, 404, why);
      assert.equal((await body(res)).code, 'not_found', why);
    };
    await refused(first, 'a replaced link');
    await refused(
      second.replace(/token=[^&]+/, 'token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      'a made-up token',
    );
    await h.database.db.execute(
      sql`update notification_preferences set email_token_expires_at = now() - interval '1 minute' where user_name = 'link-user'`,
    );
    await refused(second, 'an expired link');
    const prefs = await body(await h.request('/api/v1/notifications/preferences', { token }));
    assert.equal(prefs.emailConfirmed, false, 'no refused link confirmed anything');

    await putPrefs(token, { email: address });
    const third = await nextLink(address, 2);
    assert.equal((await openLink(third)).status, 200);
    await refused(third, 'a link used once already');
    const short = await openLink('/api/v1/notifications/confirm?token=x');
    assert.equal(short.status, 400);
    assert.equal((await body(short)).code, 'validation_failed');
  });

  test('changing the address needs a new confirmation; nothing goes to either address meanwhile', async () => {
    const token = h.token({ name: 'mover' });
    await putPrefs(token, {
      email: 'old@example.org',
      channels: { message: ['jupyterlab', 'email'] },
    });
    assert.equal((await openLink(await nextLink('old@example.org'))).status, 200);

    const changed = await body(await putPrefs(token, { email: 'new@example.org' }));
    assert.equal(changed.email, 'new@example.org');
    assert.equal(changed.emailConfirmed, false);
    assert.equal((await notify(token, 'after the change')).status, 202);
    await idle();
    assert.ok(!mails.some((m) => m.data.includes('after the change')));

    const link = await nextLink('new@example.org');
    // back to the old address: confirmed once, but it must be confirmed again
    const back = await body(await putPrefs(token, { email: 'old@example.org' }));
    assert.equal(back.emailConfirmed, false);
    assert.equal((await openLink(link)).status, 404, "the new address's link went with it");
    assert.equal((await openLink(await nextLink('old@example.org', 1))).status, 200);
    assert.equal((await notify(token, 'confirmed again')).status, 202);
    await idle();
    const mail = await eventually(
      async () => mails.find((m) => m.data.includes('confirmed again')),
      'the mail',
    );
    assert.deepEqual(mail.to, ['old@example.org']);
  });

  test('confirmation mails are limited per user and hour', async () => {
    const token = h.token({ name: 'asker' });
    for (let i = 0; i < 5; i++)
      assert.equal((await putPrefs(token, { email: `asker${i}@example.org` })).status, 200);
    const sixth = await putPrefs(token, { email: 'victim@example.org' });
    assert.equal(sixth.status, 429);
    assert.equal((await body(sixth)).code, 'rate_limited');
    assert.ok(Number(sixth.headers.get('retry-after')) > 0);
    await idle();
    assert.ok(!mails.some((m) => m.to.includes('victim@example.org')));
  });

  test('POST /notify: the 31st notice of a user in an hour is refused, on every replica', async () => {
    const token = h.token({ name: 'chatty' });
    for (let i = 1; i <= 30; i++) {
      const res = await notify(token, `step ${i}`);
      assert.equal(res.status, 202, `notice ${i}`);
    }
    const refused = await notify(token, 'step 31');
    assert.equal(refused.status, 429);
    const b = await body(refused);
    assert.equal(b.code, 'rate_limited');
    assert.match(String(b.message), /NGSCI_NOTIFY_PER_HOUR/);
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(
      retry > 3500 && retry <= 3600,
      `Retry-After ${retry} s: when the first leaves the hour`,
    );
    const list = await body(await h.request('/api/v1/notifications?limit=500', { token }));
    assert.ok(!(list.notifications as Array<{ body: string }>).some((n) => n.body === 'step 31'));

    // a second replica on the same database counts the same uses
    const replica = await harness({ env: { NGSCI_SMTP_FROM: 'ngsci <noreply@hub.test>' } });
    try {
      const there = await replica.request('/api/v1/notify', {
        token: replica.token({ name: 'chatty' }),
        method: 'POST',
        body: JSON.stringify({ message: 'step 31, elsewhere' }),
      });
      assert.equal(there.status, 429);
    } finally {
      await replica.close();
    }
    assert.equal(
      (await notify(h.token({ name: 'quiet' }), 'first')).status,
      202,
      'others are not limited',
    );
  });

  test('webhook: a Slack-compatible JSON POST with the notice fields', async () => {
    const token = h.token({ name: 'hook-user' });
    const url = `${hookBase}/services/T000/B000/XXXXsecretXXXX`;
    const put = await body(
      await h.request('/api/v1/notifications/preferences', {
        token,
        method: 'PUT',
        body: JSON.stringify({ webhookUrl: url, channels: { failure: ['jupyterlab', 'webhook'] } }),
      }),
    );
    assert.deepEqual(put.webhook, { configured: true, host: new URL(hookBase).host });
    assert.ok(
      !JSON.stringify(put).includes('XXXXsecretXXXX'),
      'the URL (it may hold a token) is never answered back',
    );

    await h.request('/api/v1/notify', {
      token,
      method: 'POST',
      body: JSON.stringify({
        message: 'cell 12 raised ValueError',
        kind: 'failure',
        level: 'error',
      }),
    });
    await idle();
    const post = await eventually(
      async () => posts.find((p) => p.path.endsWith('XXXXsecretXXXX')),
      'the webhook post',
    );
    assert.match(String(post.body.text), /A cell failed/);
    assert.match(String(post.body.text), /cell 12 raised ValueError/);
    assert.equal(post.body.kind, 'failure');
    assert.equal(post.body.user, 'hook-user');
    assert.equal(post.body.level, 'error');
  });

  test('a failing webhook is recorded without the URL and does not fail the request', async () => {
    const token = h.token({ name: 'hook-down' });
    const secretPath = '/hooks/tok-abcdef123456';
    await h.request('/api/v1/notifications/preferences', {
      token,
      method: 'PUT',
      body: JSON.stringify({
        webhookUrl: `${hookBase}${secretPath}`,
        channels: { message: ['webhook'] },
      }),
    });
    hookStatus = 500;
    const res = await h.request('/api/v1/notify', {
      token,
      method: 'POST',
      body: JSON.stringify({ message: 'hello' }),
    });
    assert.equal(res.status, 202);
    await idle();
    hookStatus = 200;
    const list = await body(await h.request('/api/v1/notifications', { token }));
    const id = (list.notifications as Array<{ id: number }>)[0]!.id;
    const deliveries = await h.services.notifications.store.deliveries(id);
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]!.ok, false);
    assert.match(String(deliveries[0]!.error), /HTTP 500/);
    assert.ok(!String(deliveries[0]!.error).includes('tok-abcdef123456'));
  });

  test('preferences are validated: bad webhook URLs, email channel without an address, unknown channels', async () => {
    const token = h.token({ name: 'picky' });
    const put = (b: unknown) =>
      h.request('/api/v1/notifications/preferences', {
        token,
        method: 'PUT',
        body: JSON.stringify(b),
      });
    const ftp = await put({ webhookUrl: 'ftp://example.org/x' });
    assert.equal(ftp.status, 400);
    assert.equal((await body(ftp)).code, 'invalid_webhook_url');
    const creds = await body(await put({ webhookUrl: 'https://u:p@example.org/x' }));
    assert.equal(creds.code, 'invalid_webhook_url');
    // local and metadata hosts, however written; the allowed 127.0.0.1 does not widen to 127/8
    for (const [url, why] of [
      ['http://[::127.0.0.1]/x', /IPv4-compatible/],
      ['http://[::ffff:169.254.169.254]/x', /link-local/],
      ['http://metadata.google.internal./computeMetadata/v1', /cloud-internal/],
      ['http://169.254.169.254/latest/meta-data', /link-local/],
      ['http://127.0.0.2:8080/x', /loopback/],
    ] as const) {
      const refused = await put({ webhookUrl: url });
      assert.equal(refused.status, 400, url);
      const b = await body(refused);
      assert.equal(b.code, 'invalid_webhook_url', url);
      assert.match(String(b.message), why, url);
      assert.match(String(b.message), /NGSCI_WEBHOOK_ALLOW/, url);
    }
    const noEmail = await body(await put({ channels: { budget: ['email'] } }));
    assert.equal(noEmail.code, 'invalid_preferences');
    assert.match(String(noEmail.message), /no email address/);
    const unknown = await put({ channels: { budget: ['pager'] } });
    assert.equal(unknown.status, 400);
    assert.equal((await body(unknown)).code, 'validation_failed');
    const badEmail = await body(await put({ email: 'not-an-address' }));
    assert.equal(badEmail.code, 'validation_failed');
    const empty = await body(
      await h.request('/api/v1/notify', {
        token,
        method: 'POST',
        body: JSON.stringify({ message: '   ' }),
      }),
    );
    assert.equal(empty.code, 'validation_failed');
  });
});
