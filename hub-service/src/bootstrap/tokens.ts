/**
 * Single-use bootstrap tokens: how a cloud machine gets its server's environment (which holds the
 * server's hub token) and its agent's credential without either ever entering Terraform state or
 * user-data. The terraform provisioner issues a token just before it synthesizes the machine's
 * stack and records the cloud's id of the machine once `terraform apply` reports it; the
 * machine's user-data carries the token, and at boot the machine trades it at
 * `POST /api/v1/bootstrap` together with a proof of its cloud identity (bootstrap/identity.ts).
 * Only the token's sha256 is stored; the environment is sealed with the SecretBox.
 *
 * Lifetime: a first boot installs packages and pulls multi-GB images, and terraform's apply
 * itself can take many minutes, so the token's `ttlSeconds` counts from when the machine exists
 * (`recordCloudInstance`, after apply), not from issue. Until then a token lives for one apply
 * window plus that lifetime, so a start whose apply never ends leaves no token valid for long.
 *
 * Redemption rules:
 *   - the proof must verify and name the machine terraform made (else 401 identity_refused and a
 *     critical security event); a proof that arrives before terraform reported the machine's id
 *     answers 503 with Retry-After, so the machine's retry loop comes back;
 *   - the first redemption spends the token; a repeat from the same proven machine within the
 *     repeat window answers the same environment again (a retry after a lost response must not
 *     brick the boot); the sealed environment is wiped when that window ends;
 *   - any other second use, and any use after expiry, is refused (401) and raises a
 *     `bootstrap_refused` security event.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, gt, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { bootstrapTokens } from '../db/schema.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { rowContext, sha256, type SecretBox } from '../secrets.js';
import { announcingEvents } from '../instances/store.js';
import { rowsOf } from '../instances/jobs.js';
import type { SecurityEvents } from '../security/events.js';
import {
  azureNonceFor,
  IdentityRefused,
  type IdentityCloud,
  type IdentityProof,
  type InstanceIdentity,
  type ProvenIdentity,
} from './identity.js';

export interface BootstrapTokensDeps {
  db: Db;
  box: SecretBox;
  logger: Logger;
  /** how long a token stays valid once its machine exists (from `recordCloudInstance`) */
  ttlSeconds: number;
  /** how long a token may wait for its machine (terraform's apply) before that; default 1800 s */
  applyWindowSeconds?: number;
  now?: () => Date;
  /** checks the clouds' identity proofs; without it no proof can be checked */
  identity?: Pick<InstanceIdentity, 'verify' | 'configured'>;
  /** a redemption without a verified proof is refused (default true; false only for test doubles) */
  identityRequired?: boolean;
  /** how long after the first redemption the same proven machine gets the same answer (default 300 s) */
  repeatWindowSeconds?: number;
  /** where refusals are raised for admins */
  security?: Pick<SecurityEvents, 'raise'>;
}

export interface Redeemed {
  instanceId: string;
  env: Record<string, string>;
  /** the instance agent's credential, for the machine's root-only agent file */
  agentToken?: string;
}

/** The proof is fine but terraform has not reported the machine's id yet: come back shortly. */
export class IdentityNotYetKnown extends ApiError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      503,
      'identity_pending',
      'the machine is still being created (its cloud id is not known yet); retry shortly',
    );
    this.name = 'IdentityNotYetKnown';
  }
}

const REFUSED = 'the bootstrap token is not valid (unknown, expired or already used)';
const IDENTITY_REFUSED =
  'the machine did not prove that it is the instance this token was made for';

interface Sealed {
  v: 2;
  env: Record<string, string>;
  agentToken?: string;
}

interface TokenRow {
  id: string;
  instanceId: string;
  sealedEnv: string | null;
  expiresAt: Date;
  usedAt: Date | null;
  cloudInstanceId: string | null;
  redeemedBy: string | null;
  user: string | null;
  server: string | null;
  cloud: string | null;
}

export class BootstrapTokens {
  private readonly now: () => Date;

  constructor(private readonly d: BootstrapTokensDeps) {
    this.now = d.now ?? (() => new Date());
  }

