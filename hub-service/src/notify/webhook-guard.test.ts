/**
 * Where webhooks may point: a table of URLs judged with an injected resolver (no real DNS), the
 * allow list, and sends that connect to the address judged even when DNS answers differently the
 * next time (rebinding), delivered to a receiver on 127.0.0.1 that only the allow list admits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openMemoryDatabase, type Database } from '../db/client.js';
import { ApiError } from '../errors.js';
import { createLogger } from '../logger.js';
import { SecretBox } from '../secrets.js';
import { ChannelNotifier } from './notifier.js';
import { NotificationStore } from './store.js';
import { judgeWebhook, WebhookAllow, WebhookAllowSetting, type Resolver } from './webhook-guard.js';

/** A resolver that answers from a table, as DNS would for these names. */
const dnsTable: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  '169.254.169.254.nip.io': ['169.254.169.254'],
  'ten.example.com': ['10.1.2.3'],
  'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
  'v6.example.com': ['2606:4700::1111'],
  'mapped.example.com': ['::ffff:169.254.169.254'],
  'nat64.example.com': ['64:ff9b::a9fe:a9fe'],
  'ula.example.com': ['fd00:ec2::254'],
  'corp-hooks.example.com': ['10.9.8.7'],
};
const tableResolver: Resolver = async (host) => {
  const answers = dnsTable[host];
  if (!answers) throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
  return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const none = WebhookAllow.parse('');

describe('webhook hosts', () => {
  const refused: Array<[string, RegExp]> = [
    ['http://127.0.0.1:8080/x', /loopback/],
    ['http://localhost:8080/x', /local/],
    ['http://LOCALHOST./x', /local/],
    ['http://10.1.2.3/x', /private/],
    ['http://172.20.0.1/x', /private/],
    ['http://192.168.1.1/x', /private/],
    ['http://100.64.0.1/x', /carrier-grade NAT/],
    ['http://169.254.169.254/latest/meta-data', /link-local/],
    ['http://169.254.169.254.nip.io/latest', /169\.254\.169\.254, a link-local/],
    ['http://metadata.google.internal/computeMetadata/v1', /cloud-internal/],
    ['http://metadata.google.internal./computeMetadata/v1', /cloud-internal/],
    ['http://metadata/computeMetadata/v1', /cloud-internal/],
    ['http://[fd00:ec2::254]/latest', /unique local/],
    ['http://[::1]:8080/x', /loopback/],
    ['http://[::]/x', /unspecified/],
    ['http://0.0.0.0/x', /unspecified/],
    ['http://[::127.0.0.1]/x', /IPv4-compatible/],
    ['http://[::ffff:127.0.0.1]/x', /loopback address inside an IPv6/],
    ['http://[::ffff:169.254.169.254]/x', /link-local address .* inside an IPv6/],
    ['http://[64:ff9b::10.0.0.1]/x', /private address inside an IPv6/],
    ['http://[2002:7f00:1::1]/x', /loopback address inside an IPv6/],
    ['http://[2001:0:4136:e378::1]/x', /Teredo/],
    ['http://[fe80::1]/x', /link-local/],
    ['http://[ff02::1]/x', /multicast/],
    ['http://224.0.0.251/x', /multicast/],
    ['http://255.255.255.255/x', /broadcast/],
    ['http://240.0.0.1/x', /reserved/],
    ['http://198.18.0.1/x', /reserved/],
    ['http://2130706433/x', /loopback/], // 127.0.0.1 written as one number
    ['http://0x7f.1/x', /loopback/],
    ['http://ten.example.com/x', /10\.1\.2\.3, a private/],
    ['http://mixed.example.com/x', /127\.0\.0\.1, a loopback/],
    ['http://mapped.example.com/x', /inside an IPv6/],
    ['http://nat64.example.com/x', /inside an IPv6/],
    ['http://ula.example.com/x', /unique local/],
    ['http://nowhere.example.com/x', /could not be resolved/],
    ['ftp://hooks.example.com/x', /https:\/\/ or http:\/\//],
    ['https://u:p@hooks.example.com/x', /user name or password/],
    ['not a url', /not a valid URL/],
  ];
  for (const [url, why] of refused) {
    test(`refuses ${url}`, async () => {
      const verdict = await judgeWebhook(url, none, tableResolver);
      assert.equal(verdict.ok, false, `${url} must be refused`);
      if (!verdict.ok) assert.match(verdict.problem, why);
    });
  }

  const accepted: Array<[string, string]> = [
    ['https://hooks.example.com/services/T/B/X', '93.184.216.34'],
    ['https://hooks.example.com./services/T/B/X', '93.184.216.34'],
    ['https://v6.example.com/x', '2606:4700::1111'],
    ['https://8.8.8.8/x', '8.8.8.8'],
    ['https://[2606:4700:4700::1111]/x', '2606:4700:4700::1111'],
    ['https://[64:ff9b::8.8.8.8]/x', '64:ff9b::808:808'],
  ];
  for (const [url, address] of accepted) {
    test(`accepts ${url} and pins ${address}`, async () => {
      const verdict = await judgeWebhook(url, none, tableResolver);
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.problem);
      assert.equal(verdict.target.address, address);
    });
  }

  test('the allow list admits its hosts, addresses and networks, and nothing else', async () => {
    const allow = WebhookAllow.parse(
      'corp-hooks.example.com., 127.0.0.1, 192.168.0.0/16 fd12::/16',
    );
    const ok = async (url: string) => (await judgeWebhook(url, allow, tableResolver)).ok;
    assert.equal(await ok('http://corp-hooks.example.com/x'), true, 'by name (10.9.8.7)');
    assert.equal(await ok('http://127.0.0.1:9/x'), true, 'by address');
    assert.equal(await ok('http://192.168.44.5/x'), true, 'by network');
    assert.equal(await ok('http://[fd12::5]/x'), true, 'by IPv6 network');
    assert.equal(await ok('http://127.0.0.2/x'), false, 'an address next to an allowed one');
    assert.equal(await ok('http://ten.example.com/x'), false, 'another private host');
    assert.equal(await ok('http://169.254.169.254/x'), false, 'the metadata service');
    for (const bad of ['10.0.0.0/33', 'http://x', '::1/129', 'a_b.example']) {
      assert.throws(() => WebhookAllow.parse(bad), /is not/, bad);
    }
    // the setting as config.ts reads it: a bad entry is a configuration error naming it
    const setting = WebhookAllowSetting.safeParse('10.0.0.0/8, 300.1.2.3/8');
    assert.equal(setting.success, false);
    assert.match(String(setting.error?.issues[0]?.message), /'300\.1\.2\.3\/8' is not/);
    const unset = WebhookAllowSetting.parse(undefined);
    assert.equal(unset.allowsAddress('127.0.0.1'), false, 'unset: nothing internal is allowed');
  });
});

describe('webhook sends', () => {
  let database: Database;
  let receiver: Server;
  let port = 0;
  const hits: Array<{ path: string; headers: IncomingHttpHeaders }> = [];

  before(async () => {
    database = await openMemoryDatabase();
    await database.migrate();
    receiver = createServer((req, res) => {
      hits.push({ path: req.url ?? '', headers: req.headers });
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    port = (receiver.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => receiver.close(r));
    await database.close();
  });

  /** A notifier whose DNS answers come from `answers`, one per lookup, in order. */
  function notifier(answers: string[], allow: string) {
    const lookups: string[] = [];
    const resolve: Resolver = async (host) => {
      lookups.push(host);
      const address = answers[Math.min(lookups.length - 1, answers.length - 1)]!;
      return [{ address, family: 4 }];
    };
    const store = new NotificationStore(database.db);
    const n = new ChannelNotifier({
      store,
      box: new SecretBox('webhook-test-secret-key-0123456789'),
      logger: createLogger('silent'),
      smtpFrom: 'ngsci <ngsci@localhost>',
      timeoutSeconds: 2,
      webhookAllow: WebhookAllow.parse(allow),
      resolve,
    });
    return { n, store, lookups };
  }

  async function deliver(user: string, answers: string[], allow: string, host: string) {
    const { n, store, lookups } = notifier(answers, allow);
    const webhook = await n.webhookFor(user, `http://${host}:${port}/hook/${user}`);
    await store.savePreferences(user, { webhook, channels: { message: ['webhook'] } });
    await n.send({ user, kind: 'message', level: 'info', title: 'hi', body: 'there' });
    await n.idle();
    const [notice] = await store.list(user, { after: 0, limit: 1, unacknowledged: false });
    const deliveries = await store.deliveries(notice!.id);
    return { deliveries, lookups };
  }

  test('the send connects to the address it judged, with the URL host in Host', async () => {
    // `pinned.test` has no real DNS entry: a second lookup by the HTTP client would fail
    const { deliveries, lookups } = await deliver('pin', ['127.0.0.1'], '127.0.0.1', 'pinned.test');
    assert.deepEqual(lookups, ['pinned.test', 'pinned.test'], 'judged at save, judged at send');
    assert.equal(deliveries[0]?.ok, true, String(deliveries[0]?.error));
    const hit = hits.find((h) => h.path === '/hook/pin');
    assert.ok(hit, 'the receiver on the judged address got the post');
    assert.equal(hit.headers.host, `pinned.test:${port}`);
  });

  test('a host that resolves to a public address when saved and a private one at send is refused (rebinding)', async () => {
    const { deliveries, lookups } = await deliver(
      'rebind',
      ['93.184.216.34', '127.0.0.1'],
      '',
      'rebind.test',
    );
    assert.equal(lookups.length, 2);
    assert.equal(deliveries[0]?.ok, false);
    assert.match(String(deliveries[0]?.error), /127\.0\.0\.1, a loopback address/);
    assert.ok(!String(deliveries[0]?.error).includes('/hook/rebind'), 'the URL path stays secret');
    assert.equal(hits.filter((h) => h.path === '/hook/rebind').length, 0, 'nothing was posted');
  });

  test('saving a webhook that resolves to a refused address answers 400 invalid_webhook_url', async () => {
    const { n } = notifier(['169.254.169.254'], '');
    await assert.rejects(
      n.webhookFor('meta', 'http://169.254.169.254.nip.io/latest/meta-data'),
      (err: unknown) =>
        err instanceof ApiError &&
        err.status === 400 &&
        err.code === 'invalid_webhook_url' &&
        /link-local/.test(err.message),
    );
  });

  test('a webhook sealed for one user does not open as another user’s', async () => {
    const { n, store } = notifier(['127.0.0.1'], '127.0.0.1');
    const webhook = await n.webhookFor('owner', `http://pinned.test:${port}/hook/owner`);
    await store.savePreferences('thief', { webhook, channels: { message: ['webhook'] } });
    await n.send({ user: 'thief', kind: 'message', level: 'info', title: 'x', body: 'y' });
    await n.idle();
    const [notice] = await store.list('thief', { after: 0, limit: 1, unacknowledged: false });
    const [delivery] = await store.deliveries(notice!.id);
    assert.equal(delivery?.ok, false);
    assert.match(String(delivery?.error), /cannot be decrypted/);
    assert.equal(hits.filter((h) => h.path === '/hook/owner').length, 0);
  });
});
