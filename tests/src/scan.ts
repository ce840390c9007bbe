/**
 * The secrets scan: every secret value a run created, searched for in every place the run left
 * bytes behind (files, database rows, response bodies). A hit names the place and the kind of
 * secret, never the value, so a failing scan does not itself leak what it found. A value is also
 * searched in base64 (user-data, Basic auth headers and cloud-init carry secrets that way), at
 * each of the three byte alignments it could start at inside a longer encoded text.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import postgres from 'postgres';

export interface Secret {
  /** what the value is, in words: it is the only thing a hit reports */
  kind: string;
  value: string;
}

/** One secret found in one place. */
export interface Hit {
  where: string;
  kind: string;
}

/** Which kinds a place may hold by design (the login file holds the bridge secret...). */
export type Allowed = (where: string, kind: string) => boolean;

const nothingAllowed: Allowed = () => false;

/**
 * Shorter values would match by chance and mean the run collected the wrong thing (an empty
 * variable, a prefix); every secret the product makes is at least this long.
 */
const MIN_SECRET_LENGTH = 12;

/** The byte strings that betray a value: itself, and its base64 at each alignment. */
function needles(value: string): Buffer[] {
  const raw = Buffer.from(value, 'utf8');
  const out = [raw];
  for (const shift of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(shift), raw]).toString('base64');
    // the first group mixes in the padding bytes, the last one whatever follows the value
    const core = encoded.slice(shift ? 4 : 0, -4);
    if (core.length >= MIN_SECRET_LENGTH) out.push(Buffer.from(core, 'latin1'));
  }
  return out;
}

/** Checks the collected secrets once, before any place is searched. */
export function checkSecrets(secrets: Secret[]): void {
  for (const s of secrets)
    if (s.value.length < MIN_SECRET_LENGTH)
      throw new Error(
        `the run collected ${s.kind} with ${s.value.length} characters: not a secret it made`,
      );
}

/** The secrets in one place's content, except those the place may hold. */
export function scanContent(
  where: string,
  content: Buffer | string,
  secrets: Secret[],
  allowed: Allowed = nothingAllowed,
): Hit[] {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return secrets
    .filter((s) => !allowed(where, s.kind))
    .filter((s) => needles(s.value).some((n) => bytes.includes(n)))
    .map((s) => ({ where, kind: s.kind }));
}

/** Every regular file under a directory (symlinks are not followed: they point elsewhere). */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() ? [p] : [];
  });
}

/** Every file under `dir`, each named by its path relative to `dir`. */
export function scanFiles(dir: string, secrets: Secret[], allowed?: Allowed): Hit[] {
  return filesUnder(dir).flatMap((f) =>
    scanContent(relative(dir, f), readFileSync(f), secrets, allowed),
  );
}

/** Something the run left behind, named for a report. */
export interface Place {
  where: string;
  content: Buffer | string;
}

/** Searches every place; the hits, in order. */
export function scanPlaces(places: Place[], secrets: Secret[], allowed?: Allowed): Hit[] {
  return places.flatMap((p) => scanContent(p.where, p.content, secrets, allowed));
}

/** Postgres: the relation is gone (dropped between listing and reading it). */
const UNDEFINED_TABLE = '42P01';

/**
 * Every row of every table in every schema of the database, as Postgres prints a row: the
 * service's tables (notices, deliveries, events, security events, sealed secrets) and the
 * Terraform state the pg backend keeps. Each table is one place, `database <schema>.<table>
 * (<when>)`. A snapshot, because the service drops an instance's state schema once its machine is
 * destroyed: a scan at the end alone would never see a machine's state.
 */
export async function databaseSnapshot(url: string, when: string): Promise<Place[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql<{ schema: string; name: string }[]>`
      select table_schema as schema, table_name as name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')
      order by 1, 2`;
    const places: Place[] = [];
    for (const t of tables) {
      try {
        const rows = await sql<{ row: string }[]>`
          select r::text as row from ${sql(t.schema)}.${sql(t.name)} r`;
        places.push({
          where: `database ${t.schema}.${t.name} (${when})`,
          content: rows.map((r) => r.row).join('\n'),
        });
      } catch (err) {
        if ((err as { code?: string }).code !== UNDEFINED_TABLE) throw err;
      }
    }
    return places;
  } finally {
    await sql.end();
  }
}

/** A readable list of hits for an assertion message: places and kinds only. */
export function describeHits(hits: Hit[]): string {
  return hits.map((h) => `  ${h.kind} in ${h.where}`).join('\n');
}
