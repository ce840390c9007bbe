/**
 * What `ngsci agent` reports from an instance (GPU samples, spot or preemption notices), and the
 * GPU status the JupyterLab usage panel reads. The agent uses its server's token, so a report is
 * always about one of the caller's own servers.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { Accepted, GpuReport, GpuStatus, ServerName, SpotNotice } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../app.js';
import { GpuStore } from '../agent/gpu.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

const CLOUD_NAMES = { aws: 'AWS', gcp: 'Google Cloud', azure: 'Azure' } as const;

export function agentRoutes(deps: Pick<AppDeps, 'database' | 'store' | 'notifier'>) {
  const r = newRouter();
  const gpu = new GpuStore(deps.database.db);

  /** The caller's instance the report is about: the one named, if theirs, else the newest of the server. */
  const instanceOf = async (
    user: string,
    server: string,
    named: string | undefined,
  ): Promise<string | null> => {
    const latest = await deps.store.latest(user, server);
    if (!named || latest?.id === named) return latest?.id ?? named ?? null;
    const own = await deps.store.list({ user, includeEnded: true });
    if (!own.some((i) => i.id === named))
      throw new ApiError(403, 'forbidden', 'that instance is not yours');
    return named;
  };

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/gpu',
      request: { body: { content: { 'application/json': { schema: GpuReport } }, required: true } },
      responses: { 202: json(Accepted, 'stored'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const user = c.get('user').name;
      const b = c.req.valid('json');
      const server = b.server ?? 'default';
      await gpu.record(user, server, await instanceOf(user, server, b.instanceId), b.gpus);
      return c.json({ ok: true as const }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{server}/gpu',
      description:
        "The newest GPU sample of the server's agent; `gpus` is empty on a machine without GPUs.",
      request: {
        params: z.object({ server: ServerName }),
        query: z.object({ user: z.string().min(1).max(255).optional() }),
      },
      responses: { 200: json(GpuStatus, 'GPU utilisation and memory'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const me = c.get('user');
      const asked = c.req.valid('query').user;
      if (asked && asked !== me.name && !me.admin)
        throw new ApiError(403, 'forbidden', "only admins may read another user's servers");
      return c.json(await gpu.latest(asked ?? me.name, c.req.valid('param').server), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/spot',
      description:
        'The cloud announced that it will reclaim a spot or preemptible machine. The user gets one ' +
        '`spot` notice per announcement (JupyterLab saves open documents when it sees it).',
      request: {
        body: { content: { 'application/json': { schema: SpotNotice } }, required: true },
      },
      responses: { 202: json(Accepted, 'notice sent (or already sent)'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      const user = c.get('user').name;
      const b = c.req.valid('json');
      const server = b.server ?? 'default';
      const instanceId = await instanceOf(user, server, b.instanceId);
      const when = b.at
        ? ` at ${new Date(b.at).toISOString().slice(11, 19)} UTC`
        : ' within minutes';
      await deps.notifier.send({
        user,
        kind: 'spot',
        level: 'warning',
        title: `${CLOUD_NAMES[b.cloud]} is reclaiming your machine`,
        body: `${CLOUD_NAMES[b.cloud]} will ${b.action.toLowerCase()} the spot machine of server '${server}'${when}. Open documents are being saved; save anything else now.`,
        server,
        ...(instanceId ? { instanceId } : {}),
        dedupeKey: `spot:${instanceId ?? server}:${b.action}:${b.at ?? ''}`,
      });
      return c.json({ ok: true as const }, 202);
    },
  );

  return r;
}
