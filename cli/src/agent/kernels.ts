/**
 * Where the agent may reach its own server (its kernels, jupyter.ts): on loopback only, with the
 * server's own token (which belongs to the server's user anyway), so the service never needs to
 * call a user's server with a credential of its own.
 *
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
