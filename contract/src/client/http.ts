/**
 * The one HTTP transport of the ngsci API for TypeScript callers (the JupyterLab extension and
 * the CLI): it builds the request (JSON body, accept header, the caller's auth headers), and
 * turns every failure into one `CallError` that says whether the service itself answered (its
 * error shape: code, message, request id), something else answered (a proxy's page), or nothing
 * did. Each caller maps that to its own words. No zod here: the extension bundles this.
 */

export type CallErrorKind = 'service' | 'http' | 'network';

/** fetch's `credentials` (spelled out: this package is typed without the DOM library) */
export type Credentials = 'omit' | 'same-origin' | 'include';

export class CallError extends Error {
  constructor(
    /** 0 when nothing answered */
    readonly status: number,
    /** the service's code; `http_<status>` for another answer; `unreachable` for none */
    readonly code: string,
    message: string,
    readonly kind: CallErrorKind,
    readonly requestId: string | null = null,
    /** the URL that was asked */
    readonly url = '',
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'CallError';
  }
}

export interface CallInit {
  body?: unknown;
  signal?: AbortSignal;
  accept?: string;
  headers?: Record<string, string>;
  credentials?: Credentials;
}

export interface TransportOptions {
  /** the API's base URL, e.g. https://hub.example.org/services/ngsci/api/v1 */
  baseUrl: string;
  fetch?: typeof fetch;
  /** headers every call carries (the token), asked per call */
  headers?: () => Record<string, string>;
  credentials?: Credentials;
}

export class Transport {
  readonly baseUrl: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly o: TransportOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.doFetch = o.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The response of a call that succeeded (2xx); an abort is rethrown as it is. */
  async call(method: string, path: string, init: CallInit = {}): Promise<Response> {
    const url = `${this.baseUrl}${path}`;
    let res: Response;
    try {
      res = await this.doFetch(url, {
        method,
        headers: {
          accept: init.accept ?? 'application/json',
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...this.o.headers?.(),
          ...init.headers,
        },
        body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
        signal: init.signal,
        credentials: init.credentials ?? this.o.credentials ?? 'omit',
      });
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw new CallError(0, 'unreachable', `cannot reach ${url}`, 'network', null, url, err);
    }
    if (res.ok) return res;
    throw await callErrorFrom(res, url);
  }

  /** A call's JSON answer (undefined for 204 or an empty body). */
  async json<T>(method: string, path: string, init: CallInit = {}): Promise<T> {
    const res = await this.call(method, path, init);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** The error of a non-2xx answer: the service's own shape, or what another server said. */
export async function callErrorFrom(res: Response, url = res.url): Promise<CallError> {
  const text = await res.text().catch(() => '');
  try {
    const b = JSON.parse(text) as { code?: unknown; message?: unknown; requestId?: unknown };
    if (typeof b.code === 'string' && typeof b.message === 'string')
      return new CallError(
        res.status,
        b.code,
        b.message,
        'service',
        typeof b.requestId === 'string' ? b.requestId : null,
        url,
      );
  } catch {
    // not JSON: a proxy's page
  }
  return new CallError(
    res.status,
    `http_${res.status}`,
    text.slice(0, 300) || res.statusText,
    'http',
    null,
    url,
  );
}
