/**
 * The SecretBox: a secret sealed to a table row opens only under that row's name (a ciphertext
 * copied into another row is refused), ciphertexts from before rows were bound still open, and
 * the service's box needs a key of its own: no NGSCI_SECRET_KEY, or the bridge secret reused as
 * one, stops it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { rowContext, SecretBox, secretBoxFromConfig } from './secrets.js';

const KEY = 'secret-box-test-key-0123456789abcdef';
const BRIDGE = 'bridge-secret-for-tests-0123456789';

/** A ciphertext as the box wrote it before rows were bound: iv.tag.body, no additional data. */
function legacySeal(secret: string, plaintext: string): string {
  const key = createHash('sha256').update(`ngsci-secret-box:${secret}`).digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64')).join('.');
}

describe('SecretBox', () => {
  const box = new SecretBox(KEY);
  const rowA = rowContext('instance_secrets', '7d1c2f4e-0000-4000-8000-00000000000a');
  const rowB = rowContext('instance_secrets', '7d1c2f4e-0000-4000-8000-00000000000b');

  test('a secret sealed to a row opens under that row only', () => {
    const sealed = box.seal('{"JUPYTERHUB_API_TOKEN":"t0k3n"}', rowA);
    assert.ok(!sealed.includes('t0k3n'));
    assert.equal(box.open(sealed, rowA), '{"JUPYTERHUB_API_TOKEN":"t0k3n"}');
    assert.throws(() => box.open(sealed, rowB), 'copied into another row');
    assert.throws(() => box.open(sealed), 'opened with no row at all');
  });

  test('a ciphertext from before rows were bound still opens (its next write binds it)', () => {
    const old = legacySeal(KEY, 'https://hooks.example.com/T/B/secret');
    assert.equal(box.open(old, rowA), 'https://hooks.example.com/T/B/secret');
    assert.equal(box.open(old), 'https://hooks.example.com/T/B/secret');
  });

  test('another key, a changed byte or a malformed value is refused', () => {
    const sealed = box.seal('value', rowA);
    assert.throws(() => new SecretBox(`${KEY}-other`).open(sealed, rowA));
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64');
    body[0] = body[0]! ^ 1;
    parts[3] = body.toString('base64');
    assert.throws(() => box.open(parts.join('.'), rowA));
    assert.throws(() => box.open('not-sealed', rowA), /malformed/);
    assert.throws(() => box.open('v2.a.b', rowA), /malformed/);
  });

  test('the service box needs NGSCI_SECRET_KEY, and one that is not the bridge secret', () => {
    assert.throws(
      () => secretBoxFromConfig({ NGSCI_BRIDGE_SECRET: BRIDGE }),
      /secret_key_missing: NGSCI_SECRET_KEY is required/,
    );
    assert.throws(
      () => secretBoxFromConfig({ NGSCI_SECRET_KEY: BRIDGE, NGSCI_BRIDGE_SECRET: BRIDGE }),
      /secret_key_reused/,
    );
    const fromConfig = secretBoxFromConfig({ NGSCI_SECRET_KEY: KEY, NGSCI_BRIDGE_SECRET: BRIDGE });
    assert.equal(fromConfig.open(box.seal('same key', rowA), rowA), 'same key');
    // nothing sealed under the bridge secret (the old fallback) opens with the service's key
    assert.throws(() => fromConfig.open(new SecretBox(BRIDGE).seal('x', rowA), rowA));
  });
});
