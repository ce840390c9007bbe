/**
 * The caller's own default for spot preemption (instances/preemption-choice.ts): GET shows the
 * choice, the admin's default and which applies; PUT sets the choice, null clears it. A launch
 * that names its own onPreemption still wins over both. keepState: at a spot notice the machine's
 * agent saves each notebook's kernel variables (as a resize with keep-state; routes/agent.ts), an
 * open page saves them where the agent cannot (cloud VMs today); they are restored after the
 * relaunch (labextension notices.ts).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { OnPreemption } from '@ngsci/contract';
import { newRouter, type AppDeps } from '../http.js';
import {
  PreemptionChoiceStore,
  preemptionDefaultFor,
  type PreemptionChoice,
} from '../instances/preemption-choice.js';
import { errors, json } from './common.js';

export const PreemptionChoiceInput = z
  .object({
    onPreemption: OnPreemption.nullable().optional().meta({
      description:
        "your default for spot launches that do not name one; null clears it (the admin's default applies); absent: unchanged",
    }),
    keepState: z.boolean().optional().meta({
      description:
        "at a spot notice, also save each notebook's kernel variables (restored after the relaunch); absent: unchanged",
    }),
  })
  .strict()
  .refine((b) => b.onPreemption !== undefined || b.keepState !== undefined, {
    message: 'give onPreemption, keepState or both',
  })
  .meta({ id: 'PreemptionChoiceInput' });

export const PreemptionChoiceAnswer = z
  .object({
    user: z.string(),
    chosen: OnPreemption.nullable().meta({ description: 'your own default; null: none' }),
    adminDefault: OnPreemption.meta({
      description: "the admin's default (NGSCI_PREEMPTION_DEFAULT)",
    }),
    effective: OnPreemption.meta({
      description: 'what a spot launch or spawn that names no onPreemption gets',
    }),
    source: z.enum(['user', 'admin']).meta({ description: 'whose default applies' }),
    keepState: z.boolean().meta({
      description:
        "at a spot notice each notebook's kernel variables are saved (by the machine's agent, or an open JupyterLab page where the agent cannot reach the kernels) and restored after the relaunch",
    }),
    updatedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'PreemptionChoice' });

export function preemptionRoutes(deps: Pick<AppDeps, 'database' | 'config'>) {
  const r = newRouter();
  const store = new PreemptionChoiceStore(deps.database.db);
  const adminDefault = deps.config.NGSCI_PREEMPTION_DEFAULT;

  const answer = (user: string, choice: PreemptionChoice | null) => {
    const d = preemptionDefaultFor(choice?.choice, adminDefault);
    return {
      user,
      chosen: choice?.choice ?? null,
      adminDefault,
      effective: d.onPreemption,
      source: d.source,
      keepState: choice?.keepState ?? false,
      updatedAt: choice?.updatedAt.toISOString() ?? null,
    };
  };

  r.openapi(
    createRoute({
      method: 'get',
      path: '/me/preemption',
      responses: {
        200: json(
          PreemptionChoiceAnswer,
          'your spot preemption default, the admin default and which applies',
        ),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const me = c.get('user');
      return c.json(answer(me.name, await store.get(me.name)), 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/me/preemption',
      request: {
        body: {
          content: { 'application/json': { schema: PreemptionChoiceInput } },
          required: true,
        },
      },
      responses: {
        200: json(PreemptionChoiceAnswer, 'set; spot launches from now on use it'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const me = c.get('user');
      const { onPreemption, keepState } = c.req.valid('json');
      return c.json(
        answer(
          me.name,
          await store.set(me.name, {
            ...(onPreemption !== undefined ? { choice: onPreemption } : {}),
            ...(keepState !== undefined ? { keepState } : {}),
          }),
        ),
        200,
      );
    },
  );
  return r;
}
