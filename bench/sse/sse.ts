/**
 * bench/sse: 1,000 event streams (`GET /api/v1/instances/{server}/events`) held open by one
 * service process, the database load they cost, and how long an event takes to reach a client.
 *
 * It starts the whole product as `npm start` does (tests/src/stack.ts): a real JupyterHub, its
 * proxy (configurable-http-proxy) and one ngsci service process on a database of its own on the
 * Postgres server at 127.0.0.1:5432 (NGSCI_TEST_PG_URL). Every stream goes through the hub's
 * proxy with a real hub token. It creates `--users` hub users; each holds `--streams / --users`
 * streams (NGSCI_SSE_PER_USER is raised to that), each stream following a server of its own
 * (`s001`, `s002`, …), so the process follows `--streams` different servers. Each followed server
 * has a (stopped) instance row the bench wrote into the service's database.
 *
 * Database load: the service database's committed + rolled-back transactions a second
 * (pg_stat_database; every statement outside a transaction is one), measured over `--window`
 * seconds with the stack idle and no stream open, then twice with every stream open and idle.
 * The meter's cycles (every 15 s) run in both. Postgres updates these counters within about 10 s,
 * so the windows are long and the figures approximate.
 *
 * Latency: the time from writing an event row (InstanceStore.note, which announces it with
 * pg_notify as every event writer does) to the client parsing it off its stream, both clocks in
 * this process. One event at a time (`--samples` events, each to another stream), then a burst:
 * one event to every followed server at once.
 *
 *   npm run sse -w @ngsci/bench -- [--streams 1000] [--users 100] [--window 45] [--samples 200]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { startStack, type Stack } from '../../tests/src/stack.js';
import { openDatabase } from '../../hub-service/src/db/client.js';
import { instances } from '../../hub-service/src/db/schema.js';
import { InstanceStore } from '../../hub-service/src/instances/store.js';

const PG_ADMIN = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

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
    streams: { type: 'string', default: '1000' },
    users: { type: 'string', default: '100' },
    window: { type: 'string', default: '45' },
    samples: { type: 'string', default: '200' },
  },
});
const STREAMS = int('streams', values.streams, 1, 20_000);
const USERS = int('users', values.users, 1, STREAMS);
const WINDOW_S = int('window', values.window, 5, 600);
const SAMPLES = int('samples', values.samples, 1, 10_000);
/** NGSCI_SSE_PER_USER allows at most 1000 */
const PER_USER = Math.ceil(STREAMS / USERS);
if (PER_USER > 1000) {
  console.error(`--streams / --users must be at most 1000 (NGSCI_SSE_PER_USER's maximum)`);
  process.exit(2);
}

/** after the users are made and after the streams open, before a window starts */
const SETTLE_S = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) =>
  sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
    : NaN;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** The pid of the process listening on a local TCP port (the service), from `ss`. */
