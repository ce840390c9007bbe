/**
 * Cloud instance identity: how a VM proves which machine it is before the bootstrap exchange hands
 * it secrets. Each cloud signs a statement about the machine that only code on that machine can
 * fetch from its metadata service:
 *   - AWS: the instance identity document with its PKCS7 signature, checked against the regional
 *     AWS public certificate (pinned: only the configured certificate may have signed it);
 *   - GCP: the instance identity token, an RS256 JWT whose audience is the service URL, checked
 *     against Google's published keys;
 *   - Azure: attested data, a PKCS7 signed by `metadata.azure.com`, whose certificate must chain to
 *     the configured CA certificates, with a nonce derived from the bootstrap token.
 * The answer is the cloud's own id of the machine (AWS instance id, GCP numeric instance id, Azure
 * vmId); the caller compares it with the id `terraform output` recorded. PKCS7 is checked with
 * the `openssl` binary (present wherever ca-certificates is), JWTs with node:crypto.
 */
import { spawn } from 'node:child_process';
import {
  createHash,
  createPublicKey,
  verify as verifySignature,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type IdentityCloud = 'aws' | 'gcp' | 'azure';

/** What a VM sends: the proof exactly as its metadata service handed it out. */
export type IdentityProof =
  | { cloud: 'aws'; document: string; pkcs7: string }
  | { cloud: 'gcp'; jwt: string }
  | { cloud: 'azure'; attested: string };

export interface ProvenIdentity {
  cloud: IdentityCloud;
  /** the cloud's id of the machine, as `terraform output instance_id` reports it */
  cloudInstanceId: string;
}

export type RefusalReason =
  'not_configured' | 'malformed' | 'bad_signature' | 'expired' | 'wrong_audience' | 'wrong_nonce';

/** A proof that does not prove anything; `reason` is safe to log and to show to admins. */
export class IdentityRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'IdentityRefused';
  }
}

export interface IdentityTrust {
  /** PEM certificate(s) of AWS's instance identity signature for the regions in use */
  aws?: string;
  /** Google's keys: a JWKS, the `{kid: PEM certificate}` map of oauth2/v1/certs, or PEM certificates */
  gcp?: string;
  /**
   * the file `gcp` was read from: Google rotates its keys, so a token signed with a key id not
   * seen yet makes the file be read again (at most once a minute) before it is refused
   */
  gcpFile?: string;
  /** PEM CA certificates the attested-data signing certificate must chain to */
  azure?: string;
  /** the GCP token's required audience: the service URL the VM calls */
  audience?: string;
  /** how much clock skew to forgive on expiry checks, in seconds (default 60) */
  skewSeconds?: number;
  now?: () => Date;
  /** the openssl binary (default `openssl` on PATH) */
  openssl?: string;
}

/** The path a setting names, when it names one rather than holding PEM/JSON inline. */
export function settingFile(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && !v.startsWith('-----BEGIN') && !v.startsWith('{') ? v : undefined;
}

/** A setting that holds PEM/JSON inline, or the path of a file that does. */
export function inlineOrFile(value: string | undefined, setting: string): string | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (v.startsWith('-----BEGIN') || v.startsWith('{')) return v;
  if (!existsSync(v))
    throw new Error(`${setting}: neither inline PEM/JSON nor an existing file: ${v}`);
  return readFileSync(v, 'utf8');
}

/**
 * The Azure nonce of a bootstrap token: ten digits from its sha256, so attested data fetched for
 * one redemption cannot be replayed for another. bootstrap.sh computes the same with sha256sum.
 */
export function azureNonceFor(token: string): string {
  const n = Number.parseInt(createHash('sha256').update(token).digest('hex').slice(0, 8), 16);
  return String(n).padStart(10, '0');
}

const B64 = /^[A-Za-z0-9+/=\s]+$/;
const MAX_PROOF = 32 * 1024;

export class InstanceIdentity {
  private gcpKeys: { kid: string | null; key: KeyObject }[];
  private gcpReadAt = 0;

  constructor(private readonly trust: IdentityTrust) {
    this.gcpKeys = trust.gcp ? parseGcpKeys(trust.gcp) : [];
    if (trust.aws) pemCertificates(trust.aws, 'AWS');
    if (trust.azure) pemCertificates(trust.azure, 'Azure');
  }

  /** Whether trust material for this cloud is configured (a proof from it can be checked at all). */
  configured(cloud: IdentityCloud): boolean {
    if (cloud === 'aws') return Boolean(this.trust.aws);
    if (cloud === 'azure') return Boolean(this.trust.azure);
    return this.gcpKeys.length > 0 && Boolean(this.trust.audience);
  }

