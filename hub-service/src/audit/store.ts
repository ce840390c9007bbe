/**
 * The data-access audit ledger: appends what instance agents report, and reads it back for
 * admins, as JSON pages or CSV.
 */
import { and, asc, eq, gt, gte, like, lt } from 'drizzle-orm';
import type { AuditEvent, AuditEventInput } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { auditEvents } from '../db/schema.js';

export interface AuditFilter {
  user?: string;
  pathPrefix?: string;
  from?: Date;
  to?: Date;
  after: number;
  limit: number;
}

export class AuditStore {
  constructor(private readonly db: Db) {}

  async append(
    user: string,
    server: string,
    instanceId: string | null,
    events: AuditEventInput[],
  ): Promise<number> {
    if (!events.length) return 0;
    const rows = await this.db
      .insert(auditEvents)
      .values(
        events.map((e) => ({
          userName: user,
          serverName: server,
          instanceId,
          path: e.path,
          op: e.op,
          at: new Date(e.at),
          bytes: e.bytes ?? null,
          durationMs: e.durationMs ?? null,
        })),
      )
      .returning({ id: auditEvents.id });
    return rows.length;
  }

  async list(f: AuditFilter): Promise<AuditEvent[]> {
    const escaped = f.pathPrefix?.replace(/[\\%_]/g, (m) => `\\${m}`);
    const rows = await this.db
      .select()
      .from(auditEvents)
      .where(
        and(
          gt(auditEvents.id, f.after),
          f.user ? eq(auditEvents.userName, f.user) : undefined,
          escaped ? like(auditEvents.path, `${escaped}%`) : undefined,
          f.from ? gte(auditEvents.at, f.from) : undefined,
          f.to ? lt(auditEvents.at, f.to) : undefined,
        ),
      )
      .orderBy(asc(auditEvents.id))
      .limit(f.limit);
    return rows.map((r) => ({
      id: r.id,
      user: r.userName,
      server: r.serverName,
      instanceId: r.instanceId,
      path: r.path,
      op: r.op,
      at: r.at.toISOString(),
      bytes: r.bytes,
      durationMs: r.durationMs,
      receivedAt: r.receivedAt.toISOString(),
    }));
  }
}

const CSV_COLUMNS = [
  'id',
  'at',
  'user',
  'server',
  'instanceId',
  'path',
  'op',
  'bytes',
  'durationMs',
  'receivedAt',
] as const;

/** RFC 4180 CSV; a cell that starts with = + - @ is prefixed with ' so spreadsheets do not run it. */
export function toCsv(events: AuditEvent[]): string {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    let s = String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of events) lines.push(CSV_COLUMNS.map((k) => cell(e[k])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
