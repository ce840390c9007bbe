/**
 * A recorded JupyterHub REST response served from 127.0.0.1: N users with one ready server each,
 * paginated the way JupyterHub 5/6 paginates (at most 200 items a page, whatever `limit` asks,
 * `_pagination.next` with an absolute url). Both the ngsci meter and jupyterhub-idle-culler read it.
 */
import { createServer, type Server } from 'node:http';

export const HUB_PAGE_MAX = 200;

export interface FakeHub {
  url: string;
  users: ReturnType<typeof recordedUsers>;
  requests: number;
  close(): Promise<void>;
}

/** The user models, as `GET /hub/api/users?state=active` answers them (recorded from a 6.x hub, names changed). */
export function recordedUsers(n: number, now = new Date()) {
  return Array.from({ length: n }, (_, i) => {
    const name = `user${String(i).padStart(5, '0')}`;
    const activity = new Date(now.getTime() - (i % 600) * 1000).toISOString();
    const started = new Date(now.getTime() - 3_600_000).toISOString();
    return {
      kind: 'user',
      name,
      admin: false,
      roles: ['user'],
      groups: i % 10 === 0 ? ['lab-a'] : [],
      server: `/user/${name}/`,
      pending: null,
      created: '2026-01-05T09:12:44.318000Z',
      last_activity: activity,
      servers: {
        '': {
          name: '',
          full_name: `${name}/`,
          last_activity: activity,
          started,
          pending: null,
          ready: true,
          stopped: false,
          url: `/user/${name}/`,
          user_options: { size: 'cpu-small', spot: false },
          progress_url: `/hub/api/users/${name}/server/progress`,
          full_url: null,
          full_progress_url: null,
        },
      },
    };
  });
}

export async function startFakeHub(n: number): Promise<FakeHub> {
  const users = recordedUsers(n);
  const pages = new Map<string, string>();
  const hub: FakeHub = {
    url: '',
    users,
    requests: 0,
    close: () => new Promise((r) => server.close(() => r())),
  };
  const server: Server = createServer((req, res) => {
    hub.requests++;
    const u = new URL(req.url ?? '/', hub.url);
    const path = u.pathname.replace(/\/$/, '');
    if (path === '/hub/api') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ version: '5.3.0' }));
      return;
    }
    if (path === '/hub/api/users') {
      const offset = Number(u.searchParams.get('offset') ?? 0);
      const asked = Number(u.searchParams.get('limit') ?? HUB_PAGE_MAX) || HUB_PAGE_MAX;
      const limit = Math.min(asked, HUB_PAGE_MAX);
      const paginated = (req.headers.accept ?? '').includes(
        'application/jupyterhub-pagination+json',
      );
      const key = `${offset}/${limit}/${paginated}/${u.searchParams.get('state')}`;
      let body = pages.get(key);
      if (!body) {
        const items = users.slice(offset, offset + limit);
        const next = offset + limit < users.length ? offset + limit : null;
        const nextUrl = new URL(u.toString());
        nextUrl.searchParams.set('offset', String(next));
        nextUrl.searchParams.set('limit', String(limit));
        body = JSON.stringify(
          paginated
            ? {
                items,
                _pagination: {
                  offset,
                  limit,
                  total: users.length,
                  next: next === null ? null : { offset: next, limit, url: nextUrl.toString() },
                },
              }
            : items,
        );
        pages.set(key, body);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":404}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  hub.url = `http://127.0.0.1:${addr.port}`;
  return hub;
}
