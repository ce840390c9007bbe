/**
 * The data-access audit: instance agents post batches of file events with their own credential
 * (the user, server and instance come from it, never from the body); admins list, export and
 * verify the hash chains, manage honeypot and threshold rules, and read security events.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import {
  AuditAccepted,
  AuditBatch,
  AuditList,
  AuditQuery,
  AuditRule,
  AuditRuleInput,
  AuditRuleList,
  AuditVerification,
  AuditVerifyQuery,
  SecurityEventList,
  SecurityEventQuery,
} from '@ngsci/contract';
import { eq } from 'drizzle-orm';
import { newRouter, type AppDeps, type AppEnv } from '../http.js';
import { verifyChains } from '../audit/chain.js';
import { AuditMonitors, toRule } from '../audit/monitors.js';
import { AuditStore, toCsv } from '../audit/store.js';
import { auditRules } from '../db/schema.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

export function auditRoutes(
  deps: Pick<AppDeps, 'database' | 'auth' | 'security' | 'lifecycle' | 'logger' | 'auditSink'>,
) {
  const r = newRouter();
  const db = deps.database.db;
  const audit = new AuditStore(db);
  const monitors = new AuditMonitors({
    db,
    security: deps.security,
    lifecycle: deps.lifecycle,
    logger: deps.logger,
  });

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/audit',
      description:
        "A batch of file events from an instance's agent, with the agent credential only. The " +
        "events join the instance's hash chain; honeypot and threshold rules are checked before " +
        'the answer.',
      security: [{ agentToken: [] }],
      request: {
        body: { content: { 'application/json': { schema: AuditBatch } }, required: true },
      },
      responses: { 202: json(AuditAccepted, 'stored'), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      const agent = c.get('agent');
      const b = c.req.valid('json');
      if (
        (b.server && b.server !== agent.server) ||
        (b.instanceId && b.instanceId !== agent.instanceId)
      )
        throw new ApiError(
          403,
          'forbidden',
          'an agent reports for its own instance only: the batch names another server or instance',
        );
      const rows = await audit.append(
        { user: agent.user, server: agent.server, instanceId: agent.instanceId },
        b.events,
      );
      deps.auditSink.events(rows);
      try {
        await monitors.check(rows);
      } catch (err) {
        // the events are stored; a monitor failure must be loud but not lose them
        c.get('log').error({ err, instance: agent.instanceId }, 'audit monitors failed');
      }
      return c.json({ accepted: rows.length }, 202);
    },
  );

  r.use('/admin/audit', deps.auth.adminOnly());
  r.use('/admin/audit/*', deps.auth.adminOnly());
  r.use('/admin/security-events', deps.auth.adminOnly());

  r.openapi(
    createRoute({
      method: 'get',
      path: '/admin/audit',
      description:
        'Admins: the data-access events, oldest first, filtered by user, path prefix and time. ' +
        '`format=csv` answers text/csv (the same page); page on with `after=nextAfter`.',
      request: { query: AuditQuery },
      responses: {
        200: {
          content: {
            'application/json': { schema: AuditList },
            'text/csv': { schema: z.string() },
          },
          description: 'events',
        },
        ...errors(400, 401, 403),
      },
    }),
    (async (c: Context<AppEnv>) => {
      const q = AuditQuery.parse(c.req.query());
      if (q.from && q.to && new Date(q.from) >= new Date(q.to))
        throw new ApiError(400, 'bad_request', '`from` must be before `to`');
      const events = await audit.list({
        user: q.user,
        pathPrefix: q.path,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        after: q.after,
        limit: q.limit,
      });
      const nextAfter = events.length === q.limit ? events[events.length - 1]!.id : null;
      if (q.format === 'csv') {
        c.header('content-disposition', 'attachment; filename="ngsci-audit.csv"');
        if (nextAfter !== null) c.header('x-next-after', String(nextAfter));
        return c.body(toCsv(events), 200, { 'content-type': 'text/csv; charset=utf-8' });
      }
      return c.json({ events, nextAfter }, 200);
    }) as never,
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/admin/audit/verify',
      description:
        'Admins: recomputes every hash chain (or one, `?chain=<instance id>`) from its anchor and ' +
        'names the first broken link of each broken chain.',
      request: { query: AuditVerifyQuery },
      responses: { 200: json(AuditVerification, 'the result'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await verifyChains(db, { chain: q.chain }), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/admin/audit/rules',
      description: 'Admins: honeypot paths and read thresholds.',
      responses: { 200: json(AuditRuleList, 'rules'), ...errors(401, 403) },
    }),
    async (c) => {
      const rows = await db.select().from(auditRules).orderBy(auditRules.id);
      return c.json({ rules: rows.map(toRule) }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/admin/audit/rules',
      description:
        'Admins: a honeypot (any open or read of the path is a critical alert at once) or a ' +
        'threshold (files and/or bytes read per user over a sliding window: a warning once per ' +
        'window). `stopServer` also stops the server that tripped it.',
      request: {
        body: { content: { 'application/json': { schema: AuditRuleInput } }, required: true },
      },
      responses: { 201: json(AuditRule, 'created'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const b = c.req.valid('json');
      const [row] = await db
        .insert(auditRules)
        .values({
          kind: b.kind,
          path: b.path ?? null,
          windowSeconds: b.kind === 'threshold' ? b.windowSeconds : null,
          maxFiles: b.kind === 'threshold' ? (b.maxFiles ?? null) : null,
          maxBytes: b.kind === 'threshold' ? (b.maxBytes ?? null) : null,
          stopServer: b.stopServer,
          note: b.note ?? null,
          createdBy: c.get('user').name,
        })
        .returning();
      c.get('log').info({ rule: row!.id, kind: b.kind, path: b.path }, 'audit rule added');
      return c.json(toRule(row!), 201);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/admin/audit/rules/{id}',
      request: { params: z.object({ id: z.coerce.number().int().min(1) }) },
      responses: { 204: { description: 'removed' }, ...errors(400, 401, 403, 404) },
    }),
    (async (c: Context<AppEnv>) => {
      const id = z.coerce.number().int().min(1).parse(c.req.param('id'));
      const gone = await db.delete(auditRules).where(eq(auditRules.id, id)).returning();
      if (!gone.length) throw new ApiError(404, 'not_found', `no audit rule ${id}`);
      c.get('log').info({ rule: id }, 'audit rule removed');
      return c.body(null, 204);
    }) as never,
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/admin/security-events',
      description:
        'Admins: security events, newest first (honeypot reads, read thresholds, silent agents, ' +
        'refused bootstraps, audit pruning); filter by `kind` and `since`.',
      request: { query: SecurityEventQuery },
      responses: { 200: json(SecurityEventList, 'events'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const events = await deps.security.list({
        kind: q.kind,
        since: q.since ? new Date(q.since) : undefined,
        limit: q.limit,
      });
      return c.json({ events }, 200);
    },
  );

  return r;
}
