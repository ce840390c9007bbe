/**
 * The data-access audit: instance agents post batches of file events under the caller's own
 * name (a server token can only report for its owner); admins list and export them.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { AuditAccepted, AuditBatch, AuditList, AuditQuery } from '@ngsci/contract';
import { newRouter, type AppDeps, type AppEnv } from '../app.js';
import { AuditStore, toCsv } from '../audit/store.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

export function auditRoutes(deps: Pick<AppDeps, 'database' | 'store' | 'auth'>) {
  const r = newRouter();
  const audit = new AuditStore(deps.database.db);

  r.openapi(
    createRoute({
      method: 'post',
      path: '/audit/events',
      description: "A batch of file events from the agent on one of the caller's instances.",
      request: {
        body: { content: { 'application/json': { schema: AuditBatch } }, required: true },
      },
      responses: { 202: json(AuditAccepted, 'stored'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const user = c.get('user').name;
      const b = c.req.valid('json');
      const server = b.server ?? 'default';
      let instanceId = b.instanceId ?? null;
      const latest = await deps.store.latest(user, server);
      if (instanceId && latest?.id !== instanceId) {
        // an id that is not the caller's newest instance of that server is kept only if it is theirs
        const own = await deps.store.list({ user, includeEnded: true });
        if (!own.some((i) => i.id === instanceId))
          throw new ApiError(403, 'forbidden', 'that instance is not yours');
      }
      instanceId ??= latest?.id ?? null;
      const n = await audit.append(user, server, instanceId, b.events);
      return c.json({ accepted: n }, 202);
    },
  );

  r.use('/admin/audit', deps.auth.adminOnly());
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

  return r;
}
