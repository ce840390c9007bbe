/**
 * Prometheus metrics (`GET /metrics`, text exposition format; docs/operations.md, "Metrics").
 *
 * Request rate and latency are counted as requests pass (one middleware). Everything else is read
 * when Prometheus scrapes: a few aggregate queries over the service's own tables (instances, jobs,
 * the ledger's daily rollups, budget alerts, security events, agents) and the meter's last cycle
 * report, so no other part of the service needs a hook. Replicas on one database all report the
 * same database figures; the meter figures come from the replica holding the meter lock
 * (`ngsci_meter_leader` 1).
 *
 * Who may scrape: a request carrying the service's own hub token (JUPYTERHUB_API_TOKEN, as
 * `Authorization: Bearer <token>`), at `/metrics` or `<prefix>metrics`; or, with no token, a
 * request to `/metrics` whose connection comes from this machine's loopback and carries no
 * X-Forwarded-For. The hub's proxy routes only `<prefix>*` to the service and adds
 * X-Forwarded-For, so the unprefixed path is reachable only on the service's own port. Without
 * either: 401; with another token (a user's, the bridge secret): 403.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as perf, PerformanceObserver, type RecordableHistogram } from 'node:perf_hooks';
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { sql } from 'drizzle-orm';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { tokenFrom } from './auth.js';
import type { AppDeps, AppEnv } from './http.js';
import { sampleLoopLateness } from './loop-lateness.js';
import { resultRows } from './metering/ledger.js';

/** Every metric this module exports (the Grafana board's test checks its queries against these). */
export const METRIC_NAMES = [
  'ngsci_http_requests_total',
  'ngsci_http_request_duration_seconds',
  'ngsci_meter_leader',
  'ngsci_meter_cycle_duration_seconds',
  'ngsci_meter_cycle_rows_written',
  'ngsci_meter_cycle_streams',
  'ngsci_meter_last_cycle_timestamp_seconds',
  'ngsci_jobs',
  'ngsci_jobs_oldest_age_seconds',
  'ngsci_instances',
  'ngsci_burn_rate_micros_per_hour',
  'ngsci_spend_micros_total',
  'ngsci_group_spend_micros_total',
  'ngsci_budget_alerts_total',
  'ngsci_security_events_total',
  'ngsci_agent_silent_instances',
  'ngsci_gpus_reporting',
  'ngsci_gpus_idle',
  'ngsci_metrics_scrape_errors_total',
  'ngsci_event_loop_delay_max_seconds',
  'ngsci_event_loop_delay_p99_seconds',
  'ngsci_gc_pause_seconds',
] as const;

/**
 * The process's own pauses: how late its event loop ran (every request waits behind it) and the
 * garbage collector's pauses. One watch per process, whatever the number of registries.
 */
const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
/** the loop's lateness at each tick, in µs (loop-lateness.ts) */
let loopDelay: RecordableHistogram | null = null;
const gcPauseListeners = new Set<(kind: string, seconds: number) => void>();
function watchProcess(onGcPause: (kind: string, seconds: number) => void): RecordableHistogram {
  if (!loopDelay) {
    loopDelay = sampleLoopLateness();
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const { detail } = e as { detail?: { kind?: number } | null };
        const kind = GC_KINDS[detail?.kind ?? -1] ?? 'other';
        for (const listener of gcPauseListeners) listener(kind, e.duration / 1000);
      }
    }).observe({ entryTypes: ['gc'] });
  }
  gcPauseListeners.add(onGcPause);
  return loopDelay;
}

type Deps = Pick<AppDeps, 'database' | 'config' | 'prefix' | 'logger'> & {
  metering?: Pick<AppDeps['metering'], 'meter'>;
};

const ACTIVE = `('requested','provisioning','starting','running','stopping')`;
/** database figures are read at most this often, however often (and by how many) it is scraped */
const DB_CACHE_MS = 5_000;

export interface Metrics {
  /** counts each request by method, route pattern and status, and times it */
  record: MiddlewareHandler<AppEnv>;
  /** GET /metrics and GET <prefix>metrics */
  routes: Hono<AppEnv>;
  /** the exposition text, as a scrape gets it (tests) */
  text(): Promise<string>;
}

