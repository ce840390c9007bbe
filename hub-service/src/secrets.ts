/**
 * Encryption at rest for the few secrets the service must keep for a while (a starting server's
 * environment holds its hub token; a webhook URL may carry one). AES-256-GCM, key derived from
 * NGSCI_SECRET_KEY. A secret kept in a table row is sealed with that row's identity as additional
 * authenticated data, so a ciphertext copied into another row no longer opens.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** Marks a ciphertext bound to a row; ciphertexts from before have three parts and no marker. */
const BOUND = 'v2';

export class SecretBox {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update(`ngsci-secret-box:${secret}`).digest();
  }

  /**
   * Seals a secret. `row` names where it is stored (e.g. `instance_secrets:<id>`): the same name
   * must be given to open it. Without `row` (a cookie, which no table holds) nothing is bound.
   */
  seal(plaintext: string, row?: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    if (row !== undefined) cipher.setAAD(Buffer.from(row, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64'));
    return (row !== undefined ? [BOUND, ...parts] : parts).join('.');
  }

  /**
   * Opens what `seal` made. A ciphertext bound to a row opens only under that row's name; one
   * from before rows were bound opens as it was sealed (its next write binds it). Throws when the
   * key, the row or the ciphertext is wrong.
   */
  open(sealed: string, row?: string): string {
    const parts = sealed.split('.');
    const bound = parts.length === 4 && parts[0] === BOUND;
    const [iv, tag, body] = (bound ? parts.slice(1) : parts).map((p) => Buffer.from(p, 'base64'));
    if ((!bound && parts.length !== 3) || iv?.length !== 12 || tag?.length !== 16 || !body)
      throw new Error('malformed sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    if (bound) decipher.setAAD(Buffer.from(row ?? '', 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  }
}

/** The name a secret stored in a table row is sealed under: the table and the row's key. */
export const rowContext = (table: string, key: string): string => `${table}:${key}`;

/**
 * The service's SecretBox, from NGSCI_SECRET_KEY. There is no fallback: a key shared with another
 * secret (the bridge secret travels to JupyterHub's config) would let whoever reads that config
 * open every stored secret. `npm start` generates a key of its own (scripts/start.mjs).
 */
export function secretBoxFromConfig(config: {
  NGSCI_SECRET_KEY?: string | undefined;
  NGSCI_BRIDGE_SECRET: string;
}): SecretBox {
  const key = config.NGSCI_SECRET_KEY;
  if (!key)
    throw new Error(
      'secret_key_missing: NGSCI_SECRET_KEY is required (at least 32 random characters, e.g. `openssl rand -base64 32`); `npm start` generates one',
    );
  if (secretsEqual(key, config.NGSCI_BRIDGE_SECRET))
    throw new Error(
      'secret_key_reused: NGSCI_SECRET_KEY must differ from NGSCI_BRIDGE_SECRET (JupyterHub holds the bridge secret)',
    );
  return new SecretBox(key);
}

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
