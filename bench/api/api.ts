/**
 * bench/api: the service's API under load, side by side with JupyterHub's own `GET /hub/api/user`
 * in the same run, every request through the hub's proxy (configurable-http-proxy) on loopback.
 *
 * It starts the product as `npm start` does (tests/src/stack.ts) on Postgres (default) or PGlite,
 * creates researcher users with a token each, and runs these phases, each with the same number of
 * closed-loop clients for the same time:
 *   - mix: readers split evenly over the read routes, event-stream subscribers
 *     (`GET /instances/default/events`, reopened every 5–15 s), and a few launchers that launch and
 *     stop local instances (real JupyterLab processes; at most 5 at once);
 *   - the peer, JupyterHub's `GET /hub/api/user`, alone;
 *   - each read route alone.
 * It prints requests/s, p50/p99 per route, every error, each route's ratio to the peer, and the
 * CPU time each component of the stack spent per request (cpu.ts). Any error (a 429 too) makes
 * the exit status 1. Usage:
 *
 *   npm run api -w @ngsci/bench -- [--clients 500] [--seconds 60] [--database postgres|pglite]
 *     [--users 100] [--streams 50] [--launchers 5] [--routes budget,instances,usage] [--mix-only]
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { startStack, type Stack } from '../../tests/src/stack.js';
import { cpuReading, cpuUsed, type CpuReading } from './cpu.js';
import {
  call,
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
/** The service's read routes, by the name `--routes` takes. */
const READ_ROUTES: Record<string, Route> = Object.fromEntries(
  ['budget', 'instances', 'usage', 'me', 'catalog', 'billing/statements'].map((r) => [
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
    routes: { type: 'string', default: 'budget,instances,usage' },
    'mix-only': { type: 'boolean', default: false },
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
const database = values.database;
if (database !== 'postgres' && database !== 'pglite') {
  console.error('--database must be postgres or pglite');
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
if (readers < routes.length) {
  console.error(`--clients leaves ${readers} readers for ${routes.length} routes`);
  process.exit(2);
}
if (Math.ceil(streams / users) > SSE_PER_USER) {
  console.error(
    `--streams ${streams} over --users ${users} would hold more than NGSCI_SSE_PER_USER ` +
      `(${SSE_PER_USER}) streams per user; add users`,
  );
  process.exit(2);
}

const ms = (x: number) => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(1) : x.toFixed(0));
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
      COMPONENTS.map((c) => lpad(c, 9)).join(' ') +
      ` ${lpad('stack', 7)} ${lpad('÷ peer', 7)}`,
  );
  for (const r of rows)
    console.log(
      `  ${pad(r.name, w)} ` +
        COMPONENTS.map((c) => lpad(perRequest(r, c).toFixed(2), 9)).join(' ') +
        ` ${lpad(stackMs(r).toFixed(2), 7)} ${lpad(`${(stackMs(r) / peerMs).toFixed(2)}×`, 7)}`,
    );
  console.log('');
}

interface User {
  name: string;
  token: string;
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
try {
  console.log(
    `bench/api: ${clients} clients, ${seconds} s a phase, ${database}, ${users} users; ` +
      `machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `load average ${loadavg()[0]!.toFixed(1)}; ${new Date().toISOString()}`,
  );
  console.log(`settings for the bench (docs/limits.md):`);
  for (const [k, v] of Object.entries(LIMITS)) console.log(`  ${k}=${v}`);
  console.log(
    `  NGSCI_SSE_PER_USER left as it is (${SSE_PER_USER}); ` +
      `this run holds at most ${Math.ceil(streams / users)} stream(s) per user`,
  );
  console.log(`  NGSCI_LOG_LEVEL=warn (the hub and the proxy log as npm start sets them)`);

  stack = await startStack({ database, env: { NGSCI_LOG_LEVEL: 'warn', ...LIMITS } });
  const origin = stack.url;
  const prefix = `bench${randomBytes(2).toString('hex')}`;
  const people: User[] = [];
  for (let i = 0; i < users; i++) {
    const name = `${prefix}-${String(i + 1).padStart(4, '0')}`;
    const res = await stack.hub(`/users/${name}`, { method: 'POST', body: '{}' });
    if (res.status !== 201) throw new Error(`creating user ${name}: ${res.status}`);
    people.push({ name, token: await stack.userToken(name) });
  }
  console.log(`stack up at ${origin}; ${users} users with a token each\n`);

  const { pool, streams: streamPool } = pools(origin, clients);
  const phase = (rec: Recorder): Phase => ({ pool, streams: streamPool, rec, endsAt: rec.endsAt });
  const newRecorder = (secs: number) => {
    const t = performance.now();
    return new Recorder(t, t + secs * 1000);
  };
  const user = (i: number) => people[i % people.length]!;
  const dbName = stack.databaseUrl ? new URL(stack.databaseUrl).pathname.slice(1) : null;
  const stackPid = stack.pid;
  const cpu = () => cpuReading(stackPid, dbName);
  /** one route (the peer or a service route) with every client, for `secs` */
  const alone = async (route: Route, secs: number) => {
    const ph = phase(newRecorder(secs));
    const before = cpu();
    await Promise.all(Array.from({ length: clients }, (_, i) => reader(ph, route, user(i).token)));
    return { ...ph.rec.summary()[0]!, cpu: cpuUsed(before, cpu()) };
  };
  const busy = () => performance.eventLoopUtilization();
  /** the machine's load: the bench's own processes and anything else running on it */
  const load = () => `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`;

  // warm-up: every token once into the service's cache and the hub's, then a short unrecorded run
  const warm = phase(newRecorder(0));
  for (const u of people) {
    await call(warm, 'warm', `${API}/me`, u.token);
    await call(warm, 'warm', PEER.path, u.token);
  }
  for (const r of [...routes, PEER]) await alone(r, Math.min(5, seconds));

  // the mix
  const streamCounts: StreamCounts = { opened: 0, events: 0, pings: 0, maxPerUser: 0 };
  const launchCounts: LaunchCounts = { launched: 0, running: 0, stopped: 0, toRunning: [] };
  const held = new Map<string, number>();
  let elu = busy();
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
    `mix: ${clients} clients for ${seconds} s (${mixSeconds.toFixed(0)} s until the last launcher ` +
      `had stopped its instance): ${readers} readers split over ${routes.length} routes, ` +
      `${streams} event streams, ${launchers} launchers; ${load()} at the end`,
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
  errors += mixRows.reduce((s, r) => s + r.errors, 0);

  if (!values['mix-only']) {
    // each alone, the peer first and last: the ratio uses the mean of the two peer runs, so a
    // machine whose load changes during the run is seen (both peer runs are printed)
    elu = busy();
    const first = await alone(PEER, seconds);
    const own: (RouteSummary & { cpu: CpuReading })[] = [];
    for (const r of routes) own.push(await alone(r, seconds));
    const last = await alone(PEER, seconds);
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
      `alone: each route with all ${clients} clients for ${seconds} s, in this order: the peer, ` +
        `${routes.map((r) => r.name).join(', ')}, the peer again; ${load()} at the end`,
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
    errors += first.errors + last.errors + own.reduce((s, r) => s + r.errors, 0);
  }
  await pool.close();
  await streamPool.close();
  if (errors) {
    // what the stack logged about them (the log goes with the stack's data directory)
    const lines = stack.logTail(20_000).split('\n');
    const bad = lines.filter((l) => /error|ECONN|hang up|timeout|\b5\d\d\b/i.test(l));
    console.log(`the stack logged ${bad.length} lines about errors; the last 30:`);
    for (const l of bad.slice(-30)) console.log(`  ${l.slice(0, 400)}`);
  }
} finally {
  await stopStack();
}
if (errors) {
  console.error(`bench/api: ${errors} errors (must be 0)`);
  process.exit(1);
}
console.log('bench/api: 0 errors');
