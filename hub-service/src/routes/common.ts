/** Pieces every route file uses: the error responses in the OpenAPI document, JSON helpers. */
import { ErrorBody } from '@ngsci/contract';
import type { z } from 'zod';

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, json(ErrorBody, errorDescriptions[s] ?? 'error')]));

const errorDescriptions: Record<number, string> = {
  400: 'invalid input (code says what)',
  401: 'no valid JupyterHub token',
  403: 'the token lacks the scope',
  404: 'no such thing',
  409: 'the instance is busy with another change',
  413: 'the request body is larger than this route accepts (payload_too_large)',
  429: 'too many requests; Retry-After says when to try again',
  502: 'JupyterHub did not answer as expected',
  503: 'JupyterHub could not be asked (e.g. for the user’s groups): the request was refused, try again',
};

export const AUTH_ERRORS = [401, 403] as const;

/** A router's registry of OpenAPI definitions (OpenAPIHono's `openAPIRegistry`). */
interface RouteRegistry {
  definitions: readonly {
    type: string;
    route?: {
      method: string;
      path: string;
      security?: unknown;
      request?: { body?: unknown; query?: unknown; params?: unknown; headers?: unknown };
      responses: Record<string | number, unknown>;
    };
  }[];
}

/**
 * Adds to every route's declared responses the refusals that app.ts's shared middleware answers
 * on its behalf, so the OpenAPI document lists every status a route can give (API fuzzing found
 * them missing): 400 where there is input to validate (a malformed JSON body, a query or path
 * parameter out of range), 413 where a body is accepted (limits/body.ts), and 429 on the routes
 * behind hub tokens (failed token lookups per address) and on every change (writes per caller);
 * and 431 where a query string or a header is read. A status a route already declares keeps its
 * own description.
 */
export function declareSharedRefusals(registry: RouteRegistry): void {
  for (const def of registry.definitions) {
    const route = def.route;
    if (def.type !== 'route' || !route) continue;
    const req = route.request ?? {};
    const write = ['post', 'put', 'patch', 'delete'].includes(route.method);
    // routes without their own `security` take the document's: a hub token (app.ts)
    const hubToken = route.security === undefined;
    const added: number[] = [];
    if (req.body || req.query || req.params || req.headers) added.push(400);
    if (req.body) added.push(413);
    if (hubToken || (write && route.path.includes('/agent/'))) added.push(429);
    const missing = added.filter((s) => !(s in route.responses));
    const responses = { ...route.responses, ...errors(...missing) };
    // a long query string can pass every maxLength and still not fit: Node's HTTP server (and
    // the hub's proxy, also Node) refuse a request line and headers over 16 KiB, without a body
    if ((req.query || req.headers) && !(431 in responses))
      responses[431] = {
        description:
          'the request line and headers are larger than 16 KiB (percent-encoded text grows up to ' +
          'nine times); refused by the HTTP server before the service reads it, with no body',
      };
    if (missing.length || responses[431] !== route.responses[431])
      def.route = { ...route, responses };
  }
}
