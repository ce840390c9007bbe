/**
 * Who the client is, on a table of cases: the proxy's peer address and what X-Forwarded-For says.
 * What a client writes into the header itself must never choose its budget.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddressOf, trustedProxies } from './client-address.js';
import { LimitSettingsSchema } from './settings.js';

const loopback = trustedProxies(['127.0.0.1', '::1']);
const behindIngress = trustedProxies(['127.0.0.1', '10.0.0.0/8']);

describe('clientAddressOf', () => {
  const cases: Array<[string, string | undefined, string | undefined, string, typeof loopback]> = [
    ['a direct client is its own address', '203.0.113.9', undefined, '203.0.113.9', loopback],
    [
      'a direct client cannot pick an address with the header',
      '203.0.113.9',
      '198.51.100.1',
      '203.0.113.9',
      loopback,
    ],
    [
      'the proxy on this machine forwards the client',
      '127.0.0.1',
      '198.51.100.7',
      '198.51.100.7',
      loopback,
    ],
    [
      'an IPv4-mapped peer is the same proxy',
      '::ffff:127.0.0.1',
      '198.51.100.7',
      '198.51.100.7',
      loopback,
    ],
    [
      'addresses a client wrote left of the one the proxy appended are ignored',
      '127.0.0.1',
      '1.1.1.1, 2.2.2.2, 198.51.100.7',
      '198.51.100.7',
      loopback,
    ],
    [
      'each trusted hop is skipped, from the right',
      '127.0.0.1',
      '6.6.6.6, 198.51.100.7, 10.1.2.3',
      '198.51.100.7',
      behindIngress,
    ],
    [
      'an untrusted hop in the middle is the client (what it forwarded is not believed)',
      '127.0.0.1',
      '6.6.6.6, 198.51.100.7',
      '198.51.100.7',
      behindIngress,
    ],
    [
      'garbage stops the walk at the last trustworthy address',
      '127.0.0.1',
      'not-an-ip',
      '127.0.0.1',
      loopback,
    ],
    ['the proxy without a header is the client', '::1', undefined, '::1', loopback],
    ['no socket at all', undefined, '198.51.100.7', 'unknown', loopback],
  ];
  for (const [what, peer, xff, want, trusted] of cases)
    test(what, () => assert.equal(clientAddressOf(peer, xff, trusted), want));
});

describe('NGSCI_TRUSTED_PROXIES', () => {
  test('addresses and CIDR blocks of both families are accepted', () => {
    const s = LimitSettingsSchema.parse({
      NGSCI_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,fd00::/8',
    });
    assert.deepEqual(s.NGSCI_TRUSTED_PROXIES, ['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  });

  test('a bad entry is named in the error', () => {
    for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.1/8/1', '::1/129']) {
      const r = LimitSettingsSchema.safeParse({ NGSCI_TRUSTED_PROXIES: `127.0.0.1,${bad}` });
      assert.equal(r.success, false, bad);
      assert.match(r.error!.issues[0]!.message, new RegExp(bad.replace(/[./]/g, '\\$&')), bad);
    }
  });
});
