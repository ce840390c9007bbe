/**
 * The data-access audit ledger: appends what instance agents report to their instance's hash
 * chain (audit/chain.ts), and reads it back for admins, as JSON pages or CSV.
 */
import { and, asc, eq, gt, gte, like, lt } from 'drizzle-orm';
import type { AuditEvent, AuditEventInput } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { auditEvents } from '../db/schema.js';
import { appendToChain, type AuditRow, type ChainIdentity } from './chain.js';

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

  /** Appends a batch to the instance's chain; the stored rows, in order. */
  append(who: ChainIdentity, events: AuditEventInput[]): Promise<AuditRow[]> {
    return appendToChain(this.db, who, events);
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
    return rows.map(toEvent);
  }
}

export function toEvent(r: AuditRow): AuditEvent {
  return {
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
    chain: r.chain,
    hash: r.hash,
  };
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
  'hash',
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