  private get windowMs(): number {
    return (this.d.repeatWindowSeconds ?? 300) * 1000;
  }

  /**
   * A new single-use token that hands out `env` (and the agent's credential, kept apart from the
   * server's environment) once for `instanceId`.
   */
  async issue(
    instanceId: string,
    env: Record<string, string>,
    opts: { agentToken?: string } = {},
  ): Promise<string> {
    const token = `ngb_${randomBytes(32).toString('base64url')}`;
    const sealed: Sealed = {
      v: 2,
      env,
      ...(opts.agentToken ? { agentToken: opts.agentToken } : {}),
    };
    const tokenHash = sha256(token);
    await this.d.db.insert(bootstrapTokens).values({
      instanceId,
      tokenHash,
      // bound to its row: a sealed environment copied into another token's row does not open
      sealedEnv: this.d.box.seal(JSON.stringify(sealed), bootstrapRow(tokenHash)),
      expiresAt: new Date(
        this.now().getTime() + ((this.d.applyWindowSeconds ?? 1800) + this.d.ttlSeconds) * 1000,
      ),
    });
    return token;
  }

  /**
   * Records the cloud's id of the instance's machine (from `terraform output`) on its unspent
   * tokens, and starts their lifetime: from now on they live `ttlSeconds`. A token that expired
   * while it waited (an apply longer than the apply window) stays dead.
   */
  async recordCloudInstance(instanceId: string, cloudInstanceId: string): Promise<void> {
    await this.d.db
      .update(bootstrapTokens)
      .set({
        cloudInstanceId,
        expiresAt: new Date(this.now().getTime() + this.d.ttlSeconds * 1000),
      })
      .where(
        and(
          eq(bootstrapTokens.instanceId, instanceId),
          isNull(bootstrapTokens.usedAt),
          isNotNull(bootstrapTokens.sealedEnv),
          gt(bootstrapTokens.expiresAt, this.now()),
        ),
      );
  }

  /**
   * Trades a token (plus the machine's identity proof) for its environment; see the rules at the
   * top. Refusals are ApiErrors: 401 unauthenticated / identity_refused, 503 IdentityNotYetKnown.
   */
  async redeem(
    token: string,
    opts: { proof?: IdentityProof; instanceId?: string } = {},
  ): Promise<Redeemed> {
    const row = await this.find(sha256(token));
    if (!row) {
      // no instance to pin it on: a log line, not an admin alert anyone on the internet could trigger
      this.d.logger.warn(
        { securityEvent: 'bootstrap_refused', reason: 'unknown' },
        'security event: unknown bootstrap token presented',
      );
      throw new ApiError(401, 'unauthenticated', REFUSED);
    }
    const now = this.now();
    const live = !row.usedAt && row.expiresAt > now && row.sealedEnv !== null;

    if (opts.instanceId && opts.instanceId !== row.instanceId) {
      // the token is burnt either way: whoever holds it is not the machine it was made for
      await this.burn(row.id, now);
      await this.refuse(row, 'bootstrap_refused', 'critical', 'wrong_instance', {
        message: 'bootstrap token presented by another instance; refused and revoked',
      });
      throw new ApiError(401, 'unauthenticated', REFUSED);
    }

    const proven = await this.prove(row, token, opts.proof);
    if (proven && !row.cloudInstanceId) {
      if (live) throw new IdentityNotYetKnown(10);
    } else if (proven && proven.cloudInstanceId !== row.cloudInstanceId) {
      // a real machine of ours, or of the same cloud account, but not the one made for this token
      await this.refuse(row, 'identity_refused', 'critical', 'wrong_machine', {
        message: 'bootstrap token presented by a machine other than the one terraform made for it',
        details: { proven: proven.cloudInstanceId, expected: row.cloudInstanceId },
      });
      throw new ApiError(401, 'identity_refused', IDENTITY_REFUSED);
    }
    const redeemer = proven ? `${proven.cloud}:${proven.cloudInstanceId}` : null;

    // one statement: of two machines racing with the same token, exactly one spends it; the sealed
    // environment stays for the repeat window only when a proven machine can come back for it
    const spent = rowsOf(
      await this.d.db.execute(sql`
        update bootstrap_tokens b
           set used_at = ${now.toISOString()}::timestamptz,
               redeemed_by = ${redeemer},
               sealed_env = case when ${redeemer}::text is null then null else b.sealed_env end
        from (select id, sealed_env from bootstrap_tokens where id = ${row.id} for update) old
        where b.id = old.id and b.used_at is null and b.expires_at > ${now.toISOString()}::timestamptz
          and old.sealed_env is not null
        returning old.sealed_env`),
    )[0];
    if (spent) {
      this.d.logger.info(
        { instance: row.instanceId, identity: redeemer ?? 'unproven' },
        'bootstrap token spent: environment handed to the machine',
      );
      await this.event(row.instanceId, 'machine fetched its environment (bootstrap token spent)');
      return this.open(row.instanceId, String(spent.sealed_env), sha256(token));
    }

    const fresh = (await this.find(sha256(token))) ?? row;
    if (fresh.usedAt) {
      const inWindow = now.getTime() - fresh.usedAt.getTime() <= this.windowMs;
      if (redeemer && fresh.redeemedBy === redeemer && inWindow && fresh.sealedEnv) {
        this.d.logger.info(
          { instance: row.instanceId, identity: redeemer },
          'bootstrap repeated by the same machine within the window: same environment',
        );
        await this.event(row.instanceId, 'machine fetched its environment again (a retry)');
        return this.open(row.instanceId, fresh.sealedEnv, sha256(token));
      }
      if (!inWindow) await this.wipe(fresh.id);
      const same = redeemer !== null && fresh.redeemedBy === redeemer;
      await this.refuse(fresh, 'bootstrap_refused', same ? 'warning' : 'critical', 'reused', {
        message: 'bootstrap token reused',
        details: same ? { after: 'the repeat window' } : { by: redeemer ?? 'an unproven caller' },
      });
      throw new ApiError(401, 'unauthenticated', REFUSED);
    }
    await this.wipe(fresh.id);
    await this.refuse(fresh, 'bootstrap_refused', 'warning', 'expired', {
      message: 'bootstrap token expired',
    });
    throw new ApiError(401, 'unauthenticated', REFUSED);
  }