  /**
   * Checks a proof and answers the machine it proves. `azureNonce` is the nonce the attested data
   * must carry (azureNonceFor(token)). Throws IdentityRefused.
   */
  async verify(
    proof: IdentityProof,
    expect: { azureNonce?: string } = {},
  ): Promise<ProvenIdentity> {
    if (!this.configured(proof.cloud))
      throw new IdentityRefused(
        'not_configured',
        `no trusted ${proof.cloud} identity key is configured on this hub`,
      );
    if (proof.cloud === 'aws') return this.aws(proof.document, proof.pkcs7);
    if (proof.cloud === 'gcp') return this.gcp(proof.jwt);
    return this.azure(proof.attested, expect.azureNonce);
  }

  private now(): number {
    return (this.trust.now ?? (() => new Date()))().getTime();
  }

  private skewMs(): number {
    return (this.trust.skewSeconds ?? 60) * 1000;
  }

  private async aws(document: string, pkcs7: string): Promise<ProvenIdentity> {
    if (!B64.test(pkcs7) || pkcs7.length > MAX_PROOF || document.length > MAX_PROOF)
      throw new IdentityRefused('malformed', 'the AWS pkcs7 signature is not base64');
    const body = pkcs7.replace(/\s+/g, '');
    const pem = `-----BEGIN PKCS7-----\n${body.replace(/(.{64})/g, '$1\n')}\n-----END PKCS7-----\n`;
    // -nointern: only the configured certificate may be the signer, whatever the PKCS7 carries;
    // -noverify: AWS's certificate is self-signed and pinned, there is no chain to check
    const signed = await this.openssl(
      ['-inform', 'PEM', '-nointern', '-noverify', '-certfile', 'trust.pem'],
      { 'trust.pem': this.trust.aws as string, 'proof.p7': pem, 'document.json': document },
    );
    // the document AWS signed is the one that counts; the copy sent beside it must be the same
    if (signed.trim() !== document.trim())
      throw new IdentityRefused('malformed', 'the AWS document differs from the one signed');
    const doc = parseJson(signed, 'AWS instance identity document') as { instanceId?: unknown };
    if (typeof doc.instanceId !== 'string' || !doc.instanceId)
      throw new IdentityRefused('malformed', 'the AWS document has no instanceId');
    return { cloud: 'aws', cloudInstanceId: doc.instanceId };
  }

  private async azure(attested: string, nonce: string | undefined): Promise<ProvenIdentity> {
    if (!B64.test(attested) || attested.length > MAX_PROOF)
      throw new IdentityRefused('malformed', 'the Azure attested data is not base64');
    const der = Buffer.from(attested.replace(/\s+/g, ''), 'base64');
    const signed = await this.openssl(
      [
        '-inform',
        'DER',
        '-CAfile',
        'trust.pem',
        // only the configured CA certificates, never the machine's system trust store
        '-no-CApath',
        '-no-CAstore',
        // the signing certificate is a TLS certificate, not an S/MIME one
        '-purpose',
        'any',
        '-verify_hostname',
        'metadata.azure.com',
      ],
      { 'trust.pem': this.trust.azure as string, 'proof.p7': der },
    );
    const doc = parseJson(signed, 'Azure attested data') as {
      vmId?: unknown;
      nonce?: unknown;
      timeStamp?: { expiresOn?: unknown };
    };
    if (typeof doc.vmId !== 'string' || !doc.vmId)
      throw new IdentityRefused('malformed', 'the Azure attested data has no vmId');
    const expires = azureTime(doc.timeStamp?.expiresOn);
    if (expires === null)
      throw new IdentityRefused('malformed', 'the Azure attested data has no expiry');
    if (expires + this.skewMs() < this.now())
      throw new IdentityRefused('expired', 'the Azure attested data has expired');
    if (nonce !== undefined && doc.nonce !== nonce)
      throw new IdentityRefused(
        'wrong_nonce',
        'the Azure attested data was fetched for another bootstrap token',
      );
    return { cloud: 'azure', cloudInstanceId: doc.vmId };
  }

