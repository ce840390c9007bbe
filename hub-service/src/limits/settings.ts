/**
 * The settings of the service's limits on abuse: request body sizes, write rates per caller,
 * failed token lookups per client address, and the token cache. They are parsed from the
 * environment with the rest of the configuration (config.ts spreads this shape into its own), and
 * every one has a default, so an app built without them (tests) is limited the same way.
 * docs/limits.md describes each.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

const KIB = 1024;
const MIB = 1024 * KIB;

const bytes = (def: number) =>
  z.coerce
    .number()
    .int()
    .min(KIB, 'must be at least 1024 bytes')
    .max(256 * MIB, 'must be at most 268435456 bytes (256 MiB)')
    .default(def);

/** a count per minute; 0 turns that limit off */
const perMinute = (def: number) => z.coerce.number().int().min(0).max(1_000_000).default(def);

/** One address or a CIDR block, IPv4 or IPv6: `10.0.0.0/8`, `::1`. */
function isAddressOrBlock(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

const addressList = z.string().transform((raw, ctx) => {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.filter((e) => !isAddressOrBlock(e));
  if (bad.length) {
    ctx.addIssue({
      code: 'custom',
      message: `not an IP address or CIDR block: ${bad.join(', ')} (expected e.g. 127.0.0.1,::1,10.0.0.0/8)`,
    });
    return z.NEVER;
  }
  return entries;
});

export const LimitSettingsSchema = z.object({
  /** the largest request body any route accepts, in bytes, unless the route has its own below */
  NGSCI_BODY_LIMIT: bytes(64 * KIB),
  /** the largest batch an instance agent may post to /api/v1/agent/audit, in bytes */
  NGSCI_AUDIT_BODY_LIMIT: bytes(8 * MIB),
  /** the largest start request the spawner-bridge may send (it carries the server's environment) */
  NGSCI_BRIDGE_BODY_LIMIT: bytes(1 * MIB),
  /** changes (POST, PUT, DELETE) one user or one instance agent may make per minute */
  NGSCI_WRITES_PER_MINUTE: perMinute(120),
  /** launches and resizes one user may ask for per minute (each one asks the hub to spawn) */
  NGSCI_LAUNCHES_PER_MINUTE: perMinute(20),
  /** requests with a token the hub does not accept that one client address may make per minute */
  NGSCI_AUTH_FAILURES_PER_MINUTE: perMinute(30),
  /** how long a token the hub refused is remembered as refused, in seconds (0: not at all) */
  NGSCI_AUTH_NEGATIVE_CACHE_SECONDS: z.coerce.number().min(0).max(60).default(5),
  /** how many resolved tokens the cache holds; the least recently used go first */
  NGSCI_AUTH_CACHE_ENTRIES: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * the proxies whose X-Forwarded-For is believed (addresses or CIDR blocks, comma-separated):
   * configurable-http-proxy on this machine by default
   */
  NGSCI_TRUSTED_PROXIES: addressList.default(['127.0.0.1', '::1']),
});

export type LimitSettings = z.infer<typeof LimitSettingsSchema>;

/** The limits when nothing is configured. */
export const defaultLimits: LimitSettings = LimitSettingsSchema.parse({});