  /**
   * Wipes the sealed environments of expired, unspent tokens and of spent tokens whose repeat
   * window has ended; returns how many.
   */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    const expired = await this.d.db
      .update(bootstrapTokens)
      .set({ sealedEnv: null })
      .where(
        and(
          isNull(bootstrapTokens.usedAt),
          isNotNull(bootstrapTokens.sealedEnv),
          lte(bootstrapTokens.expiresAt, now),
        ),
      )
      .returning({ id: bootstrapTokens.id });
    const spent = await this.d.db
      .update(bootstrapTokens)
      .set({ sealedEnv: null })
      .where(
        and(
          isNotNull(bootstrapTokens.usedAt),
          isNotNull(bootstrapTokens.sealedEnv),
          lte(bootstrapTokens.usedAt, new Date(now.getTime() - this.windowMs)),
        ),
      )
      .returning({ id: bootstrapTokens.id });
    return expired.length + spent.length;
  }

  /** The verified identity behind a proof, null when none was needed; refuses otherwise. */
  private async prove(
    row: TokenRow,
    token: string,
    proof: IdentityProof | undefined,
  ): Promise<ProvenIdentity | null> {
    const required = this.d.identityRequired ?? true;
    const checkable = proof && this.d.identity?.configured(proof.cloud);
    if (!proof || !checkable) {
      if (!required) return null;
      const reason = proof ? 'not_configured' : 'missing';
      await this.refuse(row, 'identity_refused', 'critical', reason, {
        message: proof
          ? `no trusted ${proof.cloud} identity key is configured; the machine cannot be verified`
          : 'bootstrap attempted without a cloud identity proof',
      });
      throw new ApiError(401, 'identity_refused', IDENTITY_REFUSED);
    }
    if (row.cloud && proof.cloud !== (row.cloud as IdentityCloud)) {
      await this.refuse(row, 'identity_refused', 'critical', 'wrong_cloud', {
        message: `a ${proof.cloud} identity proof for an instance on ${row.cloud}`,
      });
      throw new ApiError(401, 'identity_refused', IDENTITY_REFUSED);
    }
    try {
      return await this.d.identity!.verify(proof, { azureNonce: azureNonceFor(token) });
    } catch (err) {
      if (!(err instanceof IdentityRefused)) throw err;
      await this.refuse(row, 'identity_refused', 'critical', err.reason, {
        message: `cloud identity refused: ${err.message}`,
      });
      throw new ApiError(401, 'identity_refused', IDENTITY_REFUSED);
    }
  }

  private async find(hash: string): Promise<TokenRow | null> {
    const r = rowsOf(
      await this.d.db.execute(sql`
        select b.id, b.instance_id, b.sealed_env, b.expires_at, b.used_at, b.cloud_instance_id,
               b.redeemed_by, i.user_name, i.server_name, i.cloud
        from bootstrap_tokens b left join instances i on i.id = b.instance_id
        where b.token_hash = ${hash} limit 1`),
    )[0];
    if (!r) return null;
    const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
    return {
      id: String(r.id),
      instanceId: String(r.instance_id),
      sealedEnv: (r.sealed_env as string | null) ?? null,
      expiresAt: date(r.expires_at) as Date,
      usedAt: date(r.used_at),
      cloudInstanceId: (r.cloud_instance_id as string | null) ?? null,
      redeemedBy: (r.redeemed_by as string | null) ?? null,
      user: (r.user_name as string | null) ?? null,
      server: (r.server_name as string | null) ?? null,
      cloud: (r.cloud as string | null) ?? null,
    };
  }

  private open(instanceId: string, sealed: string, tokenHash: string): Redeemed {
    const v = JSON.parse(this.d.box.open(sealed, bootstrapRow(tokenHash))) as
      Sealed | Record<string, string>;
    // tokens issued before agent credentials sealed the bare environment
    if ((v as Sealed).v === 2 && typeof (v as Sealed).env === 'object') {
      const s = v as Sealed;
      return { instanceId, env: s.env, ...(s.agentToken ? { agentToken: s.agentToken } : {}) };
    }
    return { instanceId, env: v as Record<string, string> };
  }

  private async burn(id: string, now: Date): Promise<void> {
    await this.d.db.execute(sql`
      update bootstrap_tokens set sealed_env = null, used_at = coalesce(used_at, ${now.toISOString()}::timestamptz)
      where id = ${id}`);
  }

  private async wipe(id: string): Promise<void> {
    await this.d.db
      .update(bootstrapTokens)
      .set({ sealedEnv: null })
      .where(eq(bootstrapTokens.id, id));
  }

  /** A refusal: a security event for admins (or a warning in the log) and a line in the instance's history. */
  private async refuse(
    row: TokenRow,
    kind: 'bootstrap_refused' | 'identity_refused',
    severity: 'warning' | 'critical',
    reason: string,
    e: { message: string; details?: Record<string, unknown> },
  ): Promise<void> {
    const details = { reason, ...e.details };
    if (this.d.security) {
      await this.d.security.raise({
        kind,
        severity,
        message: e.message,
        user: row.user,
        server: row.server,
        instanceId: row.instanceId,
        details,
        dedupeKey: `${kind}:${row.id}:${reason}`,
      });
    } else {
      this.d.logger.warn(
        { securityEvent: kind, reason, instance: row.instanceId },
        `security event: ${e.message}`,
      );
    }
    await this.event(row.instanceId, e.message);
  }

  /** An event in the instance's history, at its current state and progress. */
  private async event(instanceId: string, message: string): Promise<void> {
    // announced like every event row, so open event streams on every replica see it at once
    await this.d.db.execute(
      announcingEvents(sql`
      insert into instance_events (instance_id, state, progress, message)
      select i.id, i.state,
             coalesce((select e.progress from instance_events e where e.instance_id = i.id order by e.id desc limit 1), 0),
             ${message}
      from instances i where i.id = ${instanceId}`),
    );
  }
}

/** The additional authenticated data of a token's sealed environment: its row, by token hash. */
const bootstrapRow = (tokenHash: string): string => rowContext('bootstrap_tokens', tokenHash);