  private gcp(jwt: string): ProvenIdentity {
    const parts = jwt.split('.');
    if (parts.length !== 3 || jwt.length > MAX_PROOF)
      throw new IdentityRefused('malformed', 'the GCP identity token is not a JWT');
    const [h, p, s] = parts as [string, string, string];
    const header = parseJson(b64url(h), 'GCP token header') as { alg?: unknown; kid?: unknown };
    if (header.alg !== 'RS256')
      throw new IdentityRefused('malformed', 'the GCP identity token is not RS256');
    const matching = () =>
      this.gcpKeys.filter(
        (k) => typeof header.kid !== 'string' || k.kid === null || k.kid === header.kid,
      );
    let candidates = matching();
    if (candidates.length === 0 && this.trust.gcpFile && Date.now() - this.gcpReadAt > 60_000) {
      this.gcpReadAt = Date.now();
      try {
        this.gcpKeys = parseGcpKeys(readFileSync(this.trust.gcpFile, 'utf8'));
      } catch {
        // keep the keys we have; the token is refused below
      }
      candidates = matching();
    }
    const signature = Buffer.from(s, 'base64url');
    const ok = candidates.some((k) =>
      verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), k.key, signature),
    );
    if (!ok)
      throw new IdentityRefused(
        'bad_signature',
        'the GCP identity token is not signed by a trusted Google key',
      );
    const claims = parseJson(b64url(p), 'GCP token claims') as {
      iss?: unknown;
      aud?: unknown;
      exp?: unknown;
      google?: { compute_engine?: { instance_id?: unknown } };
    };
    if (claims.iss !== 'https://accounts.google.com' && claims.iss !== 'accounts.google.com')
      throw new IdentityRefused('malformed', 'the GCP identity token was not issued by Google');
    const audience = this.trust.audience?.replace(/\/+$/, '');
    const aud = typeof claims.aud === 'string' ? claims.aud.replace(/\/+$/, '') : null;
    if (!aud || aud !== audience)
      throw new IdentityRefused(
        'wrong_audience',
        'the GCP identity token was made for another audience',
      );
    if (typeof claims.exp !== 'number' || claims.exp * 1000 + this.skewMs() < this.now())
      throw new IdentityRefused('expired', 'the GCP identity token has expired');
    const id = claims.google?.compute_engine?.instance_id;
    if (typeof id !== 'string' || !id)
      throw new IdentityRefused(
        'malformed',
        'the GCP identity token has no instance id (fetch it with format=full)',
      );
    return { cloud: 'gcp', cloudInstanceId: id };
  }

  /**
   * `openssl smime -verify` over files in a private temporary folder; answers the signed content.
   * Any failure (bad signature, wrong signer, broken chain, unparseable input) is bad_signature.
   */
  private async openssl(args: string[], files: Record<string, string | Buffer>): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-identity-'));
    try {
      for (const [name, content] of Object.entries(files))
        writeFileSync(join(dir, name), content, { mode: 0o600 });
      const argv = ['smime', '-verify', '-binary', '-in', 'proof.p7', ...args];
      let r = await run(this.trust.openssl ?? 'openssl', argv, dir);
      // a detached signature (no content inside) is checked against the document sent beside it
      if (r.code !== 0 && /no content/i.test(r.stderr) && files['document.json'] !== undefined)
        r = await run(this.trust.openssl ?? 'openssl', [...argv, '-content', 'document.json'], dir);
      if (r.code !== 0)
        throw new IdentityRefused(
          'bad_signature',
          'the identity signature does not verify against the trusted certificate',
        );
      return r.stdout;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

function run(
  cmd: string,
  argv: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(new Error(`cannot run ${cmd} to check an identity signature: ${e.message}`)),
    );
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

function b64url(s: string): string {
  return Buffer.from(s, 'base64url').toString('utf8');
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new IdentityRefused('malformed', `the ${what} is not a JSON object`);
}

/** Azure's "MM/DD/YY HH:MM:SS -0000" in UTC, as milliseconds; null when it is not that. */
function azureTime(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{2})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) -0000$/.exec(v.trim());
  if (!m) return null;
  const [, mo, d, y, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(2000 + (y as number), (mo as number) - 1, d, h, mi, s);
}

function pemCertificates(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`the ${what} identity setting holds no PEM certificate`);
  return blocks.map((b) => new X509Certificate(b));
}

/** Google's keys in any of the forms Google publishes them (v1 certs map, v3 JWKS) or as PEM. */
export function parseGcpKeys(text: string): { kid: string | null; key: KeyObject }[] {
  const t = text.trim();
  if (t.startsWith('-----BEGIN'))
    return pemCertificates(t, 'GCP').map((c) => ({ kid: null, key: c.publicKey }));
  let json: unknown;
  try {
    json = JSON.parse(t);
  } catch {
    throw new Error('the GCP identity setting is neither PEM nor JSON');
  }
  if (json && typeof json === 'object' && Array.isArray((json as { keys?: unknown }).keys)) {
    return ((json as { keys: Record<string, unknown>[] }).keys ?? [])
      .filter((k) => k.kty === 'RSA')
      .map((k) => ({
        kid: typeof k.kid === 'string' ? k.kid : null,
        key: createPublicKey({ key: k as never, format: 'jwk' }),
      }));
  }
  if (json && typeof json === 'object') {
    return Object.entries(json as Record<string, unknown>)
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .map(([kid, pem]) => ({ kid, key: new X509Certificate(pem).publicKey }));
  }
  throw new Error('the GCP identity setting holds no keys');
}
