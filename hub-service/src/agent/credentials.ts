/**
 * The instance agent's own credential. Each instance gets one when its start is provisioned
 * (local: in the agent's environment only; VMs: through the bootstrap exchange, into a root-only
 * file); it is bound to that instance and revoked when the instance ends. Agent routes accept
 * nothing else, and user or server tokens get 403 there, so a researcher's code cannot post
 * audit events, GPU samples or kernel states in the agent's name (on VMs, where the agent runs as
 * root and the notebook as an unprivileged user; see docs/security.md for local instances).
 */
import { randomBytes } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { createMiddleware } from 'hono/factory';
import type { Db } from '../db/client.js';
import { instanceAgents, instances } from '../db/schema.js';
import { tokenFrom } from '../auth.js';
import { ApiError } from '../errors.js';
import { sha256 } from '../secrets.js';

/** Agent tokens start with this, so a misplaced one is recognisable in a secret scanner. */
export const AGENT_TOKEN_PREFIX = 'ngsa_';

export interface AgentIdentity {
  instanceId: string;
  user: string;
  /** the API's server name (`default` for the hub's default server) */
  server: string;
  cloud: string;
}

export type AgentEnv = { Variables: { agent: AgentIdentity } };

const ACTIVE = ['provisioning', 'starting', 'running', 'stopping'];

