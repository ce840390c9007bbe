/**
 * Notifications through the real app: stored once per dedupe key, listed and acknowledged, and
 * delivered by email to an SMTP server and by webhook to an HTTP server, both on 127.0.0.1 (the
 * webhook receiver reachable only because NGSCI_WEBHOOK_ALLOW names it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
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

  test('email: a notice reaches the SMTP server, from the configured sender, with the title as subject', async () => {
    const token = h.token({ name: 'mailer-user' });
    const put = await h.request('/api/v1/notifications/preferences', {
      token,
      method: 'PUT',
      body: JSON.stringify({
        email: 'mu@example.org',
        channels: { message: ['jupyterlab', 'email'] },
      }),
    });
    assert.equal(put.status, 200, await put.clone().text());
    const res = await h.request('/api/v1/notify', {
      token,
      method: 'POST',
      body: JSON.stringify({ message: 'training finished: loss 0.031' }),
    });
    assert.equal(res.status, 202);
    await idle();
    const mail = await eventually(
      async () => mails.find((m) => m.to.includes('mu@example.org')),
      'the mail',
    );
    assert.equal(mail.from, 'noreply@hub.test');
    assert.equal(mail.user, 'mailer', 'the SMTP credentials from NGSCI_SMTP_URL were used');
    assert.match(mail.data, /Subject: \[ngsci\] Message from your notebook/);
    assert.match(mail.data, /training finished: loss 0\.031/);
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
