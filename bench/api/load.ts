/**
 * The load engine of bench/api: closed-loop HTTP clients over undici pools (each client waits for
 * its answer before it asks again), an event-stream client, a launch-and-stop client, and a
 * recorder of latencies and outcomes per route. Nothing here knows about ngsci's stack; api.ts
 * wires it to one. A route is a name and a path, so a new read route is one line in api.ts.
 */
import { setMaxListeners } from 'node:events';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { Pool } from 'undici';

/** A GET route the readers ask: `name` is what the tables print. */
export interface Route {
  name: string;
  path: string;
}

interface RouteRecord {
  clients: number;
  latencies: number[];
  /** 2xx answers that arrived before the phase's deadline (what requests/s counts) */
  okInWindow: number;
  ok: number;
  /** outcome (`HTTP 429`, `UND_ERR_SOCKET`, ...) → count */
  errors: Map<string, number>;
  /** the first answer of each kind of error, for the report */
  errorSamples: Map<string, string>;
  /** Server-Timing phases (the service's, with NGSCI_SERVER_TIMING): phase → summed ms */
  phaseMs: Map<string, number>;
  /** answers that carried a Server-Timing header */
  timed: number;
  /** database queries, summed over the timed answers */
  queries: number;
  /** timed answers whose token was looked up at the hub (not the service's cache) */
  authFromHub: number;
}

/** The service's phases, as its Server-Timing header names them (hub-service/src/timing.ts). */
export const PHASES = ['total', 'auth', 'hub', 'db', 'serialize'] as const;

export interface RouteSummary {
  name: string;
  clients: number;
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  errorKinds: Record<string, number>;
  errorSamples: Record<string, string>;
  /**
   * mean milliseconds per answer of each Server-Timing phase, `queries` the mean number of
   * database queries, `authFromHub` the share of tokens looked up at the hub; null without the header
   */
  timing:
    (Record<(typeof PHASES)[number], number> & { queries: number; authFromHub: number }) | null;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;

/** What one phase measured, per route. */
export class Recorder {
  private readonly routes = new Map<string, RouteRecord>();

  constructor(
    readonly startedAt: number,
    readonly endsAt: number,
  ) {}

  private route(name: string): RouteRecord {
    let r = this.routes.get(name);
    if (!r) {
      r = {
        clients: 0,
        latencies: [],
        okInWindow: 0,
        ok: 0,
        errors: new Map(),
        errorSamples: new Map(),
        phaseMs: new Map(),
        timed: 0,
        queries: 0,
        authFromHub: 0,
      };
      this.routes.set(name, r);
    }
    return r;
  }

  /** one more client that works this route (for the tables) */
  client(name: string): void {
    this.route(name).clients++;
  }

  /**
   * an answer (its HTTP status) or a failure to get one (an error code), after `ms`; `timing`
   * is the answer's Server-Timing header, if any
   */
  add(name: string, ms: number, outcome: number | string, sample = '', timing?: string): void {
    const r = this.route(name);
    r.latencies.push(ms);
    if (timing) addTiming(r, timing);
    if (typeof outcome === 'number' && outcome >= 200 && outcome < 300) {
      r.ok++;
      if (performance.now() <= this.endsAt) r.okInWindow++;
      return;
    }
    // a 429 is a refusal, never a success: it is listed as an error like any other
    const kind =
      typeof outcome === 'number'
        ? `HTTP ${outcome}${outcome === 429 ? ' (rate limited)' : ''}`
        : outcome;
    r.errors.set(kind, (r.errors.get(kind) ?? 0) + 1);
    if (!r.errorSamples.has(kind)) r.errorSamples.set(kind, sample.slice(0, 300));
  }

