/**
 * Security events: what the service noticed that an admin must know (an agent gone silent, a
 * honeypot file read, a read threshold crossed, a refused bootstrap or identity, audit pruning, a
 * machine that could not be removed and may still be running and billing).
 * Each is a row admins list, a warn/error log line, and for warnings and worse a notice to every
 * hub admin (JupyterLab, email, webhook through the notifier). User tokens never write here.
 */
import { and, desc, eq, gt, gte } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { securityEvents, type SecurityEventKind } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';

/**
 * The kinds of event; `destroy_failed` (removing an instance's machine failed, it may still run and
 * bill) is raised by the job worker once per streak of failed removals (instances/worker.ts),
 * which keeps retrying.
 */
export type EventKind = SecurityEventKind;

export interface NewSecurityEvent {
  kind: EventKind;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  user?: string | null;
  server?: string | null;
  instanceId?: string | null;
  path?: string | null;
  details?: Record<string, unknown>;
  /** one notice per key (the event row is written every time) */
  dedupeKey?: string;
}

export interface SecurityEventRow {
  id: number;
  at: string;
  kind: SecurityEventKind;
  severity: 'info' | 'warning' | 'critical';
  user: string | null;
  server: string | null;
  instanceId: string | null;
  path: string | null;
  message: string;
  details: Record<string, unknown> | null;
}

export class SecurityEvents {
  private admins: { names: string[]; at: number } | null = null;

  constructor(
    private readonly d: {
      db: Db;
      logger: Logger;
      notifier: Notifier;
      /** the hub's admins; cached for a minute */
      admins: () => Promise<string[]>;
      /** every raised event, e.g. to ship it with the audit stream (audit/sink.ts) */
      onRaised?: (row: SecurityEventRow) => void;
      now?: () => Date;
    },
  ) {}

  async raise(e: NewSecurityEvent): Promise<SecurityEventRow> {
    const [row] = await this.d.db
      .insert(securityEvents)
      .values({
        at: (this.d.now ?? (() => new Date()))(),
        kind: e.kind,
        severity: e.severity,
        userName: e.user ?? null,
        serverName: e.server ?? null,
        instanceId: e.instanceId ?? null,
        path: e.path ?? null,
        message: e.message,
        details: e.details ?? null,
      })
      .returning();
    const log = e.severity === 'critical' ? this.d.logger.error : this.d.logger.warn;
    log.call(
      this.d.logger,
      { securityEvent: e.kind, user: e.user, instance: e.instanceId, path: e.path },
      `security event: ${e.message}`,
    );
    const out = toRow(row!);
    this.d.onRaised?.(out);
    if (e.severity !== 'info') await this.notifyAdmins(e, row!.id);
    return out;
  }

  async list(
    opts: { kind?: SecurityEventKind; since?: Date; after?: number; limit?: number } = {},
  ): Promise<SecurityEventRow[]> {
    const rows = await this.d.db
      .select()
      .from(securityEvents)
      .where(
        and(
          opts.kind ? eq(securityEvents.kind, opts.kind) : undefined,
          opts.since ? gte(securityEvents.at, opts.since) : undefined,
          opts.after ? gt(securityEvents.id, opts.after) : undefined,
        ),
      )
      .orderBy(desc(securityEvents.id))
      .limit(opts.limit ?? 100);
    return rows.map(toRow);
  }

  private async notifyAdmins(e: NewSecurityEvent, id: number): Promise<void> {
    let names: string[] = [];
    try {
      const now = Date.now();
      if (!this.admins || now - this.admins.at > 60_000)
        this.admins = { names: await this.d.admins(), at: now };
      names = this.admins.names;
    } catch (err) {
      this.d.logger.warn({ err }, 'security event: could not list the hub admins to notify');
    }
    const who = [e.user && `user ${e.user}`, e.server && `server ${e.server}`]
      .filter(Boolean)
      .join(', ');
    for (const admin of names) {
      await this.d.notifier
        .send({
          user: admin,
          kind: 'security',
          level: e.severity === 'critical' ? 'error' : 'warning',
          title: `Security: ${e.kind.replace(/_/g, ' ')}${who ? ` (${who})` : ''}`,
          body: e.message,
          ...(e.instanceId ? { instanceId: e.instanceId } : {}),
          dedupeKey: `security:${e.dedupeKey ?? id}`,
        })
        .catch((err: unknown) =>
          this.d.logger.warn({ err, admin }, 'security event: notice not sent'),
        );
    }
  }
}

function toRow(r: typeof securityEvents.$inferSelect): SecurityEventRow {
  return {
    id: r.id,
    at: r.at.toISOString(),
    kind: r.kind,
    severity: r.severity,
    user: r.userName,
    server: r.serverName,
    instanceId: r.instanceId,
    path: r.path,
    message: r.message,
    details: r.details ?? null,
  };
}