export function createMetrics(deps: Deps): Metrics {
  const base = deps.prefix.replace(/\/$/, '');
  const register = new Registry();
  const requests = new Counter({
    name: 'ngsci_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [register],
  });
  const latency = new Histogram({
    name: 'ngsci_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route pattern (SSE streams excluded)',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [register],
  });
  const scrapeErrors = new Counter({
    name: 'ngsci_metrics_scrape_errors_total',
    help: 'Scrapes whose database figures could not be read (the previous figures were kept)',
    registers: [register],
  });

  const gcPauses = new Histogram({
    name: 'ngsci_gc_pause_seconds',
    help: "Pauses of the service process's garbage collector, by kind (major, minor, incremental, weakcb)",
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [register],
  });
  const loop = watchProcess((kind, seconds) => gcPauses.observe({ kind }, seconds));
  // read together, then the histogram starts again: both figures are since the previous scrape
  let loopRead = { max: 0, p99: 0 };
  new Gauge({
    name: 'ngsci_event_loop_delay_max_seconds',
    help: "The longest the service process's event loop was late since the previous scrape (every request waits behind it)",
    registers: [register],
    collect() {
      loopRead = { max: loop.max / 1e6, p99: loop.percentile(99) / 1e6 };
      loop.reset();
      this.set(loopRead.max);
    },
  });
  new Gauge({
    name: 'ngsci_event_loop_delay_p99_seconds',
    help: "The 99th percentile of the service process's event-loop delay since the previous scrape",
    registers: [register],
    collect() {
      this.set(loopRead.p99);
    },
  });

  const meter = () => deps.metering?.meter ?? null;
  new Gauge({
    name: 'ngsci_meter_leader',
    help: '1 when this replica holds the meter lock and runs the meter cycles',
    registers: [register],
    collect() {
      this.set(meter()?.leader ? 1 : 0);
    },
  });
  const lastCycle = (
    name: string,
    help: string,
    pick: (r: NonNullable<ReturnType<typeof meter>>['last'] & object) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        const last = meter()?.last;
        if (last) this.set(pick(last));
      },
    });
  lastCycle(
    'ngsci_meter_cycle_duration_seconds',
    "Duration of this replica's last meter cycle",
    (r) => r.ms / 1000,
  );
  lastCycle(
    'ngsci_meter_cycle_rows_written',
    "Ledger rows written or extended by this replica's last meter cycle",
    (r) => r.rowsWritten,
  );
  lastCycle(
    'ngsci_meter_cycle_streams',
    'Usage streams (running instances and homes) the last meter cycle accrued',
    (r) => r.streams,
  );
  lastCycle(
    'ngsci_meter_last_cycle_timestamp_seconds',
    'When the last meter cycle ran (Unix time): time() minus this is how late the meter is',
    (r) => Date.parse(r.at) / 1000,
  );

  // ---- read from the database at scrape time

  const jobs = gauge('ngsci_jobs', 'Jobs by state and kind', ['state', 'kind']);
  const jobsAge = gauge(
    'ngsci_jobs_oldest_age_seconds',
    'Age of the oldest queued or running job, by state and kind',
    ['state', 'kind'],
  );
  const instanceCount = gauge(
    'ngsci_instances',
    'Instances not yet stopped or failed, by state, size and cloud',
    ['state', 'size', 'cloud'],
  );
  const burn = gauge(
    'ngsci_burn_rate_micros_per_hour',
    'Sum of the list prices per hour (µ$) of the instances running now, by cloud',
    ['cloud'],
  );
  const spend = gauge(
    'ngsci_spend_micros_total',
    'Spend recorded in the ledger since the start (µ$), by plan; a counter: use rate()/increase()',
    ['plan'],
    'counter',
  );
  const groupSpend = gauge(
    'ngsci_group_spend_micros_total',
    "Spend of each hub group's members since the start (µ$); a counter",
    ['group'],
    'counter',
  );
  const alerts = gauge(
    'ngsci_budget_alerts_total',
    'Budget alerts sent since the start, by subject kind and threshold (percent); a counter',
    ['subject_kind', 'threshold'],
    'counter',
  );
  const security = gauge(
    'ngsci_security_events_total',
    'Security events raised and still kept, by kind and severity; a counter',
    ['kind', 'severity'],
    'counter',
  );
  const silent = gauge(
    'ngsci_agent_silent_instances',
    'Running instances whose agent has gone silent (NGSCI_AGENT_SILENT_AFTER)',
    [],
  );
  const gpusReporting = gauge(
    'ngsci_gpus_reporting',
    'GPUs of running instances with an agent sample in the last 10 minutes',
    [],
  );
  const gpusIdle = gauge(
    'ngsci_gpus_idle',
    'GPUs of running instances whose newest sample is below NGSCI_CULL_GPU_BUSY_PERCENT',
    [],
  );

  function gauge(name: string, help: string, labelNames: string[]): Gauge;
  function gauge(name: string, help: string, labelNames: string[], type: 'counter'): Counter;
  function gauge(name: string, help: string, labelNames: string[], type = 'gauge') {
    // totals kept in the database: a counter reset and set to the total at each read
    return type === 'counter'
      ? new Counter({ name, help, labelNames, registers: [register] })
      : new Gauge({ name, help, labelNames, registers: [register] });
  }

  let read: { at: number; done: Promise<void> } | null = null;
  const readDatabase = async () => {
    const db = deps.database.db;
    const rows = async <T>(q: ReturnType<typeof sql>) => resultRows<T>(await db.execute(q));
    const now = Date.now();
    const [jobRows, instanceRows, burnRows, planRows, groupRows, alertRows, eventRows] =
      await Promise.all([
        rows<{ state: string; kind: string; n: number | string; oldest: string | Date | null }>(
          sql`select state, kind, count(*) as n,
                min(case when state in ('queued','running') then created_at end) as oldest
              from jobs group by state, kind`,
        ),
        rows<{ state: string; size_id: string; cloud: string; n: number | string }>(
          sql.raw(`select state, size_id, cloud, count(*) as n from instances
                   where state in ${ACTIVE} group by state, size_id, cloud`),
        ),
        rows<{ cloud: string; micros: number | string }>(
          sql`select cloud, sum(list_rate_per_hour_micros) as micros from instances
              where state = 'running' group by cloud`,
        ),
        rows<{ plan_id: string; micros: number | string }>(
          sql`select plan_id, sum(amount_micros) as micros from usage_intervals group by plan_id`,
        ),
        rows<{ group_name: string; micros: number | string }>(
          sql`select group_name, sum(micros) as micros from usage_group_days group by group_name`,
        ),
        rows<{ subject_kind: string; threshold: number; n: number | string }>(
          sql`select subject_kind, threshold, count(*) as n from budget_alerts
              group by subject_kind, threshold`,
        ),
        rows<{ kind: string; severity: string; n: number | string }>(
          sql`select kind, severity, count(*) as n from security_events group by kind, severity`,
        ),
      ]);
    const [silentRows, sampleRows] = await Promise.all([
      rows<{ n: number | string }>(
        sql`select count(*) as n from instance_agents a join instances i on i.id = a.instance_id
            where i.state = 'running' and a.revoked_at is null and a.silent_since is not null`,
      ),
      rows<{ gpus: unknown }>(
        sql`select distinct on (s.instance_id) s.gpus from gpu_samples s
            join instances i on i.id::text = s.instance_id
            where i.state = 'running' and s.at > ${new Date(now - 600_000).toISOString()}
            order by s.instance_id, s.id desc`,
      ),
    ]);

    jobs.reset();
    jobsAge.reset();
    for (const r of jobRows) {
      jobs.set({ state: r.state, kind: r.kind }, Number(r.n));
      if (r.oldest)
        jobsAge.set(
          { state: r.state, kind: r.kind },
          Math.max(0, (now - new Date(r.oldest).getTime()) / 1000),
        );
    }
    instanceCount.reset();
    for (const r of instanceRows)
      instanceCount.set({ state: r.state, size: r.size_id, cloud: r.cloud }, Number(r.n));
    burn.reset();
    for (const r of burnRows) burn.set({ cloud: r.cloud }, Number(r.micros));
    spend.reset();
    for (const r of planRows) spend.inc({ plan: r.plan_id }, Number(r.micros));
    groupSpend.reset();
    for (const r of groupRows) groupSpend.inc({ group: r.group_name }, Number(r.micros));
    alerts.reset();
    for (const r of alertRows)
      alerts.inc({ subject_kind: r.subject_kind, threshold: String(r.threshold) }, Number(r.n));
    security.reset();
    for (const r of eventRows) security.inc({ kind: r.kind, severity: r.severity }, Number(r.n));
    silent.set(Number(silentRows[0]?.n ?? 0));
    const busyPercent = deps.config.NGSCI_CULL_GPU_BUSY_PERCENT;
    let reporting = 0;
    let idle = 0;
    for (const r of sampleRows) {
      const gpus = (typeof r.gpus === 'string' ? JSON.parse(r.gpus) : r.gpus) as Array<{
        utilizationPercent: number | null;
      }>;
      for (const g of Array.isArray(gpus) ? gpus : []) {
        reporting++;
        if (g.utilizationPercent !== null && g.utilizationPercent < busyPercent) idle++;
      }
    }
    gpusReporting.set(reporting);
    gpusIdle.set(idle);
  };

  const refresh = async () => {
    if (!read || Date.now() - read.at >= DB_CACHE_MS) {
      read = { at: Date.now(), done: readDatabase() };
      read.done.catch((err: unknown) => {
        scrapeErrors.inc();
        deps.logger.warn({ err }, 'metrics: the database figures could not be read');
        read = null;
      });
    }
    await read.done.catch(() => {});
  };

  const text = async () => {
    await refresh();
    return register.metrics();
  };

  const record: MiddlewareHandler<AppEnv> = async (c, next) => {
    const started = performance.now();
    await next();
    const route = routeLabel(c, base);
    const labels = { method: c.req.method, route };
    requests.inc({ ...labels, status: String(c.res.status) });
    // an event stream stays open for minutes: its duration is not latency
    if (!c.res.headers.get('content-type')?.startsWith('text/event-stream'))
      latency.observe(labels, (performance.now() - started) / 1000);
  };

  const token = deps.config.JUPYTERHUB_API_TOKEN;
  const routes = new Hono<AppEnv>();
  const serve = (unprefixed: boolean) => async (c: Context<AppEnv>) => {
    const verdict = mayScrape(c, token, unprefixed);
    if (verdict !== 'ok') {
      const how = unprefixed
        ? "the service's own hub token (Authorization: Bearer …) or a request from this machine"
        : "the service's own hub token (Authorization: Bearer …)";
      return c.json(
        verdict === 'anonymous'
          ? {
              code: 'unauthenticated',
              message: `metrics need ${how}`,
              requestId: c.get('requestId') ?? 'unknown',
            }
          : {
              code: 'forbidden',
              message: `metrics need ${how}; this token is not the service's`,
              requestId: c.get('requestId') ?? 'unknown',
            },
        verdict === 'anonymous' ? 401 : 403,
      );
    }
    const body = await text();
    return c.body(body, 200, { 'content-type': register.contentType });
  };
  routes.get('/metrics', serve(true));
  if (base) routes.get(`${base}/metrics`, serve(false));

  return { record, routes, text };
}

