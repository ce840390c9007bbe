/**
 * Tests only (excluded from the build): the CLI's outside world as a fake service. `answer` gets
 * each request; every call is recorded with its method, path (with the query) and JSON body.
 */
import type { Io } from './output.js';

export const BASE = '/services/ngsci/api/v1';

export interface Call {
  method: string;
  /** path and query, e.g. /services/ngsci/api/v1/instances?user=ana */
  path: string;
  body: unknown;
}

export function fakeService(
  answer: (url: URL, init?: RequestInit) => Response | Promise<Response>,
  token = 'tok',
) {
  const out: string[] = [];
  const err: string[] = [];
  const calls: Call[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    tty: false,
    env: { NGSCI_API_URL: `http://svc.test${BASE}`, JUPYTERHUB_API_TOKEN: token },
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      calls.push({
        method: init?.method ?? 'GET',
        path: `${url.pathname}${url.search}`,
        body: init?.body ? JSON.parse(String(init.body)) : undefined,
      });
      return answer(url, init);
    }) as typeof fetch,
    sleep: async () => {},
  };
  return { io, out: () => out.join(''), err: () => err.join(''), calls };
}
