/**
 * bench/api: the service's API under load, side by side with JupyterHub's own `GET /hub/api/user`
 * in the same run: through the hub's proxy (configurable-http-proxy) on loopback, as browsers
 * reach both, and directly on each one's own port (the service's as a load balancer in front of
 * replicas reaches it, the hub's API port), so the proxy's share shows.
 *
 * It starts the product as `npm start` does (tests/src/stack.ts) on Postgres (default) or PGlite,
 * with NGSCI_SERVER_TIMING on (each answer says where its time went inside the service), creates
 * researcher users with a token each, and runs these phases:
 *   - mix (through the proxy): readers split evenly over the read routes, event-stream
 *     subscribers (`GET /instances/default/events`, reopened every 5–15 s), and a few launchers
 *     that launch and stop local instances (real JupyterLab processes; at most 5 at once);
 *   - for each way in (`--via`): the peer alone, each read route alone, the service's health
 *     route alone (no token, one `select 1`: the ceiling of a trivial route), the peer again, each
 *     with the same number of closed-loop clients for the same time;
 *   - for each way in: each route and the peer at a fixed rate (`--rate`, open loop), for p99.
 * With `--database postgres,pglite` it runs all of it on each database in turn, a stack of its own
 * each, and ends with one summary of every route on every database against issue 14's targets.
 * It prints requests/s, p50/p99 per route, every error, each route's ratio to the peer, the CPU
 * time each component of the stack spent per request (cpu.ts), and the service's own phases per
 * request (auth, hub calls, database queries, serialization; from Server-Timing). Any error (a
 * 429 too) makes the exit status 1. Usage:
 *
 *   npm run api -w @ngsci/bench -- [--clients 500] [--seconds 60] [--database postgres,pglite]
 *     [--users 100] [--streams 50] [--launchers 5] [--routes me,instances,budget,usage,...]
 *     [--via both|proxy|direct] [--rate 1000] [--timing on|off] [--mix-only] [--skip-mix]
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Pool } from 'undici';
import { startStack, type Stack } from '../../tests/src/stack.js';
import { cpuReading, cpuUsed, type CpuReading } from './cpu.js';
import {
  call,
  fixedRate,
  NOT_SENT,
  UNANSWERED,
  launcher,
  pools,
  reader,
  Recorder,
  subscriber,
  type LaunchCounts,
  type Phase,
  type Route,
  type RouteSummary,
  type StreamCounts,
} from './load.js';

const API = '/services/ngsci/api/v1';
const PEER: Route = { name: 'GET /hub/api/user (JupyterHub, the peer)', path: '/hub/api/user' };
/** the service's health route: no token, no hub, one `select 1`; the ceiling of a trivial route */
const HEALTH: Route = { name: 'GET /health (no token, select 1)', path: '/services/ngsci/health' };
/** The service's read routes, by the name `--routes` takes. */
const READ_ROUTES: Record<string, Route> = Object.fromEntries(
  ['me', 'instances', 'budget', 'usage', 'billing/statements', 'catalog'].map((r) => [
    r,
    { name: `GET /api/v1/${r}`, path: `${API}/${r}` },
  ]),
);
const STREAM_ROUTE = 'GET /api/v1/instances/{server}/events (open)';
/** a launch's size: the local provisioner's smallest */
const SIZE = 'cpu-small';
/** at most this many local instances at once: each is a JupyterLab process on this machine */
const MAX_LAUNCHERS = 5;
/** NGSCI_SSE_PER_USER, which the bench leaves as it is (its default unless set for the run) */
const SSE_PER_USER = Number(process.env.NGSCI_SSE_PER_USER ?? 8);
/** issue 14's latency target at the fixed rate */
const P99_TARGET_MS = 10;
/** issue 14's throughput target: each read route's requests/s over the peer's, per database */
const RATIO_TARGET: Record<Database, number> = { postgres: 5, pglite: 2 };
const DATABASES = ['postgres', 'pglite'] as const;
type Database = (typeof DATABASES)[number];
/** a fixed-rate phase waits this long after its end for answers still due, then gives up on them */
const FIXED_RATE_GRACE_MS = 5_000;

