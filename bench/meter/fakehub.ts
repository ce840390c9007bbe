/**
 * A recorded JupyterHub REST response served from 127.0.0.1: N users with one ready server each,
 * paginated the way JupyterHub 5/6 paginates (jupyterhub/apihandlers/base.py, 6.1.1): `offset`
 * and `limit` query parameters; a client that sends `Accept: application/jupyterhub-pagination+json`
 * gets `{items, _pagination: {offset, limit, total, next: {offset, limit, url} | null}}` with 50
 * items unless it asks for more, at most `api_page_max_limit` (200) whatever it asks; a client that
 * does not gets a bare list of up to 200. Both the ngsci meter and jupyterhub-idle-culler read it.
 *
 * It runs in a process of its own (`spawnFakeHub`), as a hub would: serving 100,000 users' pages
 * from the meter's own event loop would bill the hub's work to the meter.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';

/** JupyterHub's api_page_max_limit and api_page_default_limit defaults */
export const HUB_PAGE_MAX = 200;
export const HUB_PAGE_DEFAULT = 50;

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
      const paginated = (req.headers.accept ?? '')
        .split(',')
        .some((t) => t.trim().toLowerCase() === 'application/jupyterhub-pagination+json');
      const offset = Math.abs(Math.trunc(Number(u.searchParams.get('offset') ?? 0)));
      const asked = Math.abs(
        Math.trunc(
          Number(u.searchParams.get('limit') ?? (paginated ? HUB_PAGE_DEFAULT : HUB_PAGE_MAX)),
        ),
      );
      if (!Number.isFinite(offset) || !Number.isFinite(asked)) {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end('{"status":400,"message":"offset and limit must be integers"}');
        return;
      }
      const limit = Math.max(1, Math.min(asked, HUB_PAGE_MAX));
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
  // JupyterHub (tornado) keeps an idle connection an hour; node's 5 s default would close sockets
  // a client busy elsewhere for a moment still means to reuse
  server.keepAliveTimeout = 3_600_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  hub.url = `http://127.0.0.1:${addr.port}`;
  return hub;
}

/** The fake hub in a child process of its own; `requests` is not counted there. */
export async function spawnFakeHub(n: number): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), String(n)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening (\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the fake hub exited (${code})`)));
  });
  return {
    url,
    close: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const hub = await startFakeHub(Number(process.argv[2]));
  console.log(`listening ${hub.url}`);
  process.on('SIGTERM', () => process.exit(0));
}
