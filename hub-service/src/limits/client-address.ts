/**
 * The address of the client behind a request, for limits kept per client. Browsers reach the
 * service through JupyterHub's proxy, so the connection's peer is the proxy; the proxy appends the
 * address it saw to X-Forwarded-For. Anyone can send that header, so it is read from the right and
 * only across hops the operator trusts (NGSCI_TRUSTED_PROXIES): the first address that is not a
 * trusted proxy is the client. Whatever a client wrote further left is never believed.
 */
import { BlockList, isIP } from 'node:net';
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

/** Strips the IPv4-mapped IPv6 prefix Node reports for IPv4 peers on a dual-stack socket. */
function plain(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

export function trustedProxies(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

/**
 * The client's address given the connection's peer and the X-Forwarded-For header: the peer
 * itself unless it is a trusted proxy, else the rightmost forwarded address that is not one.
 * A malformed entry ends the walk at the last address that was trustworthy.
 */
export function clientAddressOf(
  peer: string | undefined,
  forwardedFor: string | undefined,
  trusted: BlockList,
): string {
  let client = peer ? plain(peer) : 'unknown';
  const isTrusted = (a: string) => {
    const family = isIP(a);
    return family !== 0 && trusted.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
  if (!isTrusted(client) || !forwardedFor) return client;
  const hops = forwardedFor.split(',').map((h) => plain(h.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!isIP(hop)) break;
    client = hop;
    if (!isTrusted(hop)) break;
  }
  return client;
}

/** The connection's peer, where there is a socket (tests that call app.request have none). */
function peerOf(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
}

/** A function that names the client of a request, believing only `trusted` proxies. */
export function clientAddress(trusted: string[]): (c: Context) => string {
  const list = trustedProxies(trusted);
  return (c) => clientAddressOf(peerOf(c), c.req.header('x-forwarded-for'), list);
}
