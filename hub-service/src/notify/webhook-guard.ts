/**
 * Where a webhook may point. A user chooses the URL, and the service posts to it from inside the
 * operator's network, so a URL that names (or resolves to) a loopback, private, link-local or
 * metadata address would let any user reach what only the service should (SSRF). The host is
 * judged by the addresses it resolves to, at save time and again at every send; the send then
 * connects to exactly the address judged, so a DNS answer that changes in between (rebinding)
 * cannot move the request. Operators who need an internal endpoint list it in NGSCI_WEBHOOK_ALLOW.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

/** One address a host name resolves to, as `dns.lookup` answers it. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name; injected by tests, `dns.lookup` (the system resolver) otherwise. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/** The hosts and networks an operator lets webhooks reach although they are not public. */
export class WebhookAllow {
  private readonly hosts = new Set<string>();
  private readonly nets = new BlockList();

  /**
   * Parses a comma- or space-separated list of host names, IP addresses and CIDR networks, e.g.
   * `hooks.corp.example, 10.20.0.0/16, fd12::/64`. Throws naming the first entry that is none.
   */
  static parse(raw: string): WebhookAllow {
    const allow = new WebhookAllow();
    for (const entry of raw.split(/[\s,]+/).filter(Boolean)) {
      const [base = '', bits, extra] = entry.split('/');
      const ip = normaliseHost(base);
      const family = isIP(ip);
      if (extra === undefined && family && bits !== undefined) {
        const prefix = Number(bits);
        const max = family === 4 ? 32 : 128;
        if (!/^\d+$/.test(bits) || prefix > max)
          throw new Error(`'${entry}' is not a network: the prefix must be 0-${max}`);
        allow.nets.addSubnet(ip, prefix, family === 4 ? 'ipv4' : 'ipv6');
      } else if (extra === undefined && family) {
        allow.nets.addAddress(ip, family === 4 ? 'ipv4' : 'ipv6');
      } else if (
        bits === undefined &&
        /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(ip)
      ) {
        allow.hosts.add(ip);
      } else {
        throw new Error(`'${entry}' is not a host name, an IP address or a CIDR network`);
      }
    }
    return allow;
  }

  allowsHost(host: string): boolean {
    return this.hosts.has(normaliseHost(host));
  }

