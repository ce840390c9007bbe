/**
 * What `ngsci agent` and a cloud machine's boot checks report from an instance (GPU samples,
 * kernel states, spot or preemption notices, the boot report), authenticated by the instance's
 * own agent credential (agent/credentials.ts): the instance, its user and server come from the
 * credential, never from the body. Also the GPU status the JupyterLab usage panel reads, with
 * the user's token.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  Accepted,
  BootReport,
  GpuReport,
  GpuStatus,
  KernelReport,
  ServerName,
  SpotNotice,
} from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import type { AgentIdentity } from '../agent/credentials.js';
import { GpuStore } from '../agent/gpu.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

const CLOUD_NAMES = { aws: 'AWS', gcp: 'Google Cloud', azure: 'Azure' } as const;

/** A body may name its server and instance (older agents do); they must be the credential's. */
function checkClaims(agent: AgentIdentity, b: { server?: string; instanceId?: string }): void {
  if (
    (b.server && b.server !== agent.server) ||
    (b.instanceId && b.instanceId !== agent.instanceId)
  )
    throw new ApiError(403, 'forbidden', "the report names another instance than the agent's own");
}

const agentSecurity = [{ agentToken: [] }];

/** What the spot notice adds about what follows the preemption (instances/preemption.ts). */
function preemptionWords(choice: 'on-demand' | 'spot' | 'stop' | null): string {
  if (choice === 'on-demand') return ' When the machine goes, the server starts again on demand.';
  if (choice === 'spot') return ' When the machine goes, the server starts again on spot.';
  if (choice === 'stop') return ' When the machine goes, the server stays stopped.';
  return '';
}

export function agentRoutes(
  deps: Pick<AppDeps, 'database' | 'store' | 'notifier' | 'agents' | 'bootReports'>,
) {
  const r = newRouter();
  const gpu = new GpuStore(deps.database.db);
  r.openAPIRegistry.registerComponent('securitySchemes', 'agentToken', {
    type: 'http',
    scheme: 'bearer',
    description: "an instance's agent credential (ngsa_...), handed to the agent at start",
  });

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/gpu',
      security: agentSecurity,
      request: { body: { content: { 'application/json': { schema: GpuReport } }, required: true } },
      responses: { 202: json(Accepted, 'stored'), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      const agent = c.get('agent');
      const b = c.req.valid('json');
      checkClaims(agent, b);
      await gpu.record(agent.user, agent.server, agent.instanceId, b.gpus);
      return c.json({ ok: true as const }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/kernels',
      security: agentSecurity,
      description:
        "How many of the server's kernels exist and how many are executing. Idle culling keeps a " +
        'server whose agent reported a busy kernel in the last two minutes.',
      request: {
        body: { content: { 'application/json': { schema: KernelReport } }, required: true },
      },
      responses: { 202: json(Accepted, 'stored'), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      const b = c.req.valid('json');
      await deps.agents.recordKernels(c.get('agent').instanceId, b.total, b.busy);
      return c.json({ ok: true as const }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/boot',
      security: agentSecurity,
      description:
        "A cloud machine's checks before its server starts: the hub's API answers from the " +
        'machine, the GPU is visible in the container, the image has the agent, the notebook user ' +
        'cannot become root. A failure fails the start; a failure of a running instance (`rebooted`) ' +
        'ends it as lost and removes its machine.',
      request: {
        body: { content: { 'application/json': { schema: BootReport } }, required: true },
      },
      responses: { 202: json(Accepted, 'stored'), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      await deps.bootReports.record(c.get('agent').instanceId, c.req.valid('json'));
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
      security: agentSecurity,
      description:
        'The cloud announced that it will reclaim a spot or preemptible machine. The user gets one ' +
        '`spot` notice per announcement (JupyterLab saves open documents when it sees it). The ' +
        'instance remembers it: when its machine then goes, the server is started again (or left ' +
        'stopped) as its `onPreemption` says, instead of failing.',
      request: {
        body: { content: { 'application/json': { schema: SpotNotice } }, required: true },
      },
      responses: {
        202: json(Accepted, 'notice sent (or already sent)'),
        ...errors(400, 401, 403, 429),
      },
    }),
    async (c) => {
      const agent = c.get('agent');
      const b = c.req.valid('json');
      checkClaims(agent, b);
      const { user, server, instanceId } = agent;
      const when = b.at
        ? ` at ${new Date(b.at).toISOString().slice(11, 19)} UTC`
        : ' within minutes';
      // remembered on the instance: when the machine then goes, it was preempted, not crashed
      const marked = await deps.store.markSpotNotice(
        instanceId,
        `${CLOUD_NAMES[b.cloud]} announced it takes this spot machine back${when}; open documents are being saved`,
      );
      const then = preemptionWords(marked?.onPreemption ?? null);
      await deps.notifier.send({
        user,
        kind: 'spot',
        level: 'warning',
        title: `${CLOUD_NAMES[b.cloud]} is reclaiming your machine`,
        body: `${CLOUD_NAMES[b.cloud]} will ${b.action.toLowerCase()} the spot machine of server '${server}'${when}. Open documents are being saved; save anything else now.${then}`,
        server,
        instanceId,
        dedupeKey: `spot:${instanceId}:${b.action}:${b.at ?? ''}`,
      });
      return c.json({ ok: true as const }, 202);
    },
  );

  return r;
}
