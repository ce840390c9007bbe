/**
 * Cloud identity proofs, checked the way the bootstrap exchange checks them. The proofs come from
 * TEST DOUBLES of the clouds' signers (identity-test-double.ts) whose test keys are configured as
 * the trusted ones; forged proofs come from other test keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  azureNonceFor,
  IdentityRefused,
  inlineOrFile,
  InstanceIdentity,
  type RefusalReason,
} from './identity.js';
import {
  TEST_DOUBLE_aws_identity_signer,
  TEST_DOUBLE_azure_identity_signer,
  TEST_DOUBLE_gcp_identity_signer,
} from './identity-test-double.js';

const SERVICE = 'https://hub.example.org/services/ngsci';
const aws = TEST_DOUBLE_aws_identity_signer();
const gcp = TEST_DOUBLE_gcp_identity_signer();
const azure = TEST_DOUBLE_azure_identity_signer();
const identity = new InstanceIdentity({
  aws: aws.certificate,
  gcp: gcp.jwks,
  azure: azure.caCertificate,
  audience: SERVICE,
});

const refused = (reason: RefusalReason) => (e: unknown) =>
  e instanceof IdentityRefused && e.reason === reason;

describe('AWS instance identity document + PKCS7', () => {
  it('a document signed with the trusted certificate proves its instance id', async () => {
    assert.deepEqual(await identity.verify(aws.prove('i-0abc123')), {
      cloud: 'aws',
      cloudInstanceId: 'i-0abc123',
    });
  });

  it('a signature by any other key is refused, even when the PKCS7 carries its own certificate', async () => {
    const forger = TEST_DOUBLE_aws_identity_signer();
    await assert.rejects(identity.verify(forger.prove('i-0abc123')), refused('bad_signature'));
    await assert.rejects(
      identity.verify(forger.prove('i-0abc123', { embedCertificate: true })),
      refused('bad_signature'),
    );
  });

  it('a document edited after signing is refused', async () => {
    const p = aws.prove('i-0abc123');
    const edited = { ...p, document: p.document.replace('i-0abc123', 'i-0other') };
    await assert.rejects(identity.verify(edited), refused('malformed'));
    await assert.rejects(
      identity.verify({ ...p, pkcs7: p.pkcs7.replace(/[A-Z]/, 'x') }),
      refused('bad_signature'),
    );
  });
});

describe('GCP instance identity token', () => {
  it('a token signed by a trusted key for the service URL proves the numeric instance id', async () => {
    const p = gcp.prove('4455667788990011', SERVICE);
    assert.deepEqual(await identity.verify(p), {
      cloud: 'gcp',
      cloudInstanceId: '4455667788990011',
    });
    // the same keys in oauth2/v1/certs form
    const v1 = new InstanceIdentity({ gcp: gcp.certs, audience: SERVICE });
    assert.equal((await v1.verify(p)).cloudInstanceId, '4455667788990011');
  });

  it("Google's key rotation: a token with a new key id makes the keys file be read again", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-identity-rotation-'));
    try {
      const file = join(dir, 'google-certs.json');
      writeFileSync(file, gcp.jwks);
      const rotating = new InstanceIdentity({
        gcp: inlineOrFile(file, 'NGSCI_IDENTITY_GCP_CERTS'),
        gcpFile: file,
        audience: SERVICE,
      });
      const next = TEST_DOUBLE_gcp_identity_signer();
      const rotated = JSON.parse(next.jwks) as { keys: { kid: string }[] };
      rotated.keys[0]!.kid = 'rotated-kid-2';
      writeFileSync(file, JSON.stringify(rotated));
      const token = next.prove('77', SERVICE).jwt.split('.');
      // re-sign the header with the new kid so the token names the rotated key
      const header = Buffer.from(
        JSON.stringify({ alg: 'RS256', kid: 'rotated-kid-2', typ: 'JWT' }),
      ).toString('base64url');
      const resigned = next.sign(`${header}.${token[1]}`);
      assert.equal(
        (await rotating.verify({ cloud: 'gcp', jwt: `${header}.${token[1]}.${resigned}` }))
          .cloudInstanceId,
        '77',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an expired token, a token for another audience and a forged one are refused', async () => {
    await assert.rejects(
      identity.verify(gcp.prove('1', SERVICE, { expiresIn: -600 })),
      refused('expired'),
    );
    await assert.rejects(
      identity.verify(gcp.prove('1', 'https://evil.example.org')),
      refused('wrong_audience'),
    );
    const forger = TEST_DOUBLE_gcp_identity_signer();
    await assert.rejects(identity.verify(forger.prove('1', SERVICE)), refused('bad_signature'));
    // claims swapped under a valid signature
    const good = gcp.prove('1', SERVICE).jwt.split('.');
    const other = gcp.prove('2', SERVICE).jwt.split('.');
    await assert.rejects(
      identity.verify({ cloud: 'gcp', jwt: `${good[0]}.${other[1]}.${good[2]}` }),
      refused('bad_signature'),
    );
  });
});

describe('Azure attested data', () => {
  const token = 'ngb_example-token-for-the-nonce';
  const nonce = azureNonceFor(token);

  it('attested data signed by metadata.azure.com under the trusted CA, with our nonce, proves the vmId', async () => {
    assert.match(nonce, /^\d{10}$/);
    assert.deepEqual(await identity.verify(azure.prove('vm-1234', nonce), { azureNonce: nonce }), {
      cloud: 'azure',
      cloudInstanceId: 'vm-1234',
    });
  });

  it('another nonce, an expired document and a signer outside the trusted chain are refused', async () => {
    await assert.rejects(
      identity.verify(azure.prove('vm-1234', azureNonceFor('ngb_other')), { azureNonce: nonce }),
      refused('wrong_nonce'),
    );
    await assert.rejects(
      identity.verify(azure.prove('vm-1234', nonce, { expiresIn: -3600 }), { azureNonce: nonce }),
      refused('expired'),
    );
    await assert.rejects(
      identity.verify(azure.prove('vm-1234', nonce, { signer: azure.untrusted }), {
        azureNonce: nonce,
      }),
      refused('bad_signature'),
    );
  });
});

describe('settings', () => {
  it('a cloud without trust material refuses every proof from it', async () => {
    const none = new InstanceIdentity({ audience: SERVICE });
    assert.equal(none.configured('aws'), false);
    await assert.rejects(none.verify(aws.prove('i-1')), refused('not_configured'));
  });

  it('certificates come inline or from a file; a missing file is named, not guessed at', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-identity-settings-'));
    try {
      const file = join(dir, 'aws.pem');
      writeFileSync(file, aws.certificate);
      assert.equal(inlineOrFile(file, 'NGSCI_IDENTITY_AWS_CERT'), aws.certificate);
      assert.equal(inlineOrFile(aws.certificate, 'X'), aws.certificate.trim());
      assert.throws(
        () => inlineOrFile(join(dir, 'missing.pem'), 'NGSCI_IDENTITY_AWS_CERT'),
        /NGSCI_IDENTITY_AWS_CERT/,
      );
      assert.throws(() => new InstanceIdentity({ aws: '{"not":"a cert"}' }), /no PEM certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
