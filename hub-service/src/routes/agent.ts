/**
 * What `ngsci agent` and a cloud machine's boot checks report from an instance (GPU samples,
 * kernel states, spot or preemption notices, the boot report), authenticated by the instance's
 * own agent credential (agent/credentials.ts): the instance, its user and server come from the
 * credential, never from the body. Also the GPU status the JupyterLab usage panel reads, with
 * the user's token. At a spot notice the answer tells the agent whether the researcher keeps
 * their kernel variables (keepState); the agent then saves them and reports what was kept
 * (POST /agent/spot/variables), which the researcher is told.
 */
import { createRoute, z } from '@hono/zod-openapi';
import {
  Accepted,
  BootReport,
  GpuReport,
  GpuStatus,
  KernelReport,
  ServerName,
  SPOT_NOTICE_PHRASE,
  SpotNotice,
} from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import type { AgentIdentity } from '../agent/credentials.js';
import { GpuStore } from '../agent/gpu.js';
import { PreemptionChoiceStore } from '../instances/preemption-choice.js';
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

/** The agent's spot report: the notice, and whether the agent can save the kernel variables. */
export const AgentSpotNotice = SpotNotice.extend({
  savesVariables: z.boolean().optional().meta({
    description:
      "the agent can save the notebooks' kernel variables (it has its server's URL and token)",
  }),
}).meta({ id: 'AgentSpotNotice' });

export const AgentSpotAnswer = z
  .object({
    ok: z.literal(true),
    keepState: z.boolean().meta({
      description:
        "the researcher keeps their variables at a spot notice (GET /me/preemption keepState): the agent saves each notebook's kernel variables now",
    }),
  })
  .meta({ id: 'AgentSpotAnswer' });

const Name = z.string().min(1).max(255);
export const SpotVariablesReport = z
  .object({
    notebooks: z.number().int().min(0).max(10_000).meta({ description: 'notebooks asked' }),
    kept: z
      .array(
        z
          .object({
            notebook: z.string().min(1).max(1024),
            variables: z
              .array(z.object({ name: Name, type: z.string().max(255) }).strict())
              .max(200),
          })
          .strict(),
      )
      .max(200),
    notKept: z
      .array(
        z
          .object({
            notebook: z.string().min(1).max(1024),
            variable: Name.nullable().meta({ description: 'null: the notebook as a whole' }),
            reason: z.string().max(2000),
            code: z.string().max(64).optional().meta({ description: 'busy, no_room, ...' }),
          })
          .strict(),
      )
      .max(200),
    error: z
      .object({ code: z.string().min(1).max(64), message: z.string().max(2000) })
      .strict()
      .optional()
      .meta({ description: 'the save could not run at all (timeout, no Python, no server)' }),
  })
  .strict()
  .meta({ id: 'SpotVariablesReport' });
type SpotVariablesReport = z.infer<typeof SpotVariablesReport>;

/** What the researcher is told about the agent's save (names only, never values). */
export function variablesNotice(r: SpotVariablesReport): {
  level: 'info' | 'warning';
  title: string;
  body: string;
} {
  const list = (xs: string[], n = 12) =>
    xs.length > n ? `${xs.slice(0, n).join(', ')} and ${xs.length - n} more` : xs.join(', ');
  if (r.error)
    return {
      level: 'warning',
      title: "Your notebooks' variables were not saved",
      body: `The save on the machine failed: ${r.error.message}. Save what you need now.`,
    };
  if (!r.notebooks)
    return {
      level: 'info',
      title: 'No notebook was running',
      body: 'No notebook kernel was running on the machine: no variables to keep.',
    };
  const kept = r.kept
    .filter((k) => k.variables.length)
    .map((k) => `${k.notebook}: ${list(k.variables.map((v) => v.name))}`);
  const notKept = r.notKept.map((n) =>
    n.variable ? `${n.notebook}: ${n.variable} (${n.reason})` : `${n.notebook}: ${n.reason}`,
  );
  return {
    level: notKept.length ? 'warning' : 'info',
    title: kept.length
      ? "Your notebooks' variables were saved"
      : "None of your notebooks' variables could be saved",
    body:
      (kept.length
        ? `Kept: ${kept.join('; ')}. They come back when you open each notebook after the relaunch.`
        : 'Nothing was kept.') + (notKept.length ? ` Not kept: ${notKept.join('; ')}.` : ''),
  };
}

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
  const choices = new PreemptionChoiceStore(deps.database.db);
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
        'stopped) as its `onPreemption` says, instead of failing. `keepState` in the answer: the ' +
        "researcher keeps their variables, so the agent saves each notebook's kernel variables " +
        'and reports them to POST /agent/spot/variables.',
      request: {
        body: { content: { 'application/json': { schema: AgentSpotNotice } }, required: true },
      },
      responses: {
        202: json(AgentSpotAnswer, 'notice sent (or already sent)'),
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
        `${CLOUD_NAMES[b.cloud]} ${SPOT_NOTICE_PHRASE}${when}; open documents are being saved`,
      );
      const then = preemptionWords(marked?.onPreemption ?? null);
      const keepState = (await choices.get(user))?.keepState ?? false;
      const variables = !keepState
        ? ''
        : b.savesVariables
          ? " Your notebooks' variables are being saved on the machine; a notice follows with what was kept."
          : " Your notebooks' variables are saved only by an open JupyterLab page of this server.";
      await deps.notifier.send({
        user,
        kind: 'spot',
        level: 'warning',
        title: `${CLOUD_NAMES[b.cloud]} is reclaiming your machine`,
        body: `${CLOUD_NAMES[b.cloud]} will ${b.action.toLowerCase()} the spot machine of server '${server}'${when}. Open documents are being saved; save anything else now.${variables}${then}`,
        server,
        instanceId,
        dedupeKey: `spot:${instanceId}:${b.action}:${b.at ?? ''}`,
      });
      return c.json({ ok: true as const, keepState }, 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/agent/spot/variables',
      security: agentSecurity,
      description:
        "What the agent's keep-state save at a spot notice kept in each notebook (variable names " +
        'and types, never values) and what it did not (busy kernels, variables that cannot be ' +
        'serialized, no room...). The researcher gets one `spot` notice saying so per instance.',
      request: {
        body: {
          content: { 'application/json': { schema: SpotVariablesReport } },
          required: true,
        },
      },
      responses: {
        202: json(Accepted, 'notice sent (or already sent)'),
        ...errors(400, 401, 403, 429),
      },
    }),
    async (c) => {
      const { user, server, instanceId } = c.get('agent');
      const n = variablesNotice(c.req.valid('json'));
      await deps.notifier.send({
        user,
        kind: 'spot',
        level: n.level,
        title: n.title,
        body: `Server '${server}': ${n.body}`,
        server,
        instanceId,
        dedupeKey: `spot-variables:${instanceId}`,
      });
      return c.json({ ok: true as const }, 202);
    },
  );

  return r;
}
