/**
 * The confirmation link's origin: a link that pointed at a host the requester chose would hand
 * its token to that host, so the hub's public origin (JUPYTERHUB_HOST) wins over the request's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confirmationLink, hashConfirmationToken, newConfirmationToken } from './confirmation.js';

const base = {
  servicePrefix: '/services/ngsci/',
  token: 'tok_en-123',
  requestUrl: 'http://evil.example:8000/services/ngsci/api/v1/notifications/preferences',
};

test('the link goes to the hub’s public origin when JUPYTERHUB_HOST is set, whatever the Host header', () => {
  for (const [hubHost, forwardedProto, expected] of [
    [
      'https://hub.example.org',
      undefined,
      'https://hub.example.org/services/ngsci/api/v1/notifications/confirm?token=tok_en-123',
    ],
    [
      'https://hub.example.org/',
      'http',
      'https://hub.example.org/services/ngsci/api/v1/notifications/confirm?token=tok_en-123',
    ],
    [
      '',
      undefined,
      'http://evil.example:8000/services/ngsci/api/v1/notifications/confirm?token=tok_en-123',
    ],
    [
      '',
      'https, http',
      'https://evil.example:8000/services/ngsci/api/v1/notifications/confirm?token=tok_en-123',
    ],
    [
      '',
      'gopher',
      'http://evil.example:8000/services/ngsci/api/v1/notifications/confirm?token=tok_en-123',
    ],
  ] as const)
    assert.equal(confirmationLink({ ...base, hubHost, forwardedProto }), expected);
});

test('tokens are random, stored only as a hash, and expire after a day', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  const a = newConfirmationToken(now);
  const b = newConfirmationToken(now);
  assert.notEqual(a.token, b.token);
  assert.ok(a.token.length >= 43, 'at least 256 bits');
  assert.equal(a.hash, hashConfirmationToken(a.token));
  assert.ok(!a.hash.includes(a.token));
  assert.equal(a.expiresAt.toISOString(), '2026-11-30T12:00:00.000Z');
});
