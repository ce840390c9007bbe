/**
 * The caller's own idle timeout within the admin's bounds (contract idle.ts): GET shows the
 * choice, the bounds and what the culler uses; PUT sets a class or both, refusing a value outside
 * the bounds with 422 idle_timeout_out_of_bounds and the bounds in the message.
 */
import { createRoute } from '@hono/zod-openapi';
import { IdleTimeout, IdleTimeoutInput } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import { checkIdleRequest, type IdleChoice } from '../metering/idle-choice.js';
import { errors, json } from './common.js';

export function idleRoutes(deps: Pick<AppDeps, 'metering'>) {
  const r = newRouter();
  const quotas = deps.metering.quotas;

  const answer = async (user: string, groups: readonly string[], choice?: IdleChoice | null) => {
    const limits = await quotas.limitsFor(user, groups);
    // limitsFor read the stored choice; `choice` is the one just written (same values)
    return {
      user,
      cpu: limits.idle.cpu,
      gpu: limits.idle.gpu,
      updatedAt: (choice ?? (await quotas.idleChoices.get(user)))?.updatedAt?.toISOString() ?? null,
    };
  };

  r.openapi(
    createRoute({
      method: 'get',
      path: '/me/idle-timeout',
      responses: {
        200: json(IdleTimeout, 'your idle timeouts per size class, their bounds and what applies'),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const me = c.get('user');
      return c.json(await answer(me.name, me.groups), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/me/idle-timeout',
      request: {
        body: { content: { 'application/json': { schema: IdleTimeoutInput } }, required: true },
      },
      responses: {
        200: json(IdleTimeout, 'set; the culler uses it from its next pass'),
        ...errors(400, 401, 403, 422),
      },
    }),
    async (c) => {
      const me = c.get('user');
      const req = c.req.valid('json');
      checkIdleRequest((await quotas.limitsFor(me.name, me.groups)).idle, req);
      const saved = await quotas.idleChoices.set(me.name, req);
      return c.json(await answer(me.name, me.groups, saved), 200);
    },
  );
  return r;
}
