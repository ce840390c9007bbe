/**
 * TEST DOUBLES of the clouds' identity signers: no real AWS, GCP or Azure metadata service is
 * reachable from CI, so tests make proofs in the clouds' documented formats, signed by a test key
 * that the test then configures as the trusted certificate. What this cannot prove: that the
 * real regional AWS certificate, Google's live keys and Azure's real chain verify real documents
 * (see docs/clouds.md for where each comes from). Keys are made with the `openssl` binary.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign as signData } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function inScratch<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-test-double-identity-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const openssl = (dir: string, args: string[], input?: string | Buffer): Buffer =>
  execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });

/** A self-signed test certificate and its key, in PEM. */
function selfSigned(cn: string, extra: string[] = []): { cert: string; key: string } {
  return inScratch((dir) => {
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      ...extra,
    ]);
    return {
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    };
  });
}

/** PKCS7 signed data with the content inside, as DER. */
function pkcs7Sign(
  content: string,
  signer: { cert: string; key: string },
  withCert: boolean,
): Buffer {
  return inScratch((dir) => {
    writeFileSync(join(dir, 'cert.pem'), signer.cert);
    writeFileSync(join(dir, 'key.pem'), signer.key);
    writeFileSync(join(dir, 'content'), content);
    return openssl(dir, [
      'smime',
      '-sign',
      '-binary',
      '-nodetach',
      ...(withCert ? [] : ['-nocerts']),
      '-signer',
      'cert.pem',
      '-inkey',
      'key.pem',
      '-in',
      'content',
      '-outform',
      'DER',
    ]);
  });
}

/**
 * TEST DOUBLE of AWS's instance identity signature: `certificate` plays the regional AWS public
 * certificate; `prove` answers what /latest/dynamic/instance-identity/{document,pkcs7} would.
 */
export function TEST_DOUBLE_aws_identity_signer() {
  const signer = selfSigned('TEST DOUBLE aws instance identity');
  return {
    certificate: signer.cert,
    /** `embedCertificate`: carry the signer's certificate inside, as a forger would */
    prove(instanceId: string, opts: { region?: string; embedCertificate?: boolean } = {}) {
      const region = opts.region ?? 'us-east-1';
      const document = JSON.stringify(
        {
          accountId: '000000000000',
          architecture: 'x86_64',
          availabilityZone: `${region}a`,
          imageId: 'ami-0testdouble',
          instanceId,
          instanceType: 'g4dn.xlarge',
          pendingTime: new Date().toISOString(),
          privateIp: '10.0.3.17',
          region,
          version: '2017-09-30',
        },
        null,
        2,
      );
      // AWS serves the PKCS7 as bare base64 lines, without the PEM armour
      const pkcs7 = pkcs7Sign(document, signer, opts.embedCertificate ?? false)
        .toString('base64')
        .replace(/(.{64})/g, '$1\n')
        .trim();
      return { cloud: 'aws' as const, document, pkcs7 };
    },
  };
}

/**
 * TEST DOUBLE of Google's instance identity token signer: `jwks` and `certs` play
 * https://www.googleapis.com/oauth2/v3/certs and /oauth2/v1/certs; `prove` answers what
 * .../service-accounts/default/identity?audience=...&format=full would.
 */
export function TEST_DOUBLE_gcp_identity_signer() {
  const signer = selfSigned('TEST DOUBLE gcp identity');
  const kid = 'test-double-kid-1';
  const key = createPrivateKey(signer.key);
  const jwk = { ...key.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } as Record<
    string,
    unknown
  >;
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete jwk[k];
  return {
    jwks: JSON.stringify({ keys: [jwk] }),
    /** an RS256 signature of `data` with the test key, base64url */
    sign: (data: string) => signData('RSA-SHA256', Buffer.from(data), key).toString('base64url'),
    certs: JSON.stringify({ [kid]: signer.cert }),
    /** `now` (ms): the signer's clock, for tests that move the verifier's */
    prove(instanceId: string, audience: string, opts: { expiresIn?: number; now?: number } = {}) {
      const now = Math.floor((opts.now ?? Date.now()) / 1000);
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const head = enc({ alg: 'RS256', kid, typ: 'JWT' });
      const body = enc({
        aud: audience,
        azp: '000000000000000000000',
        exp: now + (opts.expiresIn ?? 3600),
        iat: now - 5,
        iss: 'https://accounts.google.com',
        sub: '000000000000000000000',
        google: {
          compute_engine: {
            instance_creation_timestamp: now - 60,
            instance_id: instanceId,
            instance_name: 'ngsci-test-double',
            project_id: 'ngsci-test-project',
            project_number: 1234567890,
            zone: 'us-central1-a',
          },
        },
      });
      const sig = signData('RSA-SHA256', Buffer.from(`${head}.${body}`), key).toString('base64url');
      return { cloud: 'gcp' as const, jwt: `${head}.${body}.${sig}` };
    },
  };
}

const azureStamp = (d: Date) => {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} -0000`;
};

/**
 * TEST DOUBLE of Azure's attested-data signer: a test CA (`caCertificate` plays the chain
 * Microsoft publishes) issues a `metadata.azure.com` certificate that signs; `prove` answers the
 * `signature` of /metadata/attested/document?api-version=2021-02-01&nonce=<nonce>.
 */
export function TEST_DOUBLE_azure_identity_signer() {
  const ca = selfSigned('TEST DOUBLE azure root');
  const leaf = inScratch((dir) => {
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'ca.key'), ca.key);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:metadata.azure.com\n');
    openssl(dir, [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      '-subj',
      '/CN=metadata.azure.com',
    ]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'leaf.pem',
    ]);
    return {
      cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'),
      key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
    };
  });
  return {
    caCertificate: ca.cert,
    /** a signer outside the trusted chain, for tests of a forged proof */
    untrusted: selfSigned('metadata.azure.com', [
      '-addext',
      'subjectAltName=DNS:metadata.azure.com',
    ]),
    prove(
      vmId: string,
      nonce: string,
      opts: { expiresIn?: number; signer?: { cert: string; key: string } } = {},
    ) {
      const now = Date.now();
      const content = JSON.stringify({
        licenseType: '',
        nonce,
        plan: { name: '', product: '', publisher: '' },
        sku: '22_04-lts-gen2',
        subscriptionId: '00000000-0000-0000-0000-000000000000',
        timeStamp: {
          createdOn: azureStamp(new Date(now - 60_000)),
          expiresOn: azureStamp(new Date(now + (opts.expiresIn ?? 6 * 3600) * 1000)),
        },
        vmId,
      });
      const attested = pkcs7Sign(content, opts.signer ?? leaf, true).toString('base64');
      return { cloud: 'azure' as const, attested };
    },
  };
}
