/**
 * The one HTTP seam of the CLI and the agent: every call goes through `ApiClient`, which adds the
 * token, and turns error answers into `ServiceError` (the service's code and message) and network
 * failures into exit code 3. The token never appears in an error.
 */
import { CallError, Transport } from '@ngsci/contract/client';
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
  private readonly transport: Transport;

  constructor(
    readonly conn: Connection,
    fetchImpl: typeof fetch = fetch,
  ) {
    this.transport = new Transport({
      baseUrl: conn.url,
      fetch: fetchImpl,
      headers: () => ({ authorization: `token ${conn.token}` }),
    });
  }

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
    init: { signal?: AbortSignal; accept?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    try {
      return await this.transport.call(method, path, { body, ...init });
    } catch (err) {
      throw err instanceof CallError ? this.cliError(err) : err;
    }
  }

  private request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.transport
      .json<T>(method, path, { body })
      .catch((err: unknown) => Promise.reject(err instanceof CallError ? this.cliError(err) : err));
  }

  /** The CLI's words for a failed call (the token is never part of them). */
  private cliError(err: CallError): CliError {
    if (err.kind !== 'network') return new ServiceError(err.status, err.code, err.message);
    const c = err.cause as
      | {
          cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> };
          message?: string;
        }
      | undefined;
    const cause = c?.cause?.code ?? c?.cause?.errors?.[0]?.code ?? c?.cause?.message ?? c?.message;
    return new CliError(
      EXIT.unreachable,
      'unreachable',
      `cannot reach the ngsci service at ${new URL(this.conn.url).origin} (${cause})`,
    );
  }
}