  allowsAddress(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.nets.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** NGSCI_WEBHOOK_ALLOW as config.ts reads it: empty (nothing internal allowed) by default. */
export const WebhookAllowSetting = z
  .string()
  .default('')
  .transform((raw, ctx) => {
    try {
      return WebhookAllow.parse(raw);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A URL's host as compared everywhere here: no IPv6 brackets, lower case, no trailing dots. */
export function normaliseHost(host: string): string {
  return host
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase()
    .replace(/\.+$/, '');
}

/** Names that reach the machine itself or the cloud's metadata service whatever DNS says. */
const LOCAL_NAMES = ['localhost', 'metadata', 'metadata.google.internal', 'instance-data'];
const LOCAL_SUFFIXES = ['.localhost', '.internal', '.local', '.home.arpa'];

function nameProblem(host: string): string | null {
  if (LOCAL_NAMES.includes(host) || LOCAL_SUFFIXES.some((s) => host.endsWith(s)))
    return 'a local or cloud-internal name';
  return null;
}

/** A list of networks, each with the reason an address inside it is refused. */
function ranges(family: 'ipv4' | 'ipv6', list: Array<[string, number, string]>) {
  return list.map(([net, bits, why]) => {
    const block = new BlockList();
    block.addSubnet(net, bits, family);
    return { has: (ip: string) => block.check(ip, family), why };
  });
}

/** IPv4 ranges no webhook may reach (IANA special-purpose registry, plus every private range). */
const V4_REFUSED = ranges('ipv4', [
  ['0.0.0.0', 8, 'an unspecified address'],
  ['10.0.0.0', 8, 'a private address'],
  ['100.64.0.0', 10, 'a carrier-grade NAT address'],
  ['127.0.0.0', 8, 'a loopback address'],
  ['169.254.0.0', 16, 'a link-local address (the cloud metadata service among them)'],
  ['172.16.0.0', 12, 'a private address'],
  ['192.0.0.0', 24, 'a reserved address'],
  ['192.0.2.0', 24, 'a documentation address'],
  ['192.88.99.0', 24, 'a reserved address'],
  ['192.168.0.0', 16, 'a private address'],
  ['198.18.0.0', 15, 'a reserved address'],
  ['198.51.100.0', 24, 'a documentation address'],
  ['203.0.113.0', 24, 'a documentation address'],
  ['224.0.0.0', 4, 'a multicast address'],
  ['240.0.0.0', 4, 'a reserved or broadcast address'],
]);

/**
 * IPv6 outside global unicast (2000::/3) is refused as a whole; these are the parts of 2000::/3
 * that are not reachable destinations either. Teredo (2001::/32) sits in 2001::/23.
 */
const V6_REFUSED = ranges('ipv6', [
  ['2001:db8::', 32, 'a documentation address'],
  ['2001::', 23, 'a reserved address (IETF protocol assignments, Teredo among them)'],
  ['3fff::', 20, 'a documentation address'],
]);

const v4Problem = (ip: string): string | null => V4_REFUSED.find((r) => r.has(ip))?.why ?? null;

/** The eight 16-bit groups of a valid IPv6 address (embedded dotted quads included). */
function v6Groups(ip: string): number[] {
  let text = ip.replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const part = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  return [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const quadOf = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

function v6Problem(ip: string): string | null {
  const g = v6Groups(ip);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // addresses that carry an IPv4 address: judged by the IPv4 address they lead to
  let embedded: string | null = null;
  if (zeros(0, 5) && g[5] === 0xffff)
    embedded = quadOf(g[6]!, g[7]!); // ::ffff:a.b.c.d
  else if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6))
    embedded = quadOf(g[6]!, g[7]!); // NAT64
  else if (g[0] === 0x2002) embedded = quadOf(g[1]!, g[2]!); // 6to4
  if (embedded !== null) {
    const p = v4Problem(embedded);
    return p ? `${p} inside an IPv6 address` : null;
  }
  if (zeros(0, 8)) return 'an unspecified address';
  if (zeros(0, 7) && g[7] === 1) return 'a loopback address';
  if (zeros(0, 6)) return 'an IPv4-compatible IPv6 address (deprecated)';
  if (g[0]! >> 13 !== 1) {
    if (g[0]! >> 8 === 0xff) return 'a multicast address';
    if (g[0]! >> 9 === 0x7e)
      return 'a private address (unique local, the AWS metadata service among them)';
    if (g[0]! >> 6 === 0x3fa) return 'a link-local address';
    return 'a reserved address';
  }
  return V6_REFUSED.find((r) => r.has(ip))?.why ?? null;
}

/** Why a webhook may not be sent to this IP address, or null when it is a public destination. */
export function addressProblem(ip: string): string | null {
  const family = isIP(ip);
  if (family === 4) return v4Problem(ip);
  if (family === 6) return v6Problem(ip);
  return 'not an IP address';
}

/** A webhook URL judged usable, with the address the request must go to. */
export interface WebhookTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

export type WebhookVerdict = { ok: true; target: WebhookTarget } | { ok: false; problem: string };

/** What is wrong with a URL as such (scheme, credentials), before any address is looked at. */
function webhookUrlShapeProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'the webhook URL is not a valid URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return 'the webhook URL must start with https:// or http://';
  if (url.username || url.password) return 'the webhook URL must not carry a user name or password';
  return null;
}

/** The checks that need no DNS lookup: the URL's shape, a local name, a refused IP literal. */
function webhookProblemWithoutLookup(raw: string, allow: WebhookAllow): string | null {
  const shape = webhookUrlShapeProblem(raw);
  if (shape) return shape;
  const host = normaliseHost(new URL(raw).hostname);
  if (allow.allowsHost(host)) return null;
  const why = isIP(host)
    ? allow.allowsAddress(host)
      ? null
      : addressProblem(host)
    : nameProblem(host);
  return why ? refusal(host, why) : null;
}

const refusal = (host: string, why: string) =>
  `the webhook host ${host} is ${why}; an admin can allow an internal endpoint with NGSCI_WEBHOOK_ALLOW`;

/**
 * Judges a webhook URL: the checks above, then every address the host resolves to (one refused
 * address refuses the host: which one a connection would use is not ours to choose). A host or
 * address on the allow list passes.
 */
export async function judgeWebhook(
  raw: string,
  allow: WebhookAllow,
  resolve: Resolver = systemResolver,
): Promise<WebhookVerdict> {
  const early = webhookProblemWithoutLookup(raw, allow);
  if (early) return { ok: false, problem: early };
  const url = new URL(raw);
  const host = normaliseHost(url.hostname);
  const literal = isIP(host);
  if (literal) return { ok: true, target: { url, address: host, family: literal === 6 ? 6 : 4 } };
  let addresses: ResolvedAddress[] = [];
  try {
    addresses = await resolve(host);
  } catch {
    // answered below, the same as an empty answer
  }
  if (!addresses.length)
    return { ok: false, problem: `the webhook host ${host} could not be resolved` };
  if (!allow.allowsHost(host)) {
    for (const a of addresses) {
      if (allow.allowsAddress(a.address)) continue;
      const why = addressProblem(a.address);
      if (why) return { ok: false, problem: refusal(host, `${a.address}, ${why}`) };
    }
  }
  const first = addresses[0]!;
  return { ok: true, target: { url, address: first.address, family: first.family } };
}
