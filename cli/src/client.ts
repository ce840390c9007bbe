/**
 * The one HTTP seam of the CLI and the agent: every call goes through `ApiClient`, which adds the
 * token, and turns error answers into `ServiceError` (the service's code and message) and network
 * failures into exit code 3. The token never appears in an error.
 */
import { CliError, EXIT, ServiceError } from './errors.js';

export interface Connection {
  url: string;
  token: string;
}

/**
 * Where the API is and the token, from flags or the environment a single-user server has:
 * NGSCI_API_URL (a full URL, or a path resolved against JUPYTERHUB_PUBLIC_URL) and
 * JUPYTERHUB_API_TOKEN (or NGSCI_TOKEN).
 */
export function connection(
  flags: { url?: string; token?: string },
  env: Record<string, string | undefined>,
): Connection {
  let url = flags.url ?? env.NGSCI_API_URL;
  const token = flags.token ?? env.NGSCI_TOKEN ?? env.JUPYTERHUB_API_TOKEN;
  if (!url) {
    throw new CliError(
      EXIT.unreachable,
      'not_configured',
      'no service URL: set NGSCI_API_URL or pass --url https://hub.example.org/services/ngsci/api/v1',
    );
  }
  if (url.startsWith('/')) {
    const pub = env.JUPYTERHUB_PUBLIC_URL;
    if (!pub) {
      throw new CliError(
        EXIT.unreachable,
        'not_configured',
        `NGSCI_API_URL is a path (${url}); pass --url with a full URL such as https://hub.example.org${url}`,
      );
    }
    url = new URL(url, pub).toString();
  }
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new CliError(EXIT.usage, 'usage', `the service URL must be an http(s) URL, not '${url}'`);
  }
  if (!token)
    throw new CliError(
      EXIT.unreachable,
      'not_configured',
      'no token: set JUPYTERHUB_API_TOKEN or pass --token',
    );
  return { url: url.replace(/\/+$/, ''), token };
}

export class ApiClient {
  constructor(
    readonly conn: Connection,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async text(path: string): Promise<string> {
    const res = await this.raw('GET', path);
    return res.text();
  }

  /** A response whose status is known to be OK; the body is left to the caller (streams). */
  async raw(
    method: string,
    path: string,
    body?: unknown,
    init: RequestInit = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.conn.url}${path}`, {
        ...init,
        method,
        headers: {
          authorization: `token ${this.conn.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(init.headers as Record<string, string> | undefined),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const c = (
        err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }
      ).cause;
      const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).message;
      throw new CliError(
        EXIT.unreachable,
        'unreachable',
        `cannot reach the ngsci service at ${new URL(this.conn.url).origin} (${cause})`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let code = `http_${res.status}`;
      let message = text.slice(0, 300) || res.statusText;
      try {
        const b = JSON.parse(text) as { code?: string; message?: string };
        if (b.code) code = b.code;
        if (b.message) message = b.message;
      } catch {
        // not the service's error shape (a proxy's page): keep the status
      }
      throw new ServiceError(res.status, code, message);
    }
    return res;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
