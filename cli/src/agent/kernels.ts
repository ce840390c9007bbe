/**
 * The agent's view of its own server's kernels: how many exist and how many are executing. It
 * asks the server on loopback only, with the server's own token (which belongs to the server's
 * user anyway), so the service never needs to call a user's server with a credential of its own.
 */
/**
 * The server's own URL, only when it is on this machine: the agent sends the server's token
 * nowhere else. A VM's server listens on 0.0.0.0, which the agent reaches as 127.0.0.1.
 */
export function loopbackServerUrl(raw: string | undefined): string | null {
  if (!raw) return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return null;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return u.toString().replace(/\/?$/, '/');
}

/** How many of the server's kernels exist and are executing; null when the server cannot say. */
export async function readKernels(
  serverUrl: string,
  serverToken: string,
  fetchImpl: typeof fetch,
): Promise<{ total: number; busy: number } | null> {
  const res = await fetchImpl(`${serverUrl}api/kernels`, {
    headers: { authorization: `token ${serverToken}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) return null;
  const kernels = (await res.json()) as unknown;
  if (!Array.isArray(kernels)) return null;
  const states = kernels.map((k) => (k as { execution_state?: unknown })?.execution_state);
  return { total: states.length, busy: states.filter((s) => s === 'busy').length };
}
