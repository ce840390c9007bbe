/**
 * Single-use bootstrap tokens: how a cloud machine gets its server's environment (which holds the
 * server's hub token) without that environment ever entering Terraform state or user-data.
 * The terraform provisioner issues a token just before it synthesizes the machine's stack; the
 * machine's user-data carries it, and at boot the machine trades it once at
 * `POST /api/v1/bootstrap`. Only the token's sha256 is stored; the environment is sealed with
 * the SecretBox and wiped the moment the token is spent or found expired. A second use or a late
 * use is a security event: a warning in the log (instance id, never the token) and an event on
 * the instance, so admins and the user see it in the instance's history.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { bootstrapTokens } from '../db/schema.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { sha256, type SecretBox } from '../secrets.js';
import { rowsOf } from '../instances/jobs.js';

export interface BootstrapTokensDeps {
  db: Db;
  box: SecretBox;
  logger: Logger;
  /** how long a token stays valid after it is issued */
  ttlSeconds: number;
  now?: () => Date;
}

export type SecurityEvent =
  | 'bootstrap_token_reused'
  | 'bootstrap_token_expired'
  | 'bootstrap_token_unknown'
  | 'bootstrap_token_wrong_instance';

const REFUSED = 'the bootstrap token is not valid (unknown, expired or already used)';

export class BootstrapTokens {
  private readonly now: () => Date;

  constructor(private readonly d: BootstrapTokensDeps) {
    this.now = d.now ?? (() => new Date());
  }

  /** A new single-use token that hands out `env` once for `instanceId`. */
  async issue(instanceId: string, env: Record<string, string>): Promise<string> {
    const token = `ngb_${randomBytes(32).toString('base64url')}`;
    await this.d.db.insert(bootstrapTokens).values({
      instanceId,
      tokenHash: sha256(token),
      sealedEnv: this.d.box.seal(JSON.stringify(env)),
      expiresAt: new Date(this.now().getTime() + this.d.ttlSeconds * 1000),
    });
    return token;
  }

  /**
   * Spends a token and answers its environment. Unknown, reused and expired tokens, and a token
   * presented for another instance, are refused with 401 `unauthenticated` and logged.
   */
  async redeem(
    token: string,
    claimedInstanceId?: string,
  ): Promise<{ instanceId: string; env: Record<string, string> }> {
    const hash = sha256(token);
    const now = this.now();
    // one statement: of two machines racing with the same token, exactly one gets the environment
    const spent = rowsOf(
      await this.d.db.execute(sql`
        update bootstrap_tokens b set used_at = ${now.toISOString()}::timestamptz, sealed_env = null
        from (select id, sealed_env from bootstrap_tokens where token_hash = ${hash} for update) old
        where b.id = old.id and b.used_at is null and b.expires_at > ${now.toISOString()}::timestamptz
          and old.sealed_env is not null
        returning b.instance_id, old.sealed_env`),
    )[0];
    if (spent) {
      const instanceId = String(spent.instance_id);
      if (claimedInstanceId && claimedInstanceId !== instanceId) {
        // the token is burnt either way: whoever holds it is not the machine it was made for
        await this.security(
          'bootstrap_token_wrong_instance',
          instanceId,
          'bootstrap token presented by another instance; refused and revoked',
        );
        throw new ApiError(401, 'unauthenticated', REFUSED);
      }
      const env = JSON.parse(this.d.box.open(String(spent.sealed_env))) as Record<string, string>;
      this.d.logger.info(
        { instance: instanceId },
        'bootstrap token spent: environment handed to the machine',
      );
      await this.event(instanceId, 'machine fetched its environment (bootstrap token spent)');
      return { instanceId, env };
    }
    const rows = await this.d.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.tokenHash, hash))
      .limit(1);
    const row = rows[0];
    if (!row) {
      await this.security('bootstrap_token_unknown', null, 'unknown bootstrap token presented');
    } else if (row.usedAt) {
      await this.security('bootstrap_token_reused', row.instanceId, 'bootstrap token reused');
    } else {
      await this.d.db
        .update(bootstrapTokens)
        .set({ sealedEnv: null })
        .where(eq(bootstrapTokens.id, row.id));
      await this.security('bootstrap_token_expired', row.instanceId, 'bootstrap token expired');
    }
    throw new ApiError(401, 'unauthenticated', REFUSED);
  }

  /** Wipes the sealed environments of expired, unspent tokens; returns how many. */
  async purgeExpired(): Promise<number> {
    const rows = await this.d.db
      .update(bootstrapTokens)
      .set({ sealedEnv: null })
      .where(
        and(
          isNull(bootstrapTokens.usedAt),
          isNotNull(bootstrapTokens.sealedEnv),
          lte(bootstrapTokens.expiresAt, this.now()),
        ),
      )
      .returning({ id: bootstrapTokens.id });
    return rows.length;
  }

  private async security(
    kind: SecurityEvent,
    instanceId: string | null,
    message: string,
  ): Promise<void> {
    this.d.logger.warn({ securityEvent: kind, instance: instanceId }, `security event: ${message}`);
    if (instanceId) await this.event(instanceId, message);
  }

  /** An event in the instance's history, at its current state and progress. */
  private async event(instanceId: string, message: string): Promise<void> {
    await this.d.db.execute(sql`
      insert into instance_events (instance_id, state, progress, message)
      select i.id, i.state,
             coalesce((select e.progress from instance_events e where e.instance_id = i.id order by e.id desc limit 1), 0),
             ${message}
      from instances i where i.id = ${instanceId}`);
  }
}
