/**
 * `POST /api/v1/bootstrap`: a cloud machine, at boot, trades its single-use bootstrap token
 * (`Authorization: Bearer <token>`, from its user-data) and a proof of its cloud identity (from
 * its metadata service) for its server's environment and its agent's credential. No hub token
 * here: the machine has none until this answers. Mounted outside the hub-token middleware.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { newRouter } from '../http.js';
import { IdentityNotYetKnown, type BootstrapTokens } from '../bootstrap/tokens.js';
import { ApiError } from '../errors.js';
import { errors, json } from './common.js';

const base64 = (max: number) =>
  z
    .string()
    .min(16)
    .max(max)
    .regex(/^[A-Za-z0-9+/=\s]+$/, 'base64');

const IdentityProof = z
  .discriminatedUnion('cloud', [
    z.object({
      cloud: z.literal('aws'),
      document: z
        .string()
        .min(2)
        .max(16_384)
        .describe('/latest/dynamic/instance-identity/document'),
      pkcs7: base64(16_384).describe('/latest/dynamic/instance-identity/pkcs7, as served'),
    }),
    z.object({
      cloud: z.literal('gcp'),
      jwt: z
        .string()
        .max(16_384)
        .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a JWT')
        .describe('the instance identity token (audience = the service URL, format=full)'),
    }),
    z.object({
      cloud: z.literal('azure'),
      attested: base64(32_768).describe(
        'the `signature` of /metadata/attested/document, fetched with the token-derived nonce',
      ),
    }),
  ])
  .meta({ id: 'IdentityProof' });

const BootstrapRequest = z
  .object({
    instanceId: z
      .uuid()
      .optional()
      .describe('the instance the machine believes it is; checked against the token'),
    identity: IdentityProof.optional().describe(
      "the machine's cloud identity proof; required unless NGSCI_IDENTITY_REQUIRED=false",
    ),
  })
  .meta({ id: 'BootstrapRequest' });

const BootstrapResponse = z
  .object({
    env: z.record(z.string(), z.string()).describe("the single-user server's environment"),
    agentToken: z
      .string()
      .optional()
      .describe("the instance agent's credential, for a root-only file on the machine"),
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
        'Spends a single-use bootstrap token and answers the environment of the machine it was issued for, once the machine proved its cloud identity. A retry by the same proven machine within NGSCI_BOOTSTRAP_REPEAT_WINDOW answers the same; any other second use or an expired token answers 401; a wrong or unverifiable identity answers 401 identity_refused; a proof that arrives before the machine is known answers 503 with Retry-After.',
      request: {
        body: { content: { 'application/json': { schema: BootstrapRequest } }, required: false },
      },
      responses: {
        200: json(BootstrapResponse, 'the environment and the agent credential'),
        ...errors(400, 401, 503),
      },
    }),
    async (c) => {
      const m = BEARER.exec(c.req.header('authorization') ?? '');
      if (!m?.[1])
        throw new ApiError(
          401,
          'unauthenticated',
          'send the bootstrap token as "Authorization: Bearer <token>"',
        );
      let body: z.infer<typeof BootstrapRequest> = {};
      const text = await c.req.text();
      if (text.trim()) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new ApiError(400, 'bad_request', 'the request body is not JSON');
        }
        body = BootstrapRequest.parse(parsed);
      }
      c.header('cache-control', 'no-store');
      try {
        const { env, agentToken } = await deps.bootstrap.redeem(m[1], {
          instanceId: body.instanceId,
          proof: body.identity,
        });
        return c.json({ env, ...(agentToken ? { agentToken } : {}) }, 200);
      } catch (err) {
        // the machine's retry loop (and curl's) waits this long before it asks again
        if (err instanceof IdentityNotYetKnown)
          c.header('retry-after', String(err.retryAfterSeconds));
        throw err;
      }
    },
  );
  return r;
}
