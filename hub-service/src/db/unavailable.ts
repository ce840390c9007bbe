/**
 * Tells a database that is away (restarting, unreachable, out of connections) or out of disk from
 * any other failure, so callers hear a 503 with a code they can act on instead of a bare 500, and
 * background loops can wait instead of giving up. Works on postgres.js and PGlite errors, also
 * when drizzle wraps them (the driver's error is the `cause`).
 */
import { ApiError } from '../errors.js';

/** postgres.js's own codes for a connection that broke or never came up, and the OS's. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export type DatabaseTrouble = 'disk_full' | 'unavailable';

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/**
 * `disk_full`: the server could not write (SQLSTATE 53100, or ENOSPC seen by an embedded
 * database); `unavailable`: no connection, the server shutting down or starting (class 08,
 * 57P01-57P03), too many connections or out of memory (class 53). Null for anything else.
 */
export function databaseTrouble(err: unknown): DatabaseTrouble | null {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = codeOf(e);
    const message = e instanceof Error ? e.message : '';
    if (code === '53100' || code === 'ENOSPC' || /no space left on device/i.test(message))
      return 'disk_full';
    if (code && (CONNECTION_CODES.has(code) || /^08/.test(code) || /^57P0[123]$/.test(code)))
      return 'unavailable';
    if (code && /^53/.test(code)) return 'unavailable';
  }
  return null;
}

/** The 503 a request answers when the database is away or full; null for other errors. */
export function databaseApiError(err: unknown): ApiError | null {
  const trouble = databaseTrouble(err);
  if (trouble === 'disk_full')
    return new ApiError(
      503,
      'storage_full',
      "the database's disk is full, so nothing was saved; an operator must free space, then try again",
    );
  if (trouble === 'unavailable')
    return new ApiError(
      503,
      'database_unavailable',
      'the database is not answering (restarting or unreachable); nothing was saved, try again shortly',
    );
  return null;
}
