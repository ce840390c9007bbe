/**
 * Where a request's time goes, for benchmarks (bench/api) and an operator chasing a slow route:
 * with NGSCI_SERVER_TIMING=true each answer carries a `Server-Timing` header (W3C Server Timing)
 * with the milliseconds the request spent in each phase, e.g.
 *
 *   Server-Timing: auth;dur=0.04;desc="cache", hub;dur=0, db;dur=1.92;desc="7", serialize;dur=0.05, total;dur=2.61
 *
 * - `auth`: the token's lookup (`desc`: `cache`, a cached answer; `hub`, the hub was asked);
 * - `hub`: waiting for the hub's API (group lookups, token lookups), as part of any phase;
 * - `db`: waiting for database queries, summed over the request's queries (`desc`: how many), so
 *   queries run side by side count each;
 * - `serialize`: building the JSON body;
 * - `total`: from the first middleware to the answer, the event loop's queueing included.
 *
 * Off (the default), nothing is measured and no header is sent: the one cost is a boolean check
 * per request. The phases are kept per request in an AsyncLocalStorage; the database and hub
 * hooks are installed once at start (`instrument`), and add to the request they run for.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { PgPreparedQuery } from 'drizzle-orm/pg-core/session';

export class Timings {
  readonly started = performance.now();
  readonly phases = new Map<string, { ms: number; count: number; desc?: string }>();

  add(phase: string, ms: number, desc?: string): void {
    const p = this.phases.get(phase);
    if (p) {
      p.ms += ms;
      p.count++;
      if (desc !== undefined) p.desc = desc;
    } else this.phases.set(phase, { ms, count: 1, ...(desc !== undefined ? { desc } : {}) });
  }

  /** Describes a phase (e.g. where a token's answer came from) without adding time. */
  note(phase: string, desc: string): void {
    const p = this.phases.get(phase);
    if (p) p.desc = desc;
    else this.phases.set(phase, { ms: 0, count: 0, desc });
  }

  /** The header's value; `db` says how many queries, the others their `desc` if any. */
  header(): string {
    const parts: string[] = [];
    for (const name of ['auth', 'hub', 'db', 'serialize']) {
      const p = this.phases.get(name);
      const ms = p?.ms ?? 0;
      const desc = name === 'db' ? String(p?.count ?? 0) : p?.desc;
      parts.push(`${name};dur=${ms.toFixed(3)}${desc ? `;desc="${desc}"` : ''}`);
    }
    parts.push(`total;dur=${(performance.now() - this.started).toFixed(3)}`);
    return parts.join(', ');
  }
}

const store = new AsyncLocalStorage<Timings>();
let enabled = false;

/** Whether requests are measured (NGSCI_SERVER_TIMING); set once at start. */
export const timingEnabled = (): boolean => enabled;

/** Runs `fn` with a fresh record of phases, which `current()` then returns. */
export function measured<T>(fn: (t: Timings) => T): T {
  const t = new Timings();
  return store.run(t, () => fn(t));
}

/** The record of the request under way, if requests are measured. */
export function current(): Timings | undefined {
  return enabled ? store.getStore() : undefined;
}

/** Times a promise into the current request's `phase` (when measured). */
export async function timed<T>(phase: string, work: () => Promise<T>, desc?: string): Promise<T> {
  const t = current();
  if (!t) return work();
  const t0 = performance.now();
  try {
    return await work();
  } finally {
    t.add(phase, performance.now() - t0, desc);
  }
}

let dbHooked = false;

/**
 * Turns measuring on: every drizzle query (Postgres and PGlite alike go through
 * `PgPreparedQuery.queryWithCache`) adds to `db`, and the hub client's calls to `hub`.
 */
export function instrument(hub: object, methods: readonly string[]): void {
  enabled = true;
  if (!dbHooked) {
    dbHooked = true;
    const proto = PgPreparedQuery.prototype as unknown as {
      queryWithCache: (...args: unknown[]) => Promise<unknown>;
    };
    const original = proto.queryWithCache;
    proto.queryWithCache = function (this: unknown, ...args: unknown[]) {
      return timed('db', () => original.apply(this, args));
    };
  }
  const h = hub as Record<string, unknown>;
  for (const m of methods) {
    const original = h[m];
    if (typeof original !== 'function') continue;
    h[m] = (...args: unknown[]) =>
      timed('hub', () => (original as (...a: unknown[]) => Promise<unknown>).apply(hub, args));
  }
}
