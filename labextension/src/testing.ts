/** Test doubles for the one HTTP seam: a fake `fetch` that answers from a route table. */
type Handler = (req: {
  method: string;
  url: URL;
  body: unknown;
  headers: Headers;
}) => Response | Promise<Response>;

export const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

export function fakeFetch(routes: Record<string, Handler>): {
  fetch: typeof fetch;
  calls: string[];
} {
  const calls: string[] = [];
  const f = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://hub.test');
    const method = init.method ?? 'GET';
    const key = `${method} ${url.pathname.replace(/^\/services\/ngsci\/api\/v1/, '')}`;
    calls.push(key);
    const h = routes[key];
    if (!h)
      return json(404, { code: 'not_found', message: `no route for ${key}`, requestId: 'r0' });
    return h({
      method,
      url,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
      headers: new Headers(init.headers),
    });
  }) as typeof fetch;
  return { fetch: f, calls };
}

/** What a route saw: the call, its token (none for admin calls) and its CSRF value. */
export interface Seen {
  key: string;
  auth: string | null;
  csrf: string | null;
  body: unknown;
}

/**
 * Wraps route answers so each call is written down in `seen` (its key without the service's
 * path prefix, its authorization and CSRF headers, its body) before it is answered.
 */
export function recorder(seen: Seen[]): (answer: () => Response) => Handler {
  return (answer) =>
    ({ method, url, headers, body }) => {
      seen.push({
        key: `${method} ${url.pathname.replace(/^\/services\/ngsci\/api\/v1/, '')}`,
        auth: headers.get('authorization'),
        csrf: headers.get('x-ngsci-csrf'),
        body,
      });
      return answer();
    };
}
