/**
 * The JupyterHub REST API as hub-service uses it. The hub stays the orchestrator: starting and
 * stopping servers always goes through here, so the hub's own state, proxy routes and spawn
 * pages stay right. Requests carry the service's token; the user-token lookup carries the user's.
 */
import { ErrorCode } from '@ngsci/contract';
import { ApiError } from './errors.js';

export interface HubServerModel {
  name: string;
  ready: boolean;
  pending: string | null;
  url: string;
  user_options: Record<string, unknown>;
  last_activity: string | null;
  started: string | null;
}

export interface HubUserModel {
  name: string;
  admin: boolean;
  groups?: string[];
  kind?: string;
  scopes?: string[];
  servers?: Record<string, HubServerModel>;
  last_activity?: string | null;
}

export interface HubClientOptions {
  apiUrl: string;
  token: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const enc = encodeURIComponent;

/** How many pages of a listing are asked for at once (the first one alone, for the total). */
const PAGES_AT_ONCE = 4;

/** A page of `GET /users` with `Accept: application/jupyterhub-pagination+json`. */
interface HubUsersPage {
  items: HubUserModel[];
  _pagination?: {
    offset: number;
    limit: number;
    total: number;
    next: { offset: number; limit: number; url: string } | null;
  };
}

/**
 * Only the fields the service reads, so a 100,000-user listing keeps no roles, urls and
 * timestamps nobody looks at for the length of a meter cycle.
 */
function slimUser(u: HubUserModel): HubUserModel {
  const out: HubUserModel = { name: u.name, admin: u.admin };
  if (u.groups) out.groups = u.groups;
  if (u.kind !== undefined) out.kind = u.kind;
  if (u.scopes) out.scopes = u.scopes;
  if (u.last_activity !== undefined) out.last_activity = u.last_activity;
  if (u.servers) {
    const servers: Record<string, HubServerModel> = {};
    for (const [k, sv] of Object.entries(u.servers))
      servers[k] = {
        name: sv.name,
        ready: sv.ready,
        pending: sv.pending,
        url: sv.url,
        user_options: sv.user_options,
        last_activity: sv.last_activity,
        started: sv.started,
      };
    out.servers = servers;
  }
  return out;
}

export class HubClient {
  private readonly apiUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly opts: HubClientOptions) {
    this.apiUrl = opts.apiUrl.replace(/\/$/, '');
    this.fetchImpl = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
  }

  /** Resolves a token to its owner, or null when the hub does not know the token. */
  async whoami(token: string): Promise<HubUserModel | null> {
    const res = await this.request('GET', '/user', { token });
    if (res.status === 401 || res.status === 403) return null;
    return this.json<HubUserModel>(res, 'GET /user');
  }

  async getUser(name: string): Promise<HubUserModel | null> {
    const res = await this.request('GET', `/users/${enc(name)}`);
    if (res.status === 404) return null;
    return this.json<HubUserModel>(res, 'GET /users/{name}');
  }

  /**
   * A user's groups, which decide their group quotas and budgets. An answer the hub cannot give
   * (unreachable, an error, a model without groups because the service's token lacks the
   * read:users:groups scope) throws 503 hub_unreachable: a launch checked without the groups
   * would skip every group budget, so it is refused instead. A user the hub does not know has none.
   */
  async groupsOf(user: string): Promise<string[]> {
    const refuse = (why: string) =>
      new ApiError(
        503,
        'hub_unreachable',
        `JupyterHub ${why}, so the group quotas and budgets of ${user} cannot be checked; try again shortly`,
      );
    let model: HubUserModel | null;
    try {
      model = await this.getUser(user);
    } catch (err) {
      throw refuse(err instanceof ApiError ? err.message.replace(/^JupyterHub /, '') : 'failed');
    }
    if (!model) return [];
    if (!Array.isArray(model.groups))
      throw refuse('answered without the groups (the service needs the read:users:groups scope)');
    return model.groups;
  }

  /**
   * Asks the hub to start a server. The body is the bare options object (hub 5 and 6 both take
   * it). Resolves 'started' (201) or 'pending' (202).
   */
  async startServer(
    user: string,
    hubServer: string,
    options: object,
  ): Promise<'started' | 'pending'> {
    const res = await this.request('POST', serverPath(user, hubServer), { body: options });
    if (res.status === 201) return 'started';
    if (res.status === 202) return 'pending';
    throw await this.refusal(res, 'start');
  }

  /** Asks the hub to stop a server; 'stopped' (204) or 'pending' (202). */
  async stopServer(user: string, hubServer: string): Promise<'stopped' | 'pending'> {
    const res = await this.request('DELETE', serverPath(user, hubServer));
    if (res.status === 204) return 'stopped';
    if (res.status === 202) return 'pending';
    throw await this.refusal(res, 'stop');
  }

  async getServer(user: string, hubServer: string): Promise<HubServerModel | null> {
    const model = await this.getUser(user);
    return model?.servers?.[hubServer] ?? null;
  }

