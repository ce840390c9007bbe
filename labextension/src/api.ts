/**
 * The one HTTP seam between the extension and the ngsci service. Every call goes through
 * `NgsciApi.request`, which sends the page's JupyterHub token and turns every failure into one
 * `NgsciApiError` carrying the service's `code` (or a client-side one: `unreachable`,
 * `bad_response`, `endpoint_missing`). Tests replace `fetch` and nothing else.
 *
 * Admin calls (`/admin/...`) are different: the page's token never holds the admin scope (it
 * belongs to a server that runs its user's code), so they go without it, with the service's
 * own sign-in cookie (`credentials: 'same-origin'`) and, for changes, the CSRF value that
 * `GET /session` hands out. Without a sign-in they fail with `login_required`; the admin panel
 * then offers "Sign in as admin" (`signInUrl()`).
 *
 * Types come from @ngsci/contract as types only: the schemas (and zod) stay out of the bundle.
 * Responses are checked for the fields the panels rely on before they are used.
 */
import type {
  AdminSession,
  AdminUser,
  AdminUserList,
  Budget,
  Catalog,
  ErrorCode,
  GpuStatus,
  GpuWasteRanking,
  Granularity,
  Instance,
  InstanceEvent,
  InstanceList,
  LaunchRequest,
  Me,
  Notification,
  NotificationList,
  Plan,
  PlanAssignment,
  PlanAssignmentInput,
  PlanAssignmentList,
  PlanInput,
  PlanList,
  PriceOverride,
  PriceOverrideInput,
  PriceOverrideList,
  Quota,
  QuotaInput,
  QuotaList,
  Statement,
  StatementList,
  StatementSummary,
  Usage,
} from '@ngsci/contract';
import { CallError, SseParser, Transport } from '@ngsci/contract/client';

// the contract's types, under the names the panels import from here
export type {
  AdminSession,
  AdminUser,
  Budget,
  Catalog,
  GpuStatus,
  Instance,
  InstanceEvent,
  Me,
  Plan,
  PlanAssignment,
  PriceOverride,
  Quota,
  QuotaInput,
  Statement,
  StatementSummary,
  Usage,
};

/** A notice from the service (budget threshold, coming idle stop, failed start, spot warning...). */
export type Notice = Notification;

/** Codes the client adds to the service's own. */
export type ClientErrorCode =
  | 'unreachable'
  | 'bad_response'
  | 'endpoint_missing'
  /** the page's token was refused after its server stopped (the hub revokes it at the stop) */
  | 'page_server_stopped';

export class NgsciApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    readonly requestId: string | null = null,
    /** the call went with the admin sign-in, not the page's token */
    readonly viaSignIn = false,
  ) {
    super(message);
    this.name = 'NgsciApiError';
  }

  /** A sentence for the panels: what went wrong and, where it helps, what to do. */
  get userMessage(): string {
    switch (this.code) {
      case 'unreachable':
        return 'The ngsci service cannot be reached. Your notebooks are not affected; the panel retries on its own.';
      case 'unauthenticated':
        return "The ngsci service did not accept this page's token. Reload the page to sign in again.";
      case 'forbidden':
        if (this.viaSignIn)
          return `Your sign-in is not an ngsci admin (${this.message}). Ask a hub admin for the ngsci-admin role.`;
        return `This page's token may not use the ngsci service (${this.message}). Ask your hub admin to grant "access:services!service=ngsci".`;
      case 'endpoint_missing':
        return 'This ngsci service does not offer this yet.';
      case 'page_server_stopped':
        return "This machine has stopped, and this page's access to ngsci ended with it: the figures shown are the last it received. Open the hub to start it again.";
      case 'login_required':
        return 'Sign in as admin to use this: the admin panel does not use the page token.';
      case 'csrf_failed':
        return 'The admin sign-in changed in another tab. Try again.';
      default:
        return this.message;
    }
  }
}

export interface ApiOptions {
  /** `.../services/ngsci/api/v1`, no trailing slash */
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
  /**
   * the page's user: once the page's token is refused (its server stopped and the hub revoked
   * the token with it), reads go with this browser's sign-in to the service, if it is this user's
   */
  user?: string;
}

