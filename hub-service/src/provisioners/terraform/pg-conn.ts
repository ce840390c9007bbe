/**
 * Derives the connection string Terraform's pg state backend uses from the service's own Postgres
 * URL, so both connect the same way. They disagree by default: the service's client (postgres.js)
 * connects without TLS unless the URL asks for it, while the backend's driver (lib/pq) requires TLS
 * unless the URL says `sslmode=disable` — on a plain Postgres `terraform init` then fails with
 * "pq: SSL is not enabled on the server". lib/pq also knows fewer modes than libpq and postgres.js
 * (no `allow`, no `prefer`) and rejects any other value.
 */

/** The modes lib/pq accepts; anything else makes `terraform init` fail. */
const LIB_PQ_MODES = new Set(['disable', 'require', 'verify-ca', 'verify-full']);

export class PgConnStringError extends Error {
  override readonly name = 'PgConnStringError';
  readonly code = 'pg_conn_string_invalid';
}

export interface TerraformPgConn {
  /** what the terraform child gets as PG_CONN_STR */
  connString: string;
  /** one line for the start-up log when the mapping is worth knowing; never holds the password */
  note?: string;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === '' || h === 'localhost' || h === '::1' || /^127\./.test(h) || h.startsWith('/');
}

/**
 * `url` is the service's own URL (DATABASE_URL or NGSCI_TERRAFORM_PG_CONN_STR). A key/value DSN
 * (`host=... dbname=...`) is lib/pq's own syntax and passes through untouched: whoever wrote it
 * wrote it for terraform.
 */
export function terraformPgConnString(url: string): TerraformPgConn {
  if (!/^postgres(ql)?:\/\//i.test(url)) return { connString: url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // the message must not echo the URL: it carries the password
    throw new PgConnStringError('the Postgres URL for terraform state is not a valid URL');
  }
  const params = parsed.searchParams;
  // postgres.js also reads `ssl=true|false`; lib/pq would send it to the server as a setting
  // ("unrecognized configuration parameter"), so it becomes the sslmode it means
  const sslParam = params.get('ssl');
  params.delete('ssl');
  const socketHost = params.get('host') ?? '';
  const where = parsed.hostname || socketHost || 'localhost';
  const given = params.get('sslmode') ?? sslModeOfSslParam(sslParam);
  let mode: string;
  let note: string | undefined;
  switch (given) {
    case undefined:
      mode = 'disable';
      if (!isLoopback(where))
        note =
          `terraform state: connecting to ${where} without TLS, like the service's own connection;` +
          ' add sslmode=require (or verify-full) to the database URL to use TLS for both';
      break;
    case 'allow':
      // allow = plain first, TLS only if the server insists; lib/pq cannot fall back, so plain
      mode = 'disable';
      note = `terraform state: sslmode=allow is not supported by terraform's pg backend; using sslmode=disable for ${where}`;
      break;
    case 'prefer':
      // prefer = TLS when the server offers it; never silently downgrade: require it
      mode = 'require';
      note = `terraform state: sslmode=prefer is not supported by terraform's pg backend; using sslmode=require for ${where} (set sslmode=disable if the server has no TLS)`;
      break;
    default:
      if (!LIB_PQ_MODES.has(given))
        throw new PgConnStringError(
          `sslmode=${given.slice(0, 20)} in the Postgres URL is not one of disable, allow, prefer, require, verify-ca, verify-full`,
        );
      mode = given;
  }
  params.set('sslmode', mode);
  return { connString: parsed.toString(), ...(note ? { note } : {}) };
}

function sslModeOfSslParam(value: string | null): string | undefined {
  if (value === null) return undefined;
  if (['true', '1', 'require'].includes(value)) return 'require';
  if (['false', '0', 'disable'].includes(value)) return 'disable';
  return value;
}
