/**
 * Exfiltration monitors, run on each batch the agents append: honeypot (canary) paths, any open
 * or read of which is a critical security event at once (and optionally stops the server), and
 * per-user thresholds of files and bytes read over a sliding window (a warning once per window).
 */
import { and, desc, eq, gte, inArray, like, or, sql } from 'drizzle-orm';
import type { AuditRule } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { auditEvents, auditRules, securityEvents } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { SecurityEvents } from '../security/events.js';
import type { AuditRow } from './chain.js';

type RuleRow = typeof auditRules.$inferSelect;

export function toRule(r: RuleRow): AuditRule {
  return {
    id: r.id,
    kind: r.kind,
    path: r.path,
    windowSeconds: r.windowSeconds,
    maxFiles: r.maxFiles,
    maxBytes: r.maxBytes,
    stopServer: r.stopServer,
    note: r.note,
    createdBy: r.createdBy,
    createdAt: r.createdAt.toISOString(),
  };
}

/** A rule path ending in `/` is a folder (everything under it); otherwise the file or folder. */
export function pathMatches(rule: string, path: string): boolean {
  if (rule.endsWith('/')) return path.startsWith(rule);
  return path === rule || path.startsWith(`${rule}/`);
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

export interface MonitorDeps {
  db: Db;
  security: Pick<SecurityEvents, 'raise'>;
  lifecycle: Pick<Lifecycle, 'stop'>;
  logger: Logger;
  now?: () => Date;
}

export class AuditMonitors {
  constructor(private readonly d: MonitorDeps) {}

  /** Checks one appended batch (all of one instance) against the admins' rules. */
  async check(rows: AuditRow[]): Promise<void> {
    if (!rows.length) return;
    const rules = await this.d.db.select().from(auditRules);
    if (!rules.length) return;
    const first = rows[0]!;
    const who = { user: first.userName, server: first.serverName, instanceId: first.instanceId };
    let stop = false;

    for (const rule of rules.filter((r) => r.kind === 'honeypot' && r.path)) {
      // one alert per canary file per batch (an open and a read of it arrive together)
      const hits = new Map<string, AuditRow>();
      for (const r of rows)
        if ((r.op === 'open' || r.op === 'read') && pathMatches(rule.path!, r.path))
          if (!hits.has(r.path)) hits.set(r.path, r);
      for (const hit of hits.values()) {
        await this.d.security.raise({
          kind: 'honeypot_read',
          severity: 'critical',
          message:
            `${hit.userName} opened the honeypot file ${hit.path} on server '${hit.serverName}' ` +
            `at ${hit.at.toISOString()}${rule.stopServer ? '; the server is being stopped' : ''}`,
          ...who,
          path: hit.path,
          details: {
            ruleId: rule.id,
            rule: rule.path,
            at: hit.at.toISOString(),
            auditEventId: hit.id,
            stopServer: rule.stopServer,
            ...(rule.note ? { note: rule.note } : {}),
          },
          dedupeKey: `honeypot:${rule.id}:${hit.instanceId}:${hit.path}:${hit.at.toISOString()}`,
        });
        stop ||= rule.stopServer;
      }
    }

    for (const rule of rules.filter((r) => r.kind === 'threshold' && r.windowSeconds)) {
      if (rule.path && !rows.some((r) => pathMatches(rule.path!, r.path))) continue;
      if (await this.overThreshold(rule, who.user)) stop ||= rule.stopServer;
    }

    if (stop) {
      try {
        await this.d.lifecycle.stop(who.user, who.server);
      } catch (err) {
        this.d.logger.error(
          { err, user: who.user, server: who.server },
          'audit monitor: could not stop the server after an alert',
        );
      }
    }
  }

  /** Raises the warning when the user is over the rule; true when it raised one now. */
  private async overThreshold(rule: RuleRow, user: string): Promise<boolean> {
    const now = (this.d.now ?? (() => new Date()))();
    const since = new Date(now.getTime() - rule.windowSeconds! * 1000);
    const under = !rule.path
      ? undefined
      : rule.path.endsWith('/')
        ? like(auditEvents.path, `${escapeLike(rule.path)}%`)
        : or(eq(auditEvents.path, rule.path), like(auditEvents.path, `${escapeLike(rule.path)}/%`));
    const [files] = await this.d.db
      .select({ n: sql<number>`count(distinct ${auditEvents.path})::int` })
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.userName, user),
          gte(auditEvents.at, since),
          inArray(auditEvents.op, ['open', 'read']),
          under,
        ),
      );
    // bytes are recorded on `close` (the file's size after a read; see docs/audit.md)
    const [bytes] = await this.d.db
      .select({ n: sql<string>`coalesce(sum(${auditEvents.bytes}), 0)::text` })
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.userName, user),
          gte(auditEvents.at, since),
          eq(auditEvents.op, 'close'),
          under,
        ),
      );
    const nFiles = Number(files?.n ?? 0);
    const nBytes = Number(bytes?.n ?? 0);
    const overFiles = rule.maxFiles !== null && nFiles > rule.maxFiles;
    const overBytes = rule.maxBytes !== null && nBytes > rule.maxBytes;
    if (!overFiles && !overBytes) return false;
    // once per window: not again while an alert of this rule for this user is younger than it
    const [recent] = await this.d.db
      .select({ id: securityEvents.id })
      .from(securityEvents)
      .where(
        and(
          eq(securityEvents.kind, 'read_threshold'),
          eq(securityEvents.userName, user),
          gte(securityEvents.at, since),
          sql`${securityEvents.details}->>'ruleId' = ${String(rule.id)}`,
        ),
      )
      .orderBy(desc(securityEvents.id))
      .limit(1);
    if (recent) return false;
    const what = [
      overFiles ? `${nFiles} files (limit ${rule.maxFiles})` : null,
      overBytes ? `${nBytes} bytes (limit ${rule.maxBytes})` : null,
    ]
      .filter(Boolean)
      .join(' and ');
    await this.d.security.raise({
      kind: 'read_threshold',
      severity: 'warning',
      message:
        `${user} read ${what} in the last ${rule.windowSeconds} s` +
        `${rule.path ? ` under ${rule.path}` : ''}${rule.stopServer ? '; the server is being stopped' : ''}`,
      user,
      path: rule.path,
      details: {
        ruleId: rule.id,
        files: nFiles,
        bytes: nBytes,
        windowSeconds: rule.windowSeconds,
        maxFiles: rule.maxFiles,
        maxBytes: rule.maxBytes,
        ...(rule.note ? { note: rule.note } : {}),
      },
      dedupeKey: `threshold:${rule.id}:${user}:${Math.floor(now.getTime() / (rule.windowSeconds! * 1000))}`,
    });
    return true;
  }
}
