/**
 * `POST /api/v1/bootstrap`: a cloud machine, at boot, trades its single-use bootstrap token
 * (`Authorization: Bearer <token>`, from its user-data) for its server's environment. No hub
 * token here: the machine has none until this answers. Mounted outside the hub-token middleware.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { newRouter } from '../app.js';
import type { BootstrapTokens } from '../bootstrap/tokens.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

const BootstrapRequest = z
  .object({
    instanceId: z
      .uuid()
      .optional()
      .describe('the instance the machine believes it is; checked against the token'),
  })
  .meta({ id: 'BootstrapRequest' });

const BootstrapResponse = z
  .object({
    env: z.record(z.string(), z.string()).describe("the single-user server's environment"),
  })
  .meta({ id: 'BootstrapResponse' });

const BEARER = /^Bearer\s+(\S{16,512})$/i;

export function bootstrapRoutes(deps: { bootstrap: BootstrapTokens }) {
  const r = newRouter();
  r.openAPIRegistry.registerComponent('securitySchemes', 'bootstrapToken', {
    type: 'http',
    scheme: 'bearer',
    description: "a cloud machine's single-use bootstrap token, from its user-data",
  });
  r.openapi(
    createRoute({
      method: 'post',
      path: '/bootstrap',
      security: [{ bootstrapToken: [] }],
      description:
        'Spends a single-use bootstrap token and answers the environment of the machine it was issued for. A second use or an expired token answers 401.',
      request: {
        body: { content: { 'application/json': { schema: BootstrapRequest } }, required: false },
      },
      responses: { 200: json(BootstrapResponse, 'the environment, once'), ...errors(400, 401) },
    }),
    async (c) => {
      const m = BEARER.exec(c.req.header('authorization') ?? '');
      if (!m?.[1])
        throw new ApiError(
          401,
          'unauthenticated',
          'send the bootstrap token as "Authorization: Bearer <token>"',
        );
      let instanceId: string | undefined;
      const text = await c.req.text();
      if (text.trim()) {
        const body = BootstrapRequest.parse(JSON.parse(text));
        instanceId = body.instanceId;
      }
      const { env } = await deps.bootstrap.redeem(m[1], instanceId);
      c.header('cache-control', 'no-store');
      return c.json({ env }, 200);
    },
  );
  return r;
}