  /**
   * Every user with an active server, every page of the hub's listing. The first page tells the
   * total; the rest are asked for by `offset` a few at a time (JupyterHub's pagination,
   * `Accept: application/jupyterhub-pagination+json`: `offset`, `limit` capped by the hub's
   * api_page_max_limit, `_pagination.next`), then `next` is followed for whatever appeared meanwhile.
   */
  async listActiveUsers(pageSize = 200): Promise<HubUserModel[]> {
    return this.listUsers('state=active&', pageSize);
  }

  /** The hub's admin users (who receive security notices). */
  async listAdmins(pageSize = 200): Promise<string[]> {
    return (await this.listUsers('', pageSize)).filter((u) => u.admin).map((u) => u.name);
  }

  private async listUsers(filter: string, pageSize: number): Promise<HubUserModel[]> {
    const page = async (offset: number, limit: number) => {
      const res = await this.request('GET', `/users?${filter}offset=${offset}&limit=${limit}`, {
        accept: 'application/jupyterhub-pagination+json',
      });
      const body = await this.json<HubUsersPage>(res, 'GET /users');
      if (!Array.isArray(body?.items))
        throw new ApiError(502, 'hub_unreachable', 'JupyterHub answered GET /users without items');
      return { items: body.items.map(slimUser), pagination: body._pagination ?? null };
    };
    const first = await page(0, pageSize);
    // the hub's own page size (it caps what was asked for)
    const limit = first.pagination?.limit || first.items.length || pageSize;
    const total = first.pagination?.total ?? 0;
    const pages: HubUserModel[][] = [first.items];
    let next = first.pagination?.next ?? null;
    if (next && total > limit) {
      const offsets: number[] = [];
      for (let o = next.offset; o < total; o += limit) offsets.push(o);
      const got: Array<Awaited<ReturnType<typeof page>>> = new Array(offsets.length);
      let i = 0;
      const worker = async () => {
        while (i < offsets.length) {
          const k = i++;
          got[k] = await page(offsets[k]!, limit);
        }
      };
      await Promise.all(Array.from({ length: Math.min(PAGES_AT_ONCE, offsets.length) }, worker));
      for (const p of got) pages.push(p.items);
      next = got.at(-1)?.pagination?.next ?? null;
    }
    // users who joined while it was read, one page at a time as the hub points
    while (next) {
      const p = await page(next.offset, next.limit || limit);
      pages.push(p.items);
      next = p.pagination?.next ?? null;
    }
    // a user the listing moved across a page boundary while it was read is counted once
    const byName = new Map<string, HubUserModel>();
    for (const items of pages) for (const u of items) byName.set(u.name, u);
    return [...byName.values()];
  }

  private async request(
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; accept?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `token ${opts.token ?? this.opts.token}`,
      accept: opts.accept ?? 'application/json',
    };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const send = () =>
      this.fetchImpl(this.apiUrl + path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    try {
      try {
        return await send();
      } catch (err) {
        // a kept-alive connection the hub closed as it was reused fails at once (a TypeError,
        // not a timeout): a read is asked again once, on a new connection
        if (method !== 'GET' || (err as Error).name !== 'TypeError') throw err;
        return await send();
      }
    } catch (err) {
      throw new ApiError(
        502,
        'hub_unreachable',
        `JupyterHub did not answer ${method} ${path.split('?')[0]}: ${(err as Error).name}`,
      );
    }
  }

  private async json<T>(res: Response, what: string): Promise<T> {
    if (!res.ok)
      throw new ApiError(502, 'hub_unreachable', `JupyterHub answered ${res.status} to ${what}`);
    return (await res.json()) as T;
  }

  private async refusal(res: Response, action: string): Promise<ApiError> {
    let message = `JupyterHub refused to ${action} the server (${res.status})`;
    try {
      const body = (await res.json()) as { message?: string };
      if (body.message) message = `JupyterHub refused to ${action} the server: ${body.message}`;
    } catch {
      // keep the generic message
    }
    if (res.status >= 500) {
      // the bridge's refusals carry the service's own code: "JupyterHub refused ...: process_exited: ..."
      const embedded = /: ([a-z_]+): /.exec(message)?.[1];
      const code = ErrorCode.safeParse(embedded);
      if (!code.success) return new ApiError(502, 'hub_refused', message);
      // a limit the bridge's start enforced is the user's answer, as when the launch checked it
      const status = REFUSAL_STATUS[code.data] ?? 502;
      return new ApiError(status, code.data, message);
    }
    if (res.status === 409 || /is already running|is pending/i.test(message))
      return new ApiError(409, 'instance_busy', message);
    if (res.status === 404) return new ApiError(404, 'not_found', message);
    return new ApiError(400, 'hub_refused', message);
  }
}

/** The codes a bridge refusal keeps its own status for: limits and busy servers, not hub faults. */
const REFUSAL_STATUS: Partial<Record<ErrorCode, 403 | 409>> = {
  quota_exceeded: 403,
  budget_exhausted: 403,
  instance_busy: 409,
};

function serverPath(user: string, hubServer: string): string {
  return hubServer ? `/users/${enc(user)}/servers/${enc(hubServer)}` : `/users/${enc(user)}/server`;
}