  summary(): RouteSummary[] {
    const seconds = (this.endsAt - this.startedAt) / 1000;
    return [...this.routes].map(([name, r]) => {
      const sorted = Float64Array.from(r.latencies).sort();
      const s = Array.from(sorted);
      const errors = [...r.errors.values()].reduce((a, b) => a + b, 0);
      return {
        name,
        clients: r.clients,
        requests: r.latencies.length,
        perSecond: r.okInWindow / seconds,
        p50: percentile(s, 50),
        p99: percentile(s, 99),
        max: s.at(-1) ?? NaN,
        errors,
        errorKinds: Object.fromEntries(r.errors),
        errorSamples: Object.fromEntries(r.errorSamples),
        timing: r.timed
          ? {
              ...(Object.fromEntries(
                PHASES.map((p) => [p, (r.phaseMs.get(p) ?? 0) / r.timed]),
              ) as Record<(typeof PHASES)[number], number>),
              queries: r.queries / r.timed,
              authFromHub: r.authFromHub / r.timed,
            }
          : null,
      };
    });
  }
}

/** Adds one Server-Timing header (`auth;dur=0.04;desc="cache", db;dur=1.9;desc="7", ...`). */
function addTiming(r: RouteRecord, header: string): void {
  r.timed++;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    let dur = 0;
    let desc = '';
    for (const p of params) {
      const [k, v = ''] = p.split('=');
      if (k === 'dur') dur = Number(v);
      else if (k === 'desc') desc = v.replace(/^"|"$/g, '');
    }
    if (!name || !Number.isFinite(dur)) continue;
    r.phaseMs.set(name, (r.phaseMs.get(name) ?? 0) + dur);
    if (name === 'db') r.queries += Number(desc) || 0;
    if (name === 'auth' && desc === 'hub') r.authFromHub++;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const errorCode = (e: unknown): string =>
  (e as { code?: string }).code ?? (e as Error).name ?? 'network error';

/** The pools and the recorder one phase's clients share. */
export interface Phase {
  /** short requests (reads, launches, stops) */
  pool: Pool;
  /** event streams: no body timeout, a stream is open for as long as the client wants */
  streams: Pool;
  rec: Recorder;
  endsAt: number;
}

/** Keep-alive pools to `origin` with a connection per client, so no request waits for a socket. */
export function pools(origin: string, clients: number): { pool: Pool; streams: Pool } {
  return {
    pool: new Pool(origin, {
      connections: clients + 16,
      pipelining: 1,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
      keepAliveTimeout: 60_000,
    }),
    streams: new Pool(origin, {
      connections: clients + 16,
      pipelining: 1,
      headersTimeout: 120_000,
      bodyTimeout: 0,
    }),
  };
}

/**
 * One timed request; the body is read whole. Returns the status and body (null on a failure).
 * `read: 'bytes'` (the readers' load, the peer's as much as the service's): a successful body is
 * received to its last byte but not unzipped or decoded, as wrk or autocannon treat it, so the
 * bench client's own CPU (which shares the machine) does not cap a route with a large answer; an
 * error's body is still read as text for its sample.
 */
export async function call(
  ph: Phase,
  name: string,
  path: string,
  token: string,
  init: {
    method?: 'GET' | 'POST';
    json?: unknown;
    scheduledAt?: number;
    signal?: AbortSignal;
    read?: 'text' | 'bytes';
  } = {},
): Promise<{ status: number; text: string } | null> {
  // an open-loop request is timed from when it was due, so a late send counts as waiting
  const t0 = init.scheduledAt ?? performance.now();
  try {
    const res = await ph.pool.request({
      method: init.method ?? 'GET',
      path,
      headers: {
        authorization: `token ${token}`,
        // as every browser asks (the peer is asked the same)
        'accept-encoding': 'gzip, deflate, br',
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const text =
      init.read === 'bytes' && ok
        ? (await res.body.arrayBuffer(), '')
        : await bodyText(res.headers['content-encoding'], res.body);
    const timing = res.headers['server-timing'];
    ph.rec.add(
      name,
      performance.now() - t0,
      res.statusCode,
      text,
      typeof timing === 'string' ? timing : undefined,
    );
    return { status: res.statusCode, text };
  } catch (e) {
    if (init.signal?.aborted) ph.rec.add(name, performance.now() - t0, UNANSWERED, String(e));
    else ph.rec.add(name, performance.now() - t0, errorCode(e), String(e));
    return null;
  }
}

const UNZIP: Record<string, (b: Buffer) => Buffer> = {
  gzip: gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
};

/** A body as text, unzipped as a browser unzips it. */
async function bodyText(
  encoding: string | string[] | undefined,
  body: { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer> },
): Promise<string> {
  if (!encoding || encoding === 'identity') return body.text();
  const unzip = typeof encoding === 'string' ? UNZIP[encoding] : undefined;
  if (!unzip)
    throw new Error(`an answer in an encoding the bench cannot read: ${String(encoding)}`);
  return unzip(Buffer.from(await body.arrayBuffer())).toString('utf8');
}

/** open loop: a request still unanswered when the phase's grace after its end ran out */
export const UNANSWERED = 'unanswered at the end of the phase';
/** open loop: a request not sent because as many as the client's connections were waiting */
export const NOT_SENT = 'not sent: every connection waiting';

/** A reader: the same GET, again and again, until the phase ends. */
export async function reader(ph: Phase, route: Route, token: string): Promise<void> {
  ph.rec.client(route.name);
  while (performance.now() < ph.endsAt)
    await call(ph, route.name, route.path, token, { read: 'bytes' });
}

/**
 * Open-loop load: `rate` requests a second of `route`, sent when due whatever the answers so far
 * (tokens taken in turn), until the phase ends; each is timed from when it was due, so queueing
 * anywhere (the client's sockets included) counts. Returns how many were sent and how far behind
 * schedule the sender itself fell at most (ms), which would show a client that could not keep up.
 */
export async function fixedRate(
  ph: Phase,
  route: Route,
  tokens: readonly string[],
  rate: number,
  opts: { maxInFlight: number; graceMs: number },
): Promise<{ sent: number; maxBehindMs: number }> {
  ph.rec.client(route.name);
  const start = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  const abort = new AbortController();
  // every request of the phase listens on the one signal
  setMaxListeners(0, abort.signal);
  let i = 0;
  let maxBehindMs = 0;
  for (;;) {
    const now = performance.now();
    const due = start + (i * 1000) / rate;
    if (due >= ph.endsAt) break;
    if (due > now) {
      await sleep(due - now);
      continue;
    }
    maxBehindMs = Math.max(maxBehindMs, now - due);
    // everything due by now, each timed from its own due time
    for (let d = due; d <= now && d < ph.endsAt; d = start + (i * 1000) / rate) {
      i++;
      // a server that cannot keep up: the backlog is bounded (by the connections), and what
      // could not be sent counts as never answered, so it weighs in the percentiles
      if (inFlight.size >= opts.maxInFlight) {
        ph.rec.add(route.name, Infinity, NOT_SENT);
        continue;
      }
      const p = call(ph, route.name, route.path, tokens[i % tokens.length]!, {
        scheduledAt: d,
        signal: abort.signal,
        read: 'bytes',
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  }
  // what is still waiting a while after the end is given up (and counted as unanswered)
  const grace = setTimeout(() => abort.abort(), opts.graceMs);
  await Promise.all(inFlight);
  clearTimeout(grace);
  return { sent: i, maxBehindMs };
}

export interface StreamCounts {
  opened: number;
  events: number;
  pings: number;
  /** the most streams one user held at once during the phase */
  maxPerUser: number;
}

/**
 * An event-stream subscriber, as a JupyterLab tab is: opens the stream, reads it for 5–15 s,
 * closes it and opens it again, until the phase ends. Each opening is timed to its headers.
 * `held` counts open streams per user, to show the per-user cap was respected.
 */
export async function subscriber(
  ph: Phase,
  name: string,
  path: string,
  user: string,
  token: string,
  counts: StreamCounts,
  held: Map<string, number>,
): Promise<void> {
  ph.rec.client(name);
  while (performance.now() < ph.endsAt - 1000) {
    const hold = Math.min(ph.endsAt - performance.now(), 5_000 + Math.random() * 10_000);
    const abort = new AbortController();
    const t0 = performance.now();
    let res;
    try {
      res = await ph.streams.request({
        method: 'GET',
        path,
        headers: { authorization: `token ${token}`, accept: 'text/event-stream' },
        signal: abort.signal,
      });
    } catch (e) {
      ph.rec.add(name, performance.now() - t0, errorCode(e), String(e));
      await sleep(1000);
      continue;
    }
    if (res.statusCode !== 200) {
      ph.rec.add(name, performance.now() - t0, res.statusCode, await res.body.text());
      await sleep(1000);
      continue;
    }
    ph.rec.add(name, performance.now() - t0, 200);
    counts.opened++;
    const now = (held.get(user) ?? 0) + 1;
    held.set(user, now);
    counts.maxPerUser = Math.max(counts.maxPerUser, now);
    const timer = setTimeout(() => abort.abort(), Math.max(0, t0 + hold - performance.now()));
    let buffered = '';
    try {
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        const frames = buffered.split('\n\n');
        buffered = frames.pop() ?? '';
        for (const f of frames) {
          if (/^event: instance$/m.test(f)) counts.events++;
          else if (/^event: ping$/m.test(f)) counts.pings++;
        }
      }
      // the service ended a stream the client still wanted
      if (!abort.signal.aborted) ph.rec.add(name, 0, 'stream ended by the service');
    } catch (e) {
      if (!abort.signal.aborted) ph.rec.add(name, 0, `stream broke: ${errorCode(e)}`, String(e));
    } finally {
      clearTimeout(timer);
      held.set(user, (held.get(user) ?? 1) - 1);
    }
  }
}

export interface LaunchCounts {
  launched: number;
  running: number;
  stopped: number;
  /** seconds from the launch request to the instance `running` */
  toRunning: number[];
}

/**
 * A launcher: launches its user's default server on the local provisioner (a real JupyterLab
 * process), waits for it to run, stops it, waits for the stop, and again until the phase ends.
 * The wait polls `GET /instances/default` once a second (those polls are recorded too). An
 * instance it started is always stopped, also past the deadline.
 */
export async function launcher(
  ph: Phase,
  api: string,
  token: string,
  size: string,
  counts: LaunchCounts,
  timeouts = { start: 240, stop: 120 },
): Promise<void> {
  const poll = async (done: string[], seconds: number): Promise<string> => {
    const deadline = performance.now() + seconds * 1000;
    for (;;) {
      const r = await call(ph, 'GET /api/v1/instances/{server}', `${api}/instances/default`, token);
      const state =
        r && r.status === 200 ? (JSON.parse(r.text) as { state: string }).state : 'unknown';
      if (done.includes(state)) return state;
      if (performance.now() > deadline) return `${state} after ${seconds} s`;
      await sleep(1000);
    }
  };
  ph.rec.client('POST /api/v1/instances');
  while (performance.now() < ph.endsAt - 5_000) {
    const t0 = performance.now();
    const r = await call(ph, 'POST /api/v1/instances', `${api}/instances`, token, {
      method: 'POST',
      json: { size },
    });
    if (!r || r.status !== 202) {
      await sleep(2000);
      continue;
    }
    counts.launched++;
    const state = await poll(['running', 'failed', 'stopped'], timeouts.start);
    if (state === 'running') {
      counts.running++;
      counts.toRunning.push((performance.now() - t0) / 1000);
    } else {
      ph.rec.add('POST /api/v1/instances', 0, `launch ended ${state}, not running`);
    }
    if (state === 'failed' || state === 'stopped') continue;
    await call(ph, 'POST /api/v1/instances/{server}/stop', `${api}/instances/default/stop`, token, {
      method: 'POST',
    });
    const end = await poll(['stopped', 'failed'], timeouts.stop);
    if (end === 'stopped') counts.stopped++;
    else ph.rec.add('POST /api/v1/instances/{server}/stop', 0, `stop ended ${end}`);
  }
}