function listenerPid(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function rssMb(pid: number | null): number {
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/** One open stream, as a browser's EventSource reads it. */
interface Follower {
  user: string;
  server: string;
  instanceId: string;
  opened: Promise<void>;
  controller: AbortController;
}

/** when each bench event (by its message) reached a client */
const received = new Map<string, number>();
let streamErrors = 0;

function follow(
  stack: Stack,
  user: string,
  token: string,
  server: string,
  instanceId: string,
): Follower {
  const controller = new AbortController();
  const opened = (async () => {
    const res = await fetch(`${stack.url}/services/ngsci/api/v1/instances/${server}/events`, {
      headers: { authorization: `token ${token}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (res.status !== 200) throw new Error(`${user}/${server}: ${res.status} ${await res.text()}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const pump = async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = performance.now();
        buf += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!/^event: instance$/m.test(frame)) continue;
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (!data) continue;
          const message = (JSON.parse(data) as { message: string }).message;
          if (message.startsWith('bench ') && !received.has(message)) received.set(message, at);
        }
      }
    };
    // the first bytes (the service's ': open' comment) say the stream is up
    const { value } = await reader.read();
    if (value) buf += decoder.decode(value, { stream: true });
    void pump().catch((err: unknown) => {
      if (!controller.signal.aborted) {
        streamErrors++;
        console.error(`  stream ${user}/${server} ended: ${(err as Error).message}`);
      }
    });
  })();
  return { user, server, instanceId, opened, controller };
}

async function main(): Promise<void> {
  console.log(
    `bench/sse: ${STREAMS} streams, ${USERS} users × ${PER_USER} (NGSCI_SSE_PER_USER=${PER_USER}), ` +
      `window ${WINDOW_S} s, ${SAMPLES} single events; ${cpus().length} CPUs, load average ${load()}`,
  );
  const stack = await startStack({
    database: 'postgres',
    env: { NGSCI_LOG_LEVEL: 'warn', NGSCI_SSE_PER_USER: String(PER_USER) },
  });
  const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  const dbName = new URL(stack.databaseUrl!).pathname.slice(1);
  const database = await openDatabase({ url: stack.databaseUrl!, dataDir: '/tmp' });
  const followers: Follower[] = [];
  try {
    const servicePid = listenerPid(stack.ports.service);
    const prefix = `sse${randomBytes(2).toString('hex')}`;
    const people: Array<{ name: string; token: string }> = [];
    for (let i = 0; i < USERS; i++) {
      const name = `${prefix}-${String(i + 1).padStart(4, '0')}`;
      const res = await stack.hub(`/users/${name}`, { method: 'POST', body: '{}' });
      if (res.status !== 201) throw new Error(`creating user ${name}: ${res.status}`);
      people.push({ name, token: await stack.userToken(name) });
    }
    // one stopped instance per followed server: what its events belong to
    const targets = Array.from({ length: STREAMS }, (_, k) => ({
      person: people[k % USERS]!,
      server: `s${String(Math.floor(k / USERS) + 1).padStart(3, '0')}`,
    }));
    const ids: string[] = [];
    const now = new Date();
    for (let i = 0; i < targets.length; i += 500) {
      const rows = await database.db
        .insert(instances)
        .values(
          targets.slice(i, i + 500).map((t) => ({
            userName: t.person.name,
            serverName: t.server,
            sizeId: 'cpu-small',
            cloud: 'local',
            region: 'localhost',
            spot: false,
            state: 'stopped',
            listRatePerHourMicros: 96_000,
            baseUrl: `/user/${t.person.name}/${t.server}/`,
            createdAt: now,
            stoppedAt: now,
          })),
        )
        .returning({ id: instances.id });
      ids.push(...rows.map((r) => r.id));
    }
    const store = new InstanceStore(database.db);

    const transactions = async () => {
      const [row] = await admin<{ n: string }[]>`
        select xact_commit + xact_rollback as n from pg_stat_database where datname = ${dbName}`;
      return Number(row!.n);
    };
    /** transactions a second in the service's database over the window */
    const measure = async (label: string) => {
      const a = await transactions();
      const t0 = performance.now();
      await sleep(WINDOW_S * 1000);
      // let the backends report what they did in the window's last seconds
      await sleep(1000);
      const b = await transactions();
      const perSecond = (b - a) / ((performance.now() - t0) / 1000);
      console.log(
        `  ${label}: ${perSecond.toFixed(2)} transactions/s in the service's database ` +
          `(${b - a} in ${WINDOW_S} s); service RSS ${rssMb(servicePid)} MB; load average ${load()}`,
      );
      return perSecond;
    };

    await sleep(SETTLE_S * 1000);
    console.log('database load:');
    const idle = await measure('no stream open');

    const t0 = performance.now();
    const byUser = new Map(people.map((p) => [p.name, p.token]));
    for (const [k, t] of targets.entries())
      followers.push(follow(stack, t.person.name, byUser.get(t.person.name)!, t.server, ids[k]!));
    const opened = await Promise.allSettled(followers.map((f) => f.opened));
    const failed = opened.filter((o) => o.status === 'rejected');
    if (failed.length)
      throw new Error(
        `${failed.length} streams did not open; first: ${(failed[0] as PromiseRejectedResult).reason}`,
      );
    console.log(
      `  ${STREAMS} streams opened in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `settling ${SETTLE_S} s (the opening's queries reach the counters late)`,
    );
    await sleep(SETTLE_S * 1000);
    const held = await measure(`${STREAMS} streams open, nothing happening`);
    const heldAgain = await measure(`${STREAMS} streams open, the next ${WINDOW_S} s`);

    console.log('event latency, written (InstanceStore.note) to parsed by the client:');
    const single: number[] = [];
    let lost = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const f = followers[(i * 7919) % followers.length]!;
      const message = `bench ${i}`;
      const sent = performance.now();
      await store.note(f.instanceId, 50, message);
      const deadline = sent + 5000;
      while (!received.has(message) && performance.now() < deadline) await sleep(1);
      if (received.has(message)) single.push(received.get(message)! - sent);
      else lost++;
      await sleep(20);
    }
    single.sort((a, b) => a - b);
    console.log(
      `  one at a time (${single.length} events, ${STREAMS} streams open): ` +
        `p50 ${pct(single, 50).toFixed(1)} ms, p99 ${pct(single, 99).toFixed(1)} ms, ` +
        `max ${pct(single, 100).toFixed(1)} ms${lost ? `; ${lost} not received within 5 s` : ''}`,
    );

    // a burst: one event to every followed server at once, ten writers
    const sentAt = new Map<string, number>();
    const queue = followers.map((f, k) => ({ f, message: `bench burst ${k}` }));
    const tb = performance.now();
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          sentAt.set(job.message, performance.now());
          await store.note(job.f.instanceId, 60, job.message);
        }
      }),
    );
    const writtenMs = performance.now() - tb;
    const deadline = performance.now() + 10_000;
    while ([...sentAt.keys()].some((m) => !received.has(m)) && performance.now() < deadline)
      await sleep(5);
    const burst = [...sentAt]
      .filter(([m]) => received.has(m))
      .map(([m, s]) => received.get(m)! - s)
      .sort((a, b) => a - b);
    console.log(
      `  a burst, one event to each of the ${STREAMS} servers (written in ${writtenMs.toFixed(0)} ms): ` +
        `p50 ${pct(burst, 50).toFixed(1)} ms, p99 ${pct(burst, 99).toFixed(1)} ms, ` +
        `max ${pct(burst, 100).toFixed(1)} ms; ${sentAt.size - burst.length} not received within 10 s`,
    );
    console.log(
      `  stream errors: ${streamErrors}; database load with streams / without: ` +
        `${(held / idle).toFixed(2)}×, ${(heldAgain / idle).toFixed(2)}× (a safety read per stream every 15 s would add ` +
        `${(STREAMS / 15).toFixed(0)}/s)`,
    );
    console.log(
      JSON.stringify({
        bench: 'sse',
        node: process.version,
        streams: STREAMS,
        users: USERS,
        windowSeconds: WINDOW_S,
        transactionsPerSecond: {
          idle: Math.round(idle * 100) / 100,
          streams: Math.round(held * 100) / 100,
        },
        latencyMs: {
          single: { n: single.length, p50: pct(single, 50), p99: pct(single, 99) },
          burst: { n: burst.length, p50: pct(burst, 50), p99: pct(burst, 99) },
        },
        streamErrors,
        loadAverage: loadavg(),
      }),
    );
  } finally {
    for (const f of followers) f.controller.abort();
    await database.close().catch(() => {});
    await admin.end().catch(() => {});
    await stack.stop();
  }
}

await main();