type Check<T> = (v: unknown) => v is T;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const has =
  <T>(...keys: string[]): Check<T> =>
  (v): v is T =>
    isObject(v) && keys.every((k) => k in v);

const isMe = has<Me>('name', 'admin', 'plan');
const isAdminSession = has<AdminSession>('user', 'admin', 'csrf');
const isCatalog = (v: unknown): v is Catalog => has<Catalog>('sizes')(v) && Array.isArray(v.sizes);
const isInstance = has<Instance>('id', 'server', 'size', 'state', 'ratePerHourMicros');
const isInstanceList = (v: unknown): v is InstanceList =>
  isObject(v) && Array.isArray(v.instances) && v.instances.every(isInstance);
const isUsage = (v: unknown): v is Usage =>
  has<Usage>('series', 'totalMicros')(v) && Array.isArray(v.series);
const isBudget = (v: unknown): v is Budget =>
  has<Budget>('spentMicros', 'budgets')(v) && Array.isArray(v.budgets);
const isStatementList = (v: unknown): v is StatementList =>
  isObject(v) && Array.isArray(v.statements);
const isArrayField =
  <T>(field: string): Check<T> =>
  (v): v is T =>
    isObject(v) && Array.isArray(v[field]);

export class NgsciApi {
  readonly baseUrl: string;
  /** with the page's token: the user's own calls */
  private readonly withToken: Transport;
  /** with the admin sign-in's cookie and no token (the page's token must not leak into it) */
  private readonly withCookie: Transport;
  /** the admin sign-in, once `GET /session` answered (its CSRF value goes with every change) */
  private signIn: Promise<AdminSession> | null = null;
  private readonly user: string | null;
  /**
   * the hub refused the page's token and this browser's sign-in is the page's user: reads go
   * with the sign-in from then on (a revoked token does not come back)
   */
  private readsBySignIn = false;