/**
 * The rate limits the bench raises (docs/limits.md). Reads are never limited; only the launchers
 * write, a launch and a stop per cycle, which the defaults (120 writes, 20 launches a minute per
 * user) would already allow; raised so a fast machine cannot turn the bench into a limit test.
 */
const LIMITS: Record<string, string> = {
  NGSCI_WRITES_PER_MINUTE: '1200',
  NGSCI_LAUNCHES_PER_MINUTE: '120',
  // NGSCI_AUTH_FAILURES_PER_MINUTE stays at its default although every bench client reaches the
  // proxy from 127.0.0.1 (all users behind one address, as a classroom behind one NAT): valid
  // tokens must never be refused by it
};

function int(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be a whole number from ${min} to ${max} (got ${raw})`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '60' },
    database: { type: 'string', default: 'postgres' },
    users: { type: 'string', default: '100' },
    streams: { type: 'string' },
    launchers: { type: 'string', default: String(MAX_LAUNCHERS) },
    routes: { type: 'string', default: Object.keys(READ_ROUTES).join(',') },
    via: { type: 'string', default: 'both' },
    rate: { type: 'string', default: '1000' },
    timing: { type: 'string', default: 'on' },
    'mix-only': { type: 'boolean', default: false },
    'skip-mix': { type: 'boolean', default: false },
  },
});
const clients = int('clients', values.clients, 1, 2000);
const seconds = int('seconds', values.seconds, 5, 600);
const users = int('users', values.users, 1, 1000);
const launchers = int('launchers', values.launchers, 0, Math.min(MAX_LAUNCHERS, users, clients));
const streams = int(
  'streams',
  values.streams ?? String(Math.floor(clients / 10)),
  0,
  clients - launchers,
);
const rate = int('rate', values.rate, 0, 20_000);
const databases = [...new Set(values.database.split(',').map((d) => d.trim()))];
if (!databases.every((d): d is Database => (DATABASES as readonly string[]).includes(d))) {
  console.error('--database must be postgres, pglite, or both comma-separated (postgres,pglite)');
  process.exit(2);
}
if (!['both', 'proxy', 'direct'].includes(values.via)) {
  console.error('--via must be both, proxy or direct');
  process.exit(2);
}
const vias = (values.via === 'both' ? ['proxy', 'direct'] : [values.via]) as Via[];
if (values.timing !== 'on' && values.timing !== 'off') {
  console.error('--timing must be on or off');
  process.exit(2);
}
const timing = values.timing === 'on';
if (values['mix-only'] && values['skip-mix']) {
  console.error('--mix-only and --skip-mix leave nothing to run');
  process.exit(2);
}
const routes = values.routes.split(',').map((r) => {
  const route = READ_ROUTES[r.trim()];
  if (!route) {
    console.error(`--routes: unknown route ${r}; known: ${Object.keys(READ_ROUTES).join(', ')}`);
    process.exit(2);
  }
  return route;
});
const readers = clients - launchers - streams;
if (!values['skip-mix'] && readers < routes.length) {
  console.error(`--clients leaves ${readers} readers for ${routes.length} routes`);
  process.exit(2);
}
if (!values['skip-mix'] && Math.ceil(streams / users) > SSE_PER_USER) {
  console.error(
    `--streams ${streams} over --users ${users} would hold more than NGSCI_SSE_PER_USER ` +
      `(${SSE_PER_USER}) streams per user; add users`,
  );
  process.exit(2);
}

type Via = 'proxy' | 'direct';

/**
 * A process beside the stack that does nothing but tick (canary.ts): how late its loop ran is
 * the machine's own lateness, printed beside the service's for each fixed-rate series, so that a
 * stall of the scheduler is not taken for one of the service.
 */
const canary = fork(join(dirname(fileURLToPath(import.meta.url)), 'canary.ts'), [], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
/** the canary's max and p99 lateness (ms) since the previous call */
const machineLateness = () =>
  new Promise<{ maxMs: number; p99Ms: number }>((resolve) => {
    canary.once('message', (m) => resolve(m as { maxMs: number; p99Ms: number }));
    canary.send('read');
  });

const ms = (x: number) =>
  Number.isNaN(x) ? '-' : x === Infinity ? '∞' : x < 10 ? x.toFixed(1) : x.toFixed(0);
const num = (x: number) => Math.round(x).toLocaleString('en-US');
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

function table(rows: RouteSummary[], peer?: RouteSummary): void {
  const w = Math.max(...rows.map((r) => r.name.length), 10);
  console.log(
    `  ${pad('route', w)} ${lpad('clients', 7)} ${lpad('requests', 9)} ${lpad('req/s', 8)} ` +
      `${lpad('p50 ms', 7)} ${lpad('p99 ms', 7)} ${lpad('max ms', 7)} ${lpad('errors', 6)}` +
      (peer ? `  ${lpad('req/s ÷ peer', 12)} ${lpad('p99 ÷ peer', 10)}` : ''),
  );
  for (const r of rows) {
    const ratio =
      peer && r !== peer
        ? `  ${lpad(`${(r.perSecond / peer.perSecond).toFixed(2)}×`, 12)} ${lpad(`${(r.p99 / peer.p99).toFixed(2)}×`, 10)}`
        : peer
          ? `  ${lpad('1.00×', 12)} ${lpad('1.00×', 10)}`
          : '';
    console.log(
      `  ${pad(r.name, w)} ${lpad(r.clients ? String(r.clients) : '-', 7)} ${lpad(num(r.requests), 9)} ` +
        `${lpad(num(r.perSecond), 8)} ${lpad(ms(r.p50), 7)} ${lpad(ms(r.p99), 7)} ` +
        `${lpad(ms(r.max), 7)} ${lpad(String(r.errors), 6)}${ratio}`,
    );
  }
  for (const r of rows)
    for (const [kind, n] of Object.entries(r.errorKinds))
      console.log(`    error: ${r.name}: ${kind} × ${n}: ${r.errorSamples[kind] ?? ''}`);
}

/**
 * Where the service's time went per request (its Server-Timing header, mean over the phase's
 * answers): wall-clock milliseconds, the event loop's queueing included in `total` only.
 */
function timingTable(rows: RouteSummary[]): void {
  const timed = rows.filter((r) => r.timing);
  if (!timed.length) return;
  const w = Math.max(...timed.map((r) => r.name.length));
  console.log(
    '  inside the service, mean wall-clock ms per request (Server-Timing; `db` sums the ' +
      "request's queries, so queries side by side count each; `rest` = total − auth − db − " +
      'serialize: routing, validation, the handler, waiting for the event loop):',
  );
  const cols = ['total', 'auth', 'hub', 'db', 'queries', 'serialize', 'rest', 'auth@hub'];
  console.log(`  ${pad('route', w)} ` + cols.map((c) => lpad(c, 9)).join(' '));
  for (const r of timed) {
    const t = r.timing!;
    const rest = Math.max(0, t.total - t.auth - t.db - t.serialize);
    const cells = [
      t.total.toFixed(2),
      t.auth.toFixed(3),
      t.hub.toFixed(3),
      t.db.toFixed(2),
      t.queries.toFixed(1),
      t.serialize.toFixed(3),
      rest.toFixed(2),
      `${(100 * t.authFromHub).toFixed(1)}%`,
    ];
    console.log(`  ${pad(r.name, w)} ` + cells.map((c) => lpad(c, 9)).join(' '));
  }
  console.log('');
}

const COMPONENTS = ['service', 'hub', 'proxy', 'postgres', 'instances'] as const;

function cpuLine(used: CpuReading): string {
  return (
    [...COMPONENTS, 'bench client' as const]
      .filter((c) => used[c] !== undefined)
      .map((c) => `${c} ${used[c]!.toFixed(1)} s`)
      .join(', ') + ' (of 2 cores × the phase, shared with anything else on the machine)'
  );
}

/**
 * CPU milliseconds per request of each component of the stack, and their sum against the peer's
 * (the mean of its runs): unlike requests/s, this hardly moves with other load on the machine.
 */
function cpuTable(rows: { name: string; requests: number; cpu: CpuReading }[]): void {
  const perRequest = (r: (typeof rows)[number], c: keyof CpuReading) =>
    r.requests ? ((r.cpu[c] ?? 0) * 1000) / r.requests : NaN;
  const stackMs = (r: (typeof rows)[number]) =>
    COMPONENTS.reduce((s, c) => s + (perRequest(r, c) || 0), 0);
  const peers = rows.filter((r) => r.name.startsWith(PEER.name));
  const peerMs = peers.reduce((s, r) => s + stackMs(r), 0) / peers.length;
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log('  CPU milliseconds per request, by component:');
  console.log(
    `  ${pad('route', w)} ` +
      [...COMPONENTS, 'bench client'].map((c) => lpad(c, 9)).join(' ') +
      ` ${lpad('stack', 7)} ${lpad('÷ peer', 7)}`,
  );
  for (const r of rows)
    console.log(
      `  ${pad(r.name, w)} ` +
        [...COMPONENTS, 'bench client' as const]
          .map((c) => lpad(perRequest(r, c).toFixed(2), 9))
          .join(' ') +
        ` ${lpad(stackMs(r).toFixed(2), 7)} ${lpad(`${(stackMs(r) / peerMs).toFixed(2)}×`, 7)}`,
    );
  console.log('');
}

interface User {
  name: string;
  token: string;
}

/** One route's figures for the closing summary. */
interface SummaryRow {
  database: Database;
  via: Via;
  route: string;
  /** whether issue 14's targets apply (the service's read routes; not the peer, not health) */
  target: boolean;
  /** alone: requests/s and its ratio to the mean of the peer's two runs */
  perSecond: number;
  ratio: number;
  /** alone: the stack's CPU milliseconds per request (service, hub, proxy, Postgres, instances) */
  cpuMs: number;
  /** at the fixed rate (absent with --rate 0): requests/s answered and p99 */
  fixed?: { perSecond: number; p99: number };
}
const summary: SummaryRow[] = [];

const stackCpuMs = (cpu: CpuReading, requests: number): number =>
  requests ? (COMPONENTS.reduce((s, c) => s + (cpu[c] ?? 0), 0) * 1000) / requests : NaN;

/** Every route on every database and way in, against issue 14's targets, in one table. */
function summaryTable(): void {
  if (!summary.length) return;
  console.log(
    `summary: each read route alone against the peer (targets: ≥ ${RATIO_TARGET.postgres}× on ` +
      `Postgres, ≥ ${RATIO_TARGET.pglite}× on PGlite)` +
      (rate ? ` and at ${num(rate)} req/s (target: p99 ≤ ${P99_TARGET_MS} ms)` : ''),
  );
  const w = Math.max(...summary.map((r) => r.route.length));
  console.log(
    `  ${pad('database', 8)} ${pad('way in', 6)} ${pad('route', w)} ${lpad('req/s', 8)} ` +
      `${lpad('÷ peer', 7)} ${lpad('target', 6)} ${lpad('CPU ms', 7)}` +
      (rate ? ` ${lpad('fixed req/s', 11)} ${lpad('p99 ms', 7)} ${lpad('target', 6)}` : ''),
  );
  for (const r of summary) {
    const met = (ok: boolean) => (!r.target ? '' : ok ? 'met' : 'NOT');
    console.log(
      `  ${pad(r.database, 8)} ${pad(r.via, 6)} ${pad(r.route, w)} ${lpad(num(r.perSecond), 8)} ` +
        `${lpad(`${r.ratio.toFixed(2)}×`, 7)} ${lpad(met(r.ratio >= RATIO_TARGET[r.database]), 6)} ` +
        `${lpad(r.cpuMs.toFixed(2), 7)}` +
        (r.fixed
          ? ` ${lpad(num(r.fixed.perSecond), 11)} ${lpad(ms(r.fixed.p99), 7)} ` +
            lpad(met(r.fixed.p99 <= P99_TARGET_MS && r.fixed.perSecond >= rate * 0.95), 6)
          : ''),
    );
  }
  console.log('');
}

let stack: Stack | null = null;
const stopStack = async () => {
  const s = stack;
  stack = null;
  await s?.stop();
};
process.once('SIGINT', () => {
  console.error('interrupted: stopping the stack');
  void stopStack().finally(() => process.exit(130));
});

let errors = 0;
{
  console.log(
    `bench/api: ${clients} clients, ${seconds} s a phase, ${databases.join(' then ')}, ${users} users, ` +
      `via ${vias.join(' and ')}, fixed rate ${rate ? `${rate} req/s` : 'skipped'}; ` +
      `machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `load average ${loadavg()[0]!.toFixed(1)}; ${new Date().toISOString()}`,
  );
  const env: Record<string, string> = {
    NGSCI_LOG_LEVEL: 'warn',
    ...LIMITS,
    ...(timing ? { NGSCI_SERVER_TIMING: 'true' } : {}),
  };
  console.log(`settings for the bench (docs/limits.md):`);
  for (const [k, v] of Object.entries(LIMITS)) console.log(`  ${k}=${v}`);
  console.log(
    `  NGSCI_SSE_PER_USER left as it is (${SSE_PER_USER}); ` +
      `this run holds at most ${Math.ceil(streams / users)} stream(s) per user`,
  );
  console.log(`  NGSCI_LOG_LEVEL=warn (the hub and the proxy log as npm start sets them)`);
  console.log(
    `  NGSCI_READ_CACHE=${process.env.NGSCI_READ_CACHE ?? 'on'} (the read routes' cache of settled ` +
      `figures; NGSCI_READ_CACHE=off in the bench's environment measures without it)`,
  );
  console.log(
    timing
      ? '  NGSCI_SERVER_TIMING=true (each answer says where its time went; --timing off to measure without)'
      : '  NGSCI_SERVER_TIMING off (--timing off): no phases inside the service',
  );

  for (const database of databases) {
    const errorsBefore = errors;
    try {
      if (databases.length > 1) console.log(`\n=== ${database}: a stack of its own ===\n`);
      stack = await startStack({ database, env });
      const origin = stack.url;
      const prefix = `bench${randomBytes(2).toString('hex')}`;
      const people: User[] = [];
      for (let i = 0; i < users; i++) {
        const name = `${prefix}-${String(i + 1).padStart(4, '0')}`;
        const res = await stack.hub(`/users/${name}`, { method: 'POST', body: '{}' });
        if (res.status !== 201) throw new Error(`creating user ${name}: ${res.status}`);
        people.push({ name, token: await stack.userToken(name) });
      }
      const serviceOrigin = `http://127.0.0.1:${stack.ports.service}`;
      const hubOrigin = `http://127.0.0.1:${stack.ports.hubApi}`;
      console.log(
        `stack up at ${origin} (the proxy); the service on ${serviceOrigin}, the hub's API on ` +
          `${hubOrigin}; ${users} users with a token each\n`,
      );

      const proxy = pools(origin, clients);
      const direct = { service: pools(serviceOrigin, clients), hub: pools(hubOrigin, clients) };
      /** the pool a route is asked through */
      const poolFor = (via: Via, route: Route): Pool =>
        via === 'proxy' ? proxy.pool : route === PEER ? direct.hub.pool : direct.service.pool;
      const phase = (rec: Recorder, pool: Pool = proxy.pool): Phase => ({
        pool,
        streams: proxy.streams,
        rec,
        endsAt: rec.endsAt,
      });
      const newRecorder = (secs: number) => {
        const t = performance.now();
        return new Recorder(t, t + secs * 1000);
      };
      const user = (i: number) => people[i % people.length]!;
      const tokens = people.map((p) => p.token);
      const dbName = stack.databaseUrl ? new URL(stack.databaseUrl).pathname.slice(1) : null;
      const stackPid = stack.pid;
      const cpu = () => cpuReading(stackPid, dbName);
      /** one route (the peer or a service route) with every client, for `secs` */
      const alone = async (route: Route, secs: number, via: Via = 'proxy') => {
        const ph = phase(newRecorder(secs), poolFor(via, route));
        const before = cpu();
        await Promise.all(
          Array.from({ length: clients }, (_, i) => reader(ph, route, user(i).token)),
        );
        return { ...ph.rec.summary()[0]!, cpu: cpuUsed(before, cpu()) };
      };
      /**
       * The service process's own pauses since the previous call (its /metrics on loopback: how
       * late its event loop ran, the collector's pauses), to tell a stall in the service from
       * one in the client (`the sender fell … behind`) or the machine.
       */
      const servicePauses = async () => {
        const text = await (await fetch(`${serviceOrigin}/metrics`)).text();
        const read = (series: string) => {
          const line = text.split('\n').find((l) => l.startsWith(`${series} `));
          return line ? Number(line.slice(series.length + 1)) : 0;
        };
        const gc = (kind: string) => ({
          count: read(`ngsci_gc_pause_seconds_count{kind="${kind}"}`),
          ms: read(`ngsci_gc_pause_seconds_sum{kind="${kind}"}`) * 1000,
        });
        return {
          loopMaxMs: read('ngsci_event_loop_delay_max_seconds') * 1000,
          loopP99Ms: read('ngsci_event_loop_delay_p99_seconds') * 1000,
          minor: gc('minor'),
          major: gc('major'),
        };
      };
      /** one route at `rate` requests a second, open loop, for `secs` */
      const atRate = async (route: Route, secs: number, via: Via) => {
        const ph = phase(newRecorder(secs), poolFor(via, route));
        const before = cpu();
        const pausesBefore = await servicePauses();
        await machineLateness();
        const { maxBehindMs } = await fixedRate(ph, route, tokens, rate, {
          maxInFlight: clients,
          graceMs: FIXED_RATE_GRACE_MS,
        });
        const p = await servicePauses();
        const idle = await machineLateness();
        const pauses =
          `service's event loop late at most ${ms(p.loopMaxMs)} ms (p99 ${ms(p.loopP99Ms)}), ` +
          `a process that only ticks ${ms(idle.maxMs)} ms (p99 ${ms(idle.p99Ms)}); ` +
          `GC: ${p.minor.count - pausesBefore.minor.count} minor ` +
          `(${ms(p.minor.ms - pausesBefore.minor.ms)} ms), ` +
          `${p.major.count - pausesBefore.major.count} major ` +
          `(${ms(p.major.ms - pausesBefore.major.ms)} ms)`;
        return { ...ph.rec.summary()[0]!, cpu: cpuUsed(before, cpu()), maxBehindMs, pauses };
      };
      /**
       * After an overloaded open-loop phase the service, or the hub (the peer never keeps the
       * rate), may still work through requests the client gave up on, on the same two cores: the
       * next phase starts when the service's health route and the hub's peer route both answer
       * within 50 ms again (20 s at most).
       */
      const settle = async () => {
        const until = performance.now() + 20_000;
        const service = phase(newRecorder(0), direct.service.pool);
        const hub = phase(newRecorder(0), direct.hub.pool);
        const quick = async (ph: Phase, path: string, token: string) => {
          const t0 = performance.now();
          await call(ph, 'settle', path, token);
          return performance.now() - t0 < 50;
        };
        while (performance.now() < until) {
          if (
            (await quick(service, HEALTH.path, '')) &&
            (await quick(hub, PEER.path, people[0]!.token))
          )
            return;
          await new Promise((r) => setTimeout(r, 500));
        }
      };
      const busy = () => performance.eventLoopUtilization();
      /** the machine's load: the bench's own processes and anything else running on it */
      const load = () => `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`;

      /**
       * Every token once into the service's auth cache and the hub's, unrecorded. The service
       * keeps the hub's acceptance of a token NGSCI_AUTH_CACHE_SECONDS (30 s) and asks again in
       * the background while the token is in use; a series that starts after more than that
       * without the service seeing the users (the peer's phases, the health route's) would begin
       * with one hub lookup per token, all at once: a cold start, not the route at its rate.
       */
      const warmTokens = async () => {
        const warm = phase(newRecorder(0));
        for (const u of people) {
          await call(warm, 'warm', `${API}/me`, u.token);
          await call(warm, 'warm', PEER.path, u.token);
        }
      };
      // warm-up: the tokens, then a short unrecorded run of each route
      await warmTokens();
      for (const r of [...routes, PEER]) await alone(r, Math.min(5, seconds));

      if (!values['skip-mix']) {
        const streamCounts: StreamCounts = { opened: 0, events: 0, pings: 0, maxPerUser: 0 };
        const launchCounts: LaunchCounts = { launched: 0, running: 0, stopped: 0, toRunning: [] };
        const held = new Map<string, number>();
        const elu = busy();
        const mixCpu = cpu();
        const mix = phase(newRecorder(seconds));
        const work: Promise<void>[] = [];
        // launchers are the first users; the first streams follow their servers, so they carry events
        for (let i = 0; i < launchers; i++)
          work.push(launcher(mix, API, user(i).token, SIZE, launchCounts));
        for (let i = 0; i < streams; i++) {
          const u = user(i);
          work.push(
            subscriber(
              mix,
              STREAM_ROUTE,
              `${API}/instances/default/events`,
              u.name,
              u.token,
              streamCounts,
              held,
            ),
          );
        }
        for (let i = 0; i < readers; i++)
          work.push(reader(mix, routes[i % routes.length]!, user(launchers + i).token));
        await Promise.all(work);
        const mixElu = busy();
        const mixUsed = cpuUsed(mixCpu, cpu());
        const mixRows = mix.rec.summary();
        const mixSeconds = (performance.now() - mix.rec.startedAt) / 1000;
        console.log(
          `mix, through the proxy: ${clients} clients for ${seconds} s (${mixSeconds.toFixed(0)} s ` +
            `until the last launcher had stopped its instance): ${readers} readers split over ` +
            `${routes.length} routes, ${streams} event streams, ${launchers} launchers; ${load()} at the end`,
        );
        table(mixRows);
        const reads = mixRows.filter((r) => routes.some((x) => x.name === r.name));
        console.log(
          `  read routes together: ${num(reads.reduce((s, r) => s + r.perSecond, 0))} req/s; ` +
            `event streams opened ${streamCounts.opened}, instance events received ` +
            `${streamCounts.events}, pings ${streamCounts.pings}, at most ${streamCounts.maxPerUser} ` +
            `open per user (cap ${SSE_PER_USER})`,
        );
        console.log(
          `  (${STREAM_ROUTE}: time to the response headers; the hub's proxy passes them on with the ` +
            `stream's first bytes, an event or the ping the service sends after 15 s without one)`,
        );
        const toRun = [...launchCounts.toRunning].sort((a, b) => a - b);
        console.log(
          `  launches: ${launchCounts.launched} accepted, ${launchCounts.running} reached running ` +
            `(median ${toRun.length ? toRun[Math.floor(toRun.length / 2)]!.toFixed(1) : '-'} s from ` +
            `the request), ${launchCounts.stopped} stopped again; at most ${launchers} at once`,
        );
        console.log(
          `  the bench client's event loop was busy ${(100 * performance.eventLoopUtilization(mixElu, elu).utilization).toFixed(0)}% of the phase\n`,
        );
        console.log(`  CPU used in the phase: ${cpuLine(mixUsed)}\n`);
        timingTable(reads);
        errors += mixRows.reduce((s, r) => s + r.errors, 0);
      }

      if (!values['mix-only'])
        for (const via of vias) {
          const where =
            via === 'proxy'
              ? `through the hub's proxy (${origin})`
              : `directly: the service on its own port (${serviceOrigin}), the peer on the hub's API port (${hubOrigin})`;
          // each alone, the peer first and last: the ratio uses the mean of the two peer runs, so
          // a machine whose load changes during the run is seen (both peer runs are printed)
          const elu = busy();
          const first = await alone(PEER, seconds, via);
          const own: (RouteSummary & { cpu: CpuReading })[] = [];
          for (const r of routes) own.push(await alone(r, seconds, via));
          own.push(await alone(HEALTH, seconds, via));
          const last = await alone(PEER, seconds, via);
          const peer: RouteSummary = {
            ...first,
            name: `${PEER.name}, mean of both runs`,
            requests: first.requests + last.requests,
            perSecond: (first.perSecond + last.perSecond) / 2,
            p50: (first.p50 + last.p50) / 2,
            p99: (first.p99 + last.p99) / 2,
            max: Math.max(first.max, last.max),
            errors: first.errors + last.errors,
            errorKinds: {},
            errorSamples: {},
          };
          console.log(
            `alone, ${where}: each route with all ${clients} clients for ${seconds} s, in this ` +
              `order: the peer, ${[...routes, HEALTH].map((r) => r.name).join(', ')}, the peer ` +
              `again; ${load()} at the end`,
          );
          table(
            [
              { ...first, name: `${PEER.name}, first run` },
              { ...last, name: `${PEER.name}, last run` },
              peer,
              ...own,
            ],
            peer,
          );
          console.log(
            `  the bench client's event loop was busy ${(100 * performance.eventLoopUtilization(busy(), elu).utilization).toFixed(0)}% of these phases`,
          );
          cpuTable([
            { name: `${PEER.name}, first run`, requests: first.requests, cpu: first.cpu },
            { name: `${PEER.name}, last run`, requests: last.requests, cpu: last.cpu },
            ...own,
          ]);
          timingTable(own);
          errors += first.errors + last.errors + own.reduce((s, r) => s + r.errors, 0);
          summary.push({
            database,
            via,
            route: PEER.name,
            target: false,
            perSecond: peer.perSecond,
            ratio: 1,
            cpuMs:
              (stackCpuMs(first.cpu, first.requests) + stackCpuMs(last.cpu, last.requests)) / 2,
          });
          for (const r of own)
            summary.push({
              database,
              via,
              route: r.name,
              target: r.name !== HEALTH.name,
              perSecond: r.perSecond,
              ratio: r.perSecond / peer.perSecond,
              cpuMs: stackCpuMs(r.cpu, r.requests),
            });

          if (rate) {
            const fixed: (RouteSummary & {
              cpu: CpuReading;
              maxBehindMs: number;
              pauses: string;
            })[] = [];
            for (const r of [PEER, ...routes]) {
              await warmTokens();
              fixed.push(await atRate(r, seconds, via));
              await settle();
            }
            console.log(
              `fixed rate, ${where}: each route at ${num(rate)} req/s for ${seconds} s (open loop: ` +
                `sent when due whatever the answers, each timed from when it was due); ` +
                `${load()} at the end`,
            );
            table(fixed);
            const behind = Math.max(...fixed.map((r) => r.maxBehindMs));
            // a route that cannot keep the rate is a finding, printed here, not a failed request
            const overload = (r: RouteSummary) =>
              (r.errorKinds[UNANSWERED] ?? 0) + (r.errorKinds[NOT_SENT] ?? 0);
            for (const r of fixed)
              console.log(
                `  ${r.name}: p99 ${ms(r.p99)} ms ${r.p99 <= P99_TARGET_MS ? '≤' : '>'} ` +
                  `${P99_TARGET_MS} ms` +
                  (r.perSecond < rate * 0.95 ? ` (answered only ${num(r.perSecond)} req/s)` : ''),
              );
            console.log(`  the sender fell at most ${ms(behind)} ms behind its schedule`);
            for (const r of fixed) console.log(`  ${r.name}: ${r.pauses}`);
            // per answered request: what was never sent cost nothing
            cpuTable(fixed.map((r) => ({ ...r, requests: r.requests - overload(r) })));
            timingTable(fixed);
            errors += fixed.reduce((s, r) => s + r.errors - overload(r), 0);
            for (const r of fixed) {
              const row = summary.find(
                (x) => x.database === database && x.via === via && x.route === r.name,
              );
              if (row) row.fixed = { perSecond: r.perSecond, p99: r.p99 };
            }
          }
        }
      for (const p of [proxy, direct.service, direct.hub]) {
        await p.pool.close();
        await p.streams.close();
      }
      if (errors > errorsBefore) {
        // what the stack logged about them (the log goes with the stack's data directory)
        const lines = stack.logTail(20_000).split('\n');
        const bad = lines.filter((l) => /error|ECONN|hang up|timeout|\b5\d\d\b/i.test(l));
        console.log(`the stack logged ${bad.length} lines about errors; the last 30:`);
        for (const l of bad.slice(-30)) console.log(`  ${l.slice(0, 400)}`);
      }
    } finally {
      await stopStack();
    }
  }
}
summaryTable();
canary.disconnect();
if (errors) {
  console.error(`bench/api: ${errors} errors (must be 0)`);
  process.exit(1);
}
console.log('bench/api: 0 errors');
