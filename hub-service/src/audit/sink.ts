/**
 * Ships the audit stream and security events off the service, as JSON lines with ECS field names
 * (`@timestamp`, `event.action`, `user.name`, `file.path`, ...) that Elastic and Datadog map
 * without a pipeline: to a file a log shipper tails (`file:/path/audit.jsonl`) or POSTed in
 * batches to an HTTP endpoint. Each audit line carries its chain hash, so the shipped copy is the
 * outside witness the hash chain needs.
 */
import { appendFile } from 'node:fs/promises';
import type { Logger } from '../logger.js';
import type { SecurityEventRow } from '../security/events.js';
import type { AuditRow } from './chain.js';

export interface AuditSink {
  /** queues audit events (never throws; a failed delivery is retried with the next batch) */
  events(rows: AuditRow[]): void;
  security(e: SecurityEventRow): void;
  /** resolves when everything queued so far was delivered or given up on */
  flush(): Promise<void>;
  /** where the lines go, without credentials (for logs and the admin panel) */
  readonly target: string | null;
}

const ACTIONS = { open: 'file-open', read: 'file-read', close: 'file-close' } as const;

/** One audit event as an ECS document. */
export function ecsAudit(r: AuditRow): Record<string, unknown> {
  const action = ACTIONS[r.op] ?? r.op;
  return {
    '@timestamp': r.at.toISOString(),
    message: `${r.userName} ${r.op} ${r.path}`,
    event: {
      kind: 'event',
      category: ['file'],
      type: ['access'],
      action,
      dataset: 'ngsci.audit',
      id: String(r.id),
      created: r.receivedAt.toISOString(),
      // ECS durations are nanoseconds
      ...(r.durationMs !== null ? { duration: r.durationMs * 1_000_000 } : {}),
    },
    user: { name: r.userName },
    file: { path: r.path, ...(r.bytes !== null ? { size: r.bytes } : {}) },
    ...(r.instanceId ? { host: { id: r.instanceId } } : {}),
    labels: { server: r.serverName },
    ngsci: { chain: r.chain, prev_hash: r.prevHash, hash: r.hash },
  };
}

const SEVERITY = { info: 1, warning: 3, critical: 5 } as const;

/** One security event as an ECS alert. */
export function ecsSecurity(e: SecurityEventRow): Record<string, unknown> {
  return {
    '@timestamp': e.at,
    message: e.message,
    log: {
      level: e.severity === 'critical' ? 'critical' : e.severity === 'warning' ? 'warn' : 'info',
    },
    event: {
      kind: 'alert',
      category: ['intrusion_detection'],
      action: e.kind,
      dataset: 'ngsci.security',
      id: String(e.id),
      severity: SEVERITY[e.severity],
    },
    ...(e.user ? { user: { name: e.user } } : {}),
    ...(e.path ? { file: { path: e.path } } : {}),
    ...(e.instanceId ? { host: { id: e.instanceId } } : {}),
    ...(e.server ? { labels: { server: e.server } } : {}),
    ngsci: { security: e.details ?? {} },
  };
}

/** A sink that drops everything (no NGSCI_AUDIT_SINK). */
export const noSink: AuditSink = {
  events: () => {},
  security: () => {},
  flush: async () => {},
  target: null,
};

/** Lines waiting for delivery beyond this many are dropped, oldest first, with a warning. */
const MAX_PENDING = 100_000;

/**
 * The sink named by NGSCI_AUDIT_SINK: `file:/abs/path.jsonl` or an http(s) URL. Deliveries run
 * one at a time, in order; a failed HTTP POST keeps its lines for the next attempt.
 */
export function createAuditSink(
  spec: string | undefined,
  opts: { logger: Logger; fetch?: typeof fetch; timeoutSeconds?: number },
): AuditSink {
  if (!spec) return noSink;
  const log = opts.logger;
  let deliver: (lines: string[]) => Promise<void>;
  let target: string;
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    target = `file:${path}`;
    deliver = (lines) => appendFile(path, lines.join(''), { mode: 0o600 });
  } else {
    const url = new URL(spec);
    // fetch refuses credentials in a URL: user:password@ becomes Basic auth, never logged
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (url.username || url.password) {
      const basic = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    target = `${url.protocol}//${url.host}${url.pathname}`;
    const doFetch = opts.fetch ?? fetch;
    deliver = async (lines) => {
      const res = await doFetch(url, {
        method: 'POST',
        headers,
        body: lines.join(''),
        signal: AbortSignal.timeout((opts.timeoutSeconds ?? 10) * 1000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`the sink answered ${res.status}`);
    };
  }

  let pending: string[] = [];
  let running: Promise<void> | null = null;
  let failing = false;

  const drain = async (): Promise<void> => {
    while (pending.length) {
      const batch = pending.slice(0, 1000);
      try {
        await deliver(batch);
        pending = pending.slice(batch.length);
        if (failing) log.info({ sink: target }, 'audit sink: delivering again');
        failing = false;
      } catch (err) {
        if (!failing)
          log.warn(
            { sink: target, err: (err as Error).message },
            'audit sink: delivery failed; the lines are kept for the next attempt',
          );
        failing = true;
        return;
      }
    }
  };

  const kick = () => {
    running ??= drain().finally(() => {
      running = null;
    });
    return running;
  };

  const push = (docs: Record<string, unknown>[]) => {
    for (const d of docs) pending.push(`${JSON.stringify(d)}\n`);
    if (pending.length > MAX_PENDING) {
      const dropped = pending.length - MAX_PENDING;
      pending = pending.slice(dropped);
      log.error({ sink: target, dropped }, 'audit sink: unreachable for too long; lines dropped');
    }
    void kick();
  };

  return {
    target,
    events: (rows) => push(rows.map(ecsAudit)),
    security: (e) => push([ecsSecurity(e)]),
    async flush() {
      while (running) await running;
      if (pending.length) await kick();
    },
  };
}