  constructor(opts: ApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/$/, '');
    this.user = opts.user ?? null;
    // figures are live: never an answer from the browser's cache
    const doFetch = opts.fetch ?? ((input, init) => fetch(input, { ...init, cache: 'no-store' }));
    this.withToken = new Transport({
      baseUrl: this.baseUrl,
      fetch: doFetch,
      headers: () => ({ authorization: `token ${opts.token}` }),
      credentials: 'omit',
    });
    this.withCookie = new Transport({
      baseUrl: this.baseUrl,
      fetch: doFetch,
      credentials: 'same-origin',
    });
  }

  /** The raw response of a call, after error handling (for CSV downloads and streams). */
  async raw(
    method: string,
    path: string,
    init: { body?: unknown; signal?: AbortSignal; accept?: string } = {},
  ): Promise<Response> {
    if (/^\/admin(\/|\?|$)/.test(path)) return this.adminRaw(method, path, init);
    const read = ['GET', 'HEAD'].includes(method.toUpperCase());
    if (read && this.readsBySignIn) {
      try {
        return await this.sessionCall(method, path, init);
      } catch (err) {
        // the sign-in ended too: back to the token, whose refusal is what the caller hears
        if (!(err instanceof NgsciApiError && err.code === 'login_required')) throw err;
        this.readsBySignIn = false;
      }
    }
    try {
      return await this.withToken.call(method, path, init);
    } catch (err) {
      const e = err instanceof CallError ? this.apiError(err) : err;
      if (read && e instanceof NgsciApiError && e.code === 'unauthenticated') {
        const res = await this.readBySignIn(method, path, init);
        if (res) return res;
      }
      throw e;
    }
  }

  /**
   * A read the hub refused with the page's token, again with this browser's sign-in to the
   * service when that is the page's own user (never another user's figures); null without one.
   * The page's token dies with its server (JupyterHub revokes it at the stop), so this is how a
   * page whose machine stopped still shows the final figures.
   */
  private async readBySignIn(
    method: string,
    path: string,
    init: { body?: unknown; signal?: AbortSignal; accept?: string },
  ): Promise<Response | null> {
    if (!this.user) return null;
    const session = await this.session(true).catch(() => null);
    if (session?.user !== this.user) return null;
    const res = await this.sessionCall(method, path, init);
    this.readsBySignIn = true;
    return res;
  }

  /** A call answered with no body (204), such as a DELETE. */
  async send(method: string, path: string, body?: unknown): Promise<void> {
    await this.raw(method, path, { body });
  }

  async request<T>(method: string, path: string, check: Check<T>, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, { body });
    let data: unknown;
    try {
      data = await res.json();
    } catch {
      throw new NgsciApiError(
        res.status,
        'bad_response',
        `the service answered ${method} ${path} with something that is not JSON`,
      );
    }
    if (!check(data))
      throw new NgsciApiError(
        res.status,
        'bad_response',
        `the service answered ${method} ${path} in an unexpected shape`,
      );
    return data;
  }

  /**
   * The admin sign-in of this browser; rejects with `login_required` when there is none.
   * `fresh` asks the service again (after the sign-in popup closed, or a refused change).
   */
  session = (fresh = false): Promise<AdminSession> => {
    if (fresh || !this.signIn) {
      const asked = this.sessionCall('GET', '/session').then(async (res) => {
        const data: unknown = await res.json().catch(() => null);
        if (!isAdminSession(data))
          throw new NgsciApiError(
            res.status,
            'bad_response',
            'the service answered GET /session in an unexpected shape',
            null,
            true,
          );
        return data;
      });
      this.signIn = asked;
      // a failed answer is not kept: the next call asks again
      asked.catch(() => {
        if (this.signIn === asked) this.signIn = null;
      });
    }
    return this.signIn;
  };

  /** Where the admin sign-in starts; it ends on a page of the service that closes itself. */
  signInUrl(): string {
    const root = this.baseUrl.replace(/\/api\/v1$/, '');
    const rootPath = new URL(root, 'http://page.invalid').pathname;
    return `${root}/oauth_login?next=${encodeURIComponent(`${rootPath}/signed_in`)}`;
  }

  /** Ends the admin sign-in of this browser. */
  signOut = async (): Promise<void> => {
    this.signIn = null;
    await this.sessionCall('POST', '/session/logout');
  };

  /** A call with the sign-in cookie and no token (the page's token must not leak into it). */
  private async sessionCall(
    method: string,
    path: string,
    init: { body?: unknown; signal?: AbortSignal; accept?: string; csrf?: string } = {},
  ): Promise<Response> {
    const { csrf, ...rest } = init;
    try {
      return await this.withCookie.call(method, path, {
        ...rest,
        ...(csrf ? { headers: { 'x-ngsci-csrf': csrf } } : {}),
      });
    } catch (e) {
      if (!(e instanceof CallError)) throw e;
      const err = this.apiError(e, true);
      // no cookie at all reads as "unauthenticated" to the service: for the panel, sign in
      if (err.code === 'unauthenticated')
        throw new NgsciApiError(err.status, 'login_required', err.message, err.requestId, true);
      throw err;
    }
  }

  /** The panels' words for a failed call. */
  private apiError(err: CallError, viaSignIn = false): NgsciApiError {
    if (err.kind === 'network')
      return new NgsciApiError(0, 'unreachable', `cannot reach ${this.baseUrl}`, null, viaSignIn);
    if (err.kind === 'service') {
      if (err.status === 404 && err.message.startsWith('no route for'))
        return new NgsciApiError(404, 'endpoint_missing', err.message, err.requestId, viaSignIn);
      return new NgsciApiError(
        err.status,
        err.code as ErrorCode,
        err.message,
        err.requestId,
        viaSignIn,
      );
    }
    // not the service's answer: the proxy's 503 while the service starts, a 502, an HTML page
    if (err.status === 404)
      return new NgsciApiError(404, 'endpoint_missing', `the service has no ${err.url}`);
    if (err.status >= 500)
      return new NgsciApiError(err.status, 'unreachable', `the service answered ${err.status}`);
    return new NgsciApiError(err.status, 'bad_response', `the service answered ${err.status}`);
  }

  /** An admin call: the sign-in cookie, and its CSRF value on changes (asked again once if stale). */
  private async adminRaw(
    method: string,
    path: string,
    init: { body?: unknown; signal?: AbortSignal; accept?: string },
  ): Promise<Response> {
    const change = !['GET', 'HEAD'].includes(method.toUpperCase());
    for (let attempt = 0; ; attempt++) {
      const csrf = change ? (await this.session(attempt > 0)).csrf : undefined;
      try {
        return await this.sessionCall(method, path, { ...init, csrf });
      } catch (err) {
        if (err instanceof NgsciApiError && err.code === 'login_required') this.signIn = null;
        if (err instanceof NgsciApiError && err.code === 'csrf_failed' && attempt === 0) continue;
        throw err;
      }
    }
  }

  me = () => this.request('GET', '/me', isMe);
  catalog = () => this.request('GET', '/catalog', isCatalog);
  instances = () => this.request('GET', '/instances', isInstanceList).then((r) => r.instances);
  /** The list with the service's clock and open streams, to tick billed-so-far (figures.ts). */
  instanceList = () => this.request('GET', '/instances', isInstanceList);
  instance = (server: string) =>
    this.request('GET', `/instances/${encodeURIComponent(server)}`, isInstance);
  launch = (body: LaunchRequest) => this.request('POST', '/instances', isInstance, body);
  stop = (server: string) =>
    this.request('POST', `/instances/${encodeURIComponent(server)}/stop`, isInstance);
  // cloud stays a string here: the panels pass what the catalog offered (the service checks it)
  resize = (
    server: string,
    body: { size: string; cloud?: string; region?: string; spot?: boolean },
  ) => this.request('POST', `/instances/${encodeURIComponent(server)}/resize`, isInstance, body);
  keepRunning = (server: string) =>
    this.request('POST', `/instances/${encodeURIComponent(server)}/keep-running`, isObject);

  usage = (q: { from: string; to?: string; granularity: Granularity }) => {
    const p = new URLSearchParams({
      from: q.from,
      granularity: q.granularity,
      ...(q.to ? { to: q.to } : {}),
    });
    return this.request('GET', `/usage?${p}`, isUsage);
  };
  budget = () => this.request('GET', '/budget', isBudget);
  statements = () =>
    this.request('GET', '/billing/statements', isStatementList).then((r) => r.statements);
  statementList = () => this.request('GET', '/billing/statements', isStatementList);
  statementCsv = async (month: string): Promise<Blob> =>
    (
      await this.raw('GET', `/billing/statements/${encodeURIComponent(month)}?format=csv`, {
        accept: 'text/csv',
      })
    ).blob();

  /** Notices newer than `after`, not yet acknowledged, and the id to ask after next time. */
  notifications = (after = 0) =>
    this.request(
      'GET',
      `/notifications?after=${after}&unacknowledged=true`,
      isArrayField<NotificationList>('notifications'),
    );
  acknowledge = (ids: number[]) => this.request('POST', '/notifications/ack', isObject, { ids });
  gpu = (server: string) =>
    this.request(
      'GET',
      `/instances/${encodeURIComponent(server)}/gpu`,
      isArrayField<GpuStatus>('gpus'),
    );

  admin = {
    users: () => this.request('GET', '/admin/users', isArrayField<AdminUserList>('users')),
    /** users and groups ranked by idle-GPU dollars this month (contract gpu-waste.ts) */
    gpuWaste: () =>
      this.request('GET', '/admin/gpu-waste', has<GpuWasteRanking>('users', 'groups', 'month')),
    instances: () =>
      this.request('GET', '/admin/instances', isInstanceList).then((r) => r.instances),
    /** the same, with the service's clock and open streams to tick billedMicros (figures.ts) */
    instanceList: () => this.request('GET', '/admin/instances', isInstanceList),
    stop: (user: string, server: string) =>
      this.request(
        'POST',
        `/admin/instances/${encodeURIComponent(user)}/${encodeURIComponent(server)}/stop`,
        isObject,
      ),
    quotas: () =>
      this.request('GET', '/admin/quotas', isArrayField<QuotaList>('quotas')).then((r) => r.quotas),
    /** creates a quota, or replaces quota `id` */
    putQuota: (q: QuotaInput, id?: number): Promise<unknown> =>
      id === undefined
        ? this.request('POST', '/admin/quotas', isObject, q)
        : this.request('PUT', `/admin/quotas/${id}`, isObject, q),
    /** sets the price of one size on one cloud (named as the form's select holds it) */
    putPrice: (p: Omit<PriceOverrideInput, 'cloud'> & { cloud: string }) =>
      this.request('PUT', '/admin/prices', isObject, p),
    plans: () =>
      this.request('GET', '/admin/plans', isArrayField<PlanList>('plans')).then((r) => r.plans),
    /** creates a plan (`multiplierPpm`: 0 free, 1000000 list price) */
    createPlan: (p: PlanInput) =>
      this.request('POST', '/admin/plans', has<Plan>('id', 'multiplierPpm'), p),
    updatePlan: (id: string, p: Omit<PlanInput, 'id'>) =>
      this.request('PUT', `/admin/plans/${encodeURIComponent(id)}`, has<Plan>('id'), p),
    /** the service refuses built-in plans and plans still assigned */
    deletePlan: (id: string) => this.send('DELETE', `/admin/plans/${encodeURIComponent(id)}`),
    assignments: () =>
      this.request(
        'GET',
        '/admin/plan-assignments',
        isArrayField<PlanAssignmentList>('assignments'),
      ).then((r) => r.assignments),
    /** assigns a plan to a user or group, replacing its previous one */
    assign: (a: PlanAssignmentInput) =>
      this.request('PUT', '/admin/plan-assignments', has<PlanAssignment>('id'), a),
    unassign: (id: number) => this.send('DELETE', `/admin/plan-assignments/${id}`),
    deletePrice: (size: string, cloud: string) =>
      this.send('DELETE', `/admin/prices/${encodeURIComponent(size)}/${encodeURIComponent(cloud)}`),
    overrides: () =>
      this.request('GET', '/admin/prices', isArrayField<PriceOverrideList>('overrides')).then(
        (r) => r.overrides,
      ),
  };

  /**
   * Follows `GET /instances/{server}/events` until `signal` aborts, calling `onEvent` per
   * InstanceEvent. Returns when the stream ends (the caller reconnects if it still cares).
   */
  async followEvents(
    server: string,
    onEvent: (e: InstanceEvent) => void,
    signal: AbortSignal,
    after?: number,
  ): Promise<number | undefined> {
    const q = after !== undefined ? `?after=${after}` : '';
    const res = await this.raw('GET', `/instances/${encodeURIComponent(server)}/events${q}`, {
      signal,
      accept: 'text/event-stream',
    });
    let last = after;
    const parser = new SseParser((m) => {
      if (m.event !== 'instance') return;
      try {
        const e = JSON.parse(m.data) as InstanceEvent;
        if (isObject(e) && typeof e.state === 'string') {
          last = e.id;
          onEvent(e);
        }
      } catch {
        // a malformed line is skipped; the next refresh shows the truth
      }
    });
    const reader = res.body?.getReader();
    if (!reader) return last;
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if ((err as Error)?.name !== 'AbortError')
        throw new NgsciApiError(0, 'unreachable', 'the event stream broke off');
    }
    return last;
  }
}

/** Whether this browser may use the admin panel now, and if not, what the panel should offer. */
export type AdminAccess =
  | { kind: 'ok'; session: AdminSession }
  | { kind: 'sign-in' }
  | { kind: 'refused'; user: string }
  | { kind: 'error'; error: NgsciApiError };

export async function adminAccess(api: NgsciApi, fresh = false): Promise<AdminAccess> {
  try {
    const session = await api.session(fresh);
    return session.admin ? { kind: 'ok', session } : { kind: 'refused', user: session.user };
  } catch (err) {
    if (err instanceof NgsciApiError && err.code === 'login_required') return { kind: 'sign-in' };
    return {
      kind: 'error',
      error:
        err instanceof NgsciApiError
          ? err
          : new NgsciApiError(0, 'bad_response', String(err), null, true),
    };
  }
}