export class AgentCredentials {
  private readonly cache = new Map<string, { id: AgentIdentity | null; expires: number }>();
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly opts: {
      /** how long a resolved credential is trusted without asking the database again */
      cacheSeconds?: number;
      /** at most this many agent requests per instance per minute (0: no limit) */
      perMinute?: number;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A new credential for the instance (replacing any earlier one); returns the token. */
  async issue(instanceId: string): Promise<string> {
    const token = `${AGENT_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const tokenHash = sha256(token);
    await this.db
      .insert(instanceAgents)
      .values({ instanceId, tokenHash, issuedAt: new Date(this.now()) })
      .onConflictDoUpdate({
        target: instanceAgents.instanceId,
        // a new credential starts a new boot: an older machine's report says nothing about it
        set: {
          tokenHash,
          issuedAt: new Date(this.now()),
          revokedAt: null,
          bootStage: null,
          bootCode: null,
          bootMessage: null,
          bootAt: null,
        },
      });
    return token;
  }

  /** Revokes the instance's credential (idempotent). */
  async revoke(instanceId: string): Promise<void> {
    await this.db
      .update(instanceAgents)
      .set({ revokedAt: new Date(this.now()) })
      .where(and(eq(instanceAgents.instanceId, instanceId), isNull(instanceAgents.revokedAt)));
    for (const [k, v] of this.cache) if (v.id?.instanceId === instanceId) this.cache.delete(k);
  }

  /** The instance a token belongs to, or null when it is unknown, revoked or its instance ended. */
  async resolve(token: string): Promise<AgentIdentity | null> {
    if (!token.startsWith(AGENT_TOKEN_PREFIX)) return null;
    const key = sha256(token);
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit.id;
    const [row] = await this.db
      .select({
        instanceId: instances.id,
        user: instances.userName,
        server: instances.serverName,
        cloud: instances.cloud,
        state: instances.state,
        revokedAt: instanceAgents.revokedAt,
      })
      .from(instanceAgents)
      .innerJoin(instances, eq(instances.id, instanceAgents.instanceId))
      .where(eq(instanceAgents.tokenHash, key))
      .limit(1);
    const id =
      row && !row.revokedAt && ACTIVE.includes(row.state)
        ? { instanceId: row.instanceId, user: row.user, server: row.server, cloud: row.cloud }
        : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { id, expires: this.now() + (this.opts.cacheSeconds ?? 5) * 1000 });
    return id;
  }

  /** Records that the agent of an instance was heard from (at most every 5 s per instance). */
  async touch(instanceId: string): Promise<void> {
    const now = this.now();
    if (now - (this.seen.get(instanceId) ?? 0) < 5000) return;
    this.seen.set(instanceId, now);
    await this.db
      .update(instanceAgents)
      .set({ lastSeenAt: new Date(now) })
      .where(eq(instanceAgents.instanceId, instanceId));
  }

  /** The kernels the agent saw on its server: busy ones keep the server from idle culling. */
  async recordKernels(instanceId: string, total: number, busy: number): Promise<void> {
    const at = new Date(this.now());
    await this.db
      .update(instanceAgents)
      .set({
        kernelsTotal: total,
        kernelsBusy: busy,
        kernelsAt: at,
        lastSeenAt: at,
        ...(busy > 0 ? { lastBusyAt: at } : {}),
      })
      .where(eq(instanceAgents.instanceId, instanceId));
  }

  /**
   * What idle culling asks: 'busy' when the agent's newest kernel report (at most `freshSeconds`
   * old) had a kernel executing, 'idle' when it had none, 'unknown' without a fresh report.
   */
  async kernelActivity(
    instanceId: string,
    freshSeconds: number,
  ): Promise<'busy' | 'idle' | 'unknown'> {
    const [row] = await this.db
      .select({ busy: instanceAgents.kernelsBusy, at: instanceAgents.kernelsAt })
      .from(instanceAgents)
      .where(and(eq(instanceAgents.instanceId, instanceId), isNull(instanceAgents.revokedAt)));
    if (!row?.at || this.now() - row.at.getTime() > freshSeconds * 1000) return 'unknown';
    return (row.busy ?? 0) > 0 ? 'busy' : 'idle';
  }

  private readonly windows = new Map<string, { start: number; count: number }>();

  /** Per-instance rate limit over a fixed one-minute window; false: refuse with 429. */
  allow(instanceId: string): boolean {
    const limit = this.opts.perMinute ?? 0;
    if (!limit) return true;
    const now = this.now();
    const w = this.windows.get(instanceId);
    if (!w || now - w.start >= 60_000) {
      if (this.windows.size > 10_000) this.windows.clear();
      this.windows.set(instanceId, { start: now, count: 1 });
      return true;
    }
    w.count += 1;
    return w.count <= limit;
  }

  /** Agent routes: the agent credential only; anything else is refused. */
  middleware() {
    return createMiddleware<AgentEnv>(async (c, next) => {
      const token = tokenFrom(c.req.header('authorization'));
      if (!token)
        throw new ApiError(
          401,
          'unauthenticated',
          'agent routes need the instance agent credential',
        );
      if (!token.startsWith(AGENT_TOKEN_PREFIX))
        throw new ApiError(
          403,
          'forbidden',
          "agent routes accept only an instance's agent credential, not a user or server token",
        );
      const id = await this.resolve(token);
      if (!id)
        throw new ApiError(401, 'unauthenticated', 'the agent credential is unknown or revoked');
      if (!this.allow(id.instanceId)) {
        c.header('retry-after', '60');
        throw new ApiError(429, 'rate_limited', 'too many agent requests for this instance');
      }
      c.set('agent', id);
      await this.touch(id.instanceId);
      await next();
    });
  }
}

/** Instances whose agent has been silent since before `cutoff` (running ones only). */
export async function silentAgents(db: Db, cutoff: Date) {
  return db
    .select({
      instanceId: instanceAgents.instanceId,
      user: instances.userName,
      server: instances.serverName,
      lastSeenAt: instanceAgents.lastSeenAt,
      issuedAt: instanceAgents.issuedAt,
      silentSince: instanceAgents.silentSince,
    })
    .from(instanceAgents)
    .innerJoin(instances, eq(instances.id, instanceAgents.instanceId))
    .where(
      and(
        eq(instances.state, 'running'),
        isNull(instanceAgents.revokedAt),
        // an ISO string: postgres-js cannot bind a Date in a raw fragment (PGlite can)
        sql`coalesce(${instanceAgents.lastSeenAt}, ${instanceAgents.issuedAt}) < ${cutoff.toISOString()}::timestamptz`,
      ),
    );
}