/** The matched route's pattern without the service prefix (`/api/v1/instances/:id`), never the
 * raw path: ids in labels would make a series per instance. */
function routeLabel(c: Context, base: string): string {
  let pattern = '';
  try {
    pattern = c.req.routePath;
  } catch {
    pattern = '';
  }
  if (!pattern || pattern.endsWith('*')) {
    // no route handled it, or a middleware answered first (a refusal): keep the known prefix
    return c.res.status === 404 ? 'unmatched' : refusedLabel(c.req.path, base);
  }
  return base && pattern.startsWith(base) ? pattern.slice(base.length) || '/' : pattern;
}

function refusedLabel(path: string, base: string): string {
  const rest = base && path.startsWith(base) ? path.slice(base.length) : path;
  const m = /^\/api\/v1\/(bridge|agent|admin)\b/.exec(rest);
  return m ? `/api/v1/${m[1]}/*` : rest.startsWith('/api/v1/') ? '/api/v1/*' : 'other';
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function mayScrape(
  c: Context,
  token: string,
  unprefixed: boolean,
): 'ok' | 'anonymous' | 'wrong-token' {
  const given = tokenFrom(c.req.header('authorization'));
  if (given !== null) return sameSecret(given, token) ? 'ok' : 'wrong-token';
  if (!unprefixed || c.req.header('x-forwarded-for') !== undefined) return 'anonymous';
  let peer: string | undefined;
  try {
    peer = getConnInfo(c).remote.address;
  } catch {
    return 'anonymous';
  }
  return peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1' ? 'ok' : 'anonymous';
}
