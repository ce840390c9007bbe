/**
 * Two service replicas on one Postgres, run outside the hub (`JupyterHub.services` with a `url`
 * and no `command`: configure_hub's `service_url`) behind a small round-robin proxy, as
 * docs/operations.md ("Running N service replicas") describes. A real JupyterHub, real local
 * single-user servers. What must hold:
 * - exactly one replica holds the meter (the advisory lock);
 * - a price override made on the leader is quoted at once by the other replica (its catalog and
 *   the launches it records), and billed at that rate;
 * - a plan multiplier changed on the non-leader is billed by the leader from the next cycle on;
 * - SSE events reach clients connected to either replica;
 * - kill -9 of the leader: the other takes over, and the ledger, recomputed row by row, has no
 *   second billed twice or lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { reservePorts, type PortReservation } from './ports.js';
import { createPostgresDatabase, ROOT } from './stack.js';

const VENV = join(ROOT, '.venv');
const INTERVAL = 2;
const PREFIX = '/services/ngsci/';
const SIZE = 'cpu-small';

interface Inst {
  id: string;
  state: string;
  readyAt: string | null;
  stoppedAt: string | null;
  ratePerHourMicros: number;
}

interface Row {
  started_at: Date;
  ended_at: Date;
  billed_from: number;
  billed_to: number;
  amount_micros: number;
  multiplier_ppm: number;
  rate_micros: number;
  plan_id: string;
  final: boolean;
}

let pg: { url: string; drop: () => Promise<void> };
let sql: postgres.Sql;
let ports: PortReservation;
let dataDir: string;
let logFile: string;
let hub: ChildProcess;
let balancer: http.Server;
const replicas: Array<{ port: number; child: ChildProcess | null }> = [];
const testToken = randomBytes(24).toString('hex');
const serviceToken = randomBytes(24).toString('hex');
const bridgeSecret = randomBytes(24).toString('base64url');
const secretKey = randomBytes(32).toString('base64url');
const tokens: Record<string, string> = {};
let hubUrl = '';

/** Which replica answered a request through the balancer, in order (a replica's index or -1). */
const served: number[] = [];

/**
 * The load balancer: round robin over the replicas, skipping one that refuses the connection
 * (as a balancer's health check would), streaming both ways so SSE passes through.
 */
function startBalancer(port: number): Promise<http.Server> {
  let next = 0;
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    req.on('end', () => {
      const attempt = (tries: number) => {
        const i = next++ % replicas.length;
        const up = http.request(
          {
            host: '127.0.0.1',
            port: replicas[i]!.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (upRes) => {
            served.push(i);
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        up.on('error', () => {
          if (res.headersSent) res.destroy();
          else if (tries + 1 < replicas.length) attempt(tries + 1);
          else res.writeHead(502).end();
        });
        res.on('close', () => up.destroy());
        up.end(Buffer.concat(body));
      };
      attempt(0);
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function startReplica(i: number): void {
  const port = replicas[i]!.port;
  const out = openSync(logFile, 'a');
  replicas[i]!.child = spawn(process.execPath, [join(ROOT, 'hub-service', 'dist', 'index.js')], {
    cwd: dataDir,
    stdio: ['ignore', out, out],
    env: {
      ...(process.env as Record<string, string>),
      PATH: `${join(VENV, 'bin')}:${process.env.PATH ?? ''}`,
      // what the hub passes to a service it starts, given by hand to an external one
      JUPYTERHUB_API_URL: `http://127.0.0.1:${ports.ports[1]}/hub/api`,
      JUPYTERHUB_API_TOKEN: serviceToken,
      JUPYTERHUB_SERVICE_NAME: 'ngsci',
      JUPYTERHUB_SERVICE_URL: `http://127.0.0.1:${port}`,
      JUPYTERHUB_SERVICE_PREFIX: PREFIX,
      JUPYTERHUB_CLIENT_ID: 'service-ngsci',
      JUPYTERHUB_OAUTH_CALLBACK_URL: `${PREFIX}oauth_callback`,
      DATABASE_URL: pg.url,
      NGSCI_DATA_DIR: dataDir,
      NGSCI_BRIDGE_SECRET: bridgeSecret,
      NGSCI_SECRET_KEY: secretKey,
      NGSCI_LOCAL_COMMAND: join(VENV, 'bin', 'jupyterhub-singleuser'),
      NGSCI_LOCAL_SHARED_DEMO: 'true',
      NGSCI_METER_INTERVAL: String(INTERVAL),
      // usage is priced every cycle but written every 8 s: a plan change must not reach back
      NGSCI_METER_ACCRUE_EVERY: '8',
      NGSCI_HOME_GB: '0',
      NGSCI_CULL_ENABLED: 'false',
      NGSCI_LOG_LEVEL: 'info',
    },
  });
}

async function until<T>(
  fn: () => Promise<T | null | undefined | false>,
  what: string,
  seconds = 60,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const log = readFileSync(logFile, 'utf8').split('\n').slice(-60).join('\n');
      throw new Error(`timed out waiting for ${what} (${String(last ?? '')})\n--- log ---\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The ngsci API: through the balancer (`via` = 'lb') or one replica directly. */
async function api<T>(
  via: 'lb' | number,
  path: string,
  token: string,
  init: RequestInit = {},
): Promise<{ status: number; body: T }> {
  const origin = via === 'lb' ? hubUrl : `http://127.0.0.1:${replicas[via]!.port}`;
  const res = await fetch(`${origin}${PREFIX}api/v1${path}`, {
    ...init,
    headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

const hubApi = (path: string, init: RequestInit = {}) =>
  fetch(`${hubUrl}/hub/api${path}`, {
    ...init,
    headers: { authorization: `token ${testToken}`, 'content-type': 'application/json' },
  });

async function userToken(user: string): Promise<string> {
  const res = await hubApi(`/users/${user}/tokens`, {
    method: 'POST',
    body: JSON.stringify({ note: 'replicas test', expires_in: 3600 }),
  });
  assert.equal(res.status, 201, `token for ${user}: ${await res.clone().text()}`);
  return ((await res.json()) as { token: string }).token;
}

const leaderOf = async (i: number) =>
  (await api<{ leader: boolean }>(i, '/admin/meter', tokens.admin!)).body.leader;

const rowsOf = (id: string) =>
  sql<Row[]>`
    select started_at, ended_at, billed_from::int, billed_to::int, amount_micros::int,
      multiplier_ppm, rate_micros::int, plan_id, final
    from usage_intervals where meter_key = ${id} order by started_at`;

/** R(s) of docs/billing.md: the rounded price of a stream's first s seconds. */
const cumulative = (rate: number, s: number, ppm: number) =>
  s <= 0 || ppm <= 0
    ? 0
    : Number((2n * BigInt(rate) * BigInt(s) * BigInt(ppm) + 3_600_000_000n) / 7_200_000_000n);

/**
 * The ledger of one stopped instance, recomputed: rows from readyAt to stoppedAt with no gap and no
 * overlap, billed seconds continuing, each row's amount what its rate and multiplier give, and the
 * billed seconds of the whole start (at least 60) counted exactly once.
 */
function checkLedger(inst: Inst, rows: Row[], what: string): void {
  assert.ok(rows.length > 0, `${what}: rows`);
  assert.equal(
    rows[0]!.started_at.getTime(),
    new Date(inst.readyAt!).getTime(),
    `${what}: from ready`,
  );
  assert.equal(rows[0]!.billed_from, 0, `${what}: billed from 0`);
  for (let i = 1; i < rows.length; i++) {
    assert.equal(
      rows[i]!.started_at.getTime(),
      rows[i - 1]!.ended_at.getTime(),
      `${what}: row ${i} continues`,
    );
    assert.equal(
      rows[i]!.billed_from,
      rows[i - 1]!.billed_to,
      `${what}: billed seconds continue at row ${i}`,
    );
  }
  const last = rows.at(-1)!;
  assert.ok(last.final, `${what}: closed by a final row`);
  assert.equal(rows.filter((r) => r.final).length, 1, `${what}: closed once`);
  assert.equal(
    last.ended_at.getTime(),
    new Date(inst.stoppedAt!).getTime(),
    `${what}: to the stop`,
  );
  const ran = Math.floor(
    (new Date(inst.stoppedAt!).getTime() - new Date(inst.readyAt!).getTime()) / 1000,
  );
  assert.equal(last.billed_to, Math.max(60, ran), `${what}: every second billed once`);
  for (const r of rows) {
    const want =
      cumulative(r.rate_micros, r.billed_to, r.multiplier_ppm) -
      cumulative(r.rate_micros, r.billed_from, r.multiplier_ppm);
    assert.equal(
      r.amount_micros,
      want,
      `${what}: the amount of the row at ${r.started_at.toISOString()}`,
    );
  }
}

/** An SSE client on one replica: collects the states of the events it receives. */
function follow(i: number, token: string, server: string) {
  const states: string[] = [];
  const ctl = new AbortController();
  const done = (async () => {
    const res = await fetch(
      `http://127.0.0.1:${replicas[i]!.port}${PREFIX}api/v1/instances/${server}/events`,
      { headers: { authorization: `token ${token}` }, signal: ctl.signal },
    );
    assert.equal(res.status, 200, `events on replica ${i}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!/^event: instance$/m.test(block)) continue;
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data) states.push((JSON.parse(data) as { state: string }).state);
      }
    }
  })().catch(() => {});
  return { states, close: () => ctl.abort(), done };
}

before(async () => {
  pg = await createPostgresDatabase();
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  ports = await reservePorts(6);
  const [hubPort, hubApiPort, proxyApiPort, lbPort, r1, r2] = ports.ports as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  replicas.push({ port: r1, child: null }, { port: r2, child: null });
  hubUrl = `http://127.0.0.1:${hubPort}`;
  dataDir = mkdtempSync(join(tmpdir(), 'ngsci-replicas-'));
  logFile = join(dataDir, 'replicas.log');
  mkdirSync(join(dataDir, 'hub'), { recursive: true, mode: 0o700 });
  balancer = await startBalancer(lbPort);
  const out = openSync(logFile, 'a');
  hub = spawn(
    join(VENV, 'bin', 'jupyterhub'),
    ['-f', join(ROOT, 'deploy', 'jupyterhub_config.py')],
    {
      cwd: join(dataDir, 'hub'),
      stdio: ['ignore', out, out],
      env: {
        ...(process.env as Record<string, string>),
        NGSCI_ROOT: ROOT,
        NGSCI_VENV: VENV,
        NGSCI_DATA_DIR: dataDir,
        NGSCI_HUB_IP: '127.0.0.1',
        NGSCI_HUB_PORT: String(hubPort),
        NGSCI_HUB_API_PORT: String(hubApiPort),
        NGSCI_PROXY_API_PORT: String(proxyApiPort),
        NGSCI_LOGIN_FILE: join(dataDir, 'local-login.json'),
        // the local password login, which is for demos and tests only
        NGSCI_DEMO: '1',
        NGSCI_USERS: 'ada,bob',
        NGSCI_ADMINS: 'admin',
        NGSCI_BRIDGE_SECRET: bridgeSecret,
        NGSCI_TEST_ADMIN_TOKEN: testToken,
        // the service runs outside the hub, behind the balancer
        NGSCI_SERVICE_EXTERNAL_URL: `http://127.0.0.1:${lbPort}`,
        NGSCI_SERVICE_API_TOKEN: serviceToken,
        PATH: `${join(VENV, 'bin')}:${process.env.PATH ?? ''}`,
      },
    },
  );
  await until(async () => (await fetch(`${hubUrl}/hub/api/`)).ok, 'JupyterHub', 90);
  startReplica(0);
  startReplica(1);
  for (const i of [0, 1])
    await until(
      async () => (await fetch(`http://127.0.0.1:${replicas[i]!.port}${PREFIX}health`)).ok,
      `replica ${i}`,
      90,
    );
  await until(
    async () => (await fetch(`${hubUrl}${PREFIX}health`)).ok,
    'the service through the hub',
  );
  for (const u of ['ada', 'bob', 'admin']) tokens[u] = await userToken(u);
});

after(async () => {
  for (const r of replicas) if (r.child?.exitCode === null) r.child.kill('SIGTERM');
  await Promise.all(
    replicas.map((r) =>
      r.child && r.child.exitCode === null && r.child.signalCode === null
        ? new Promise((res) => r.child!.once('exit', res))
        : null,
    ),
  );
  if (hub?.exitCode === null) {
    hub.kill('SIGTERM');
    await new Promise((r) => hub.once('exit', r));
  }
  balancer?.close();
  balancer?.closeAllConnections();
  // local instances the replicas left (they outlive a service by design)
  const runDir = join(dataDir, 'run');
  const pidFiles = existsSync(runDir) ? readdirSync(runDir, { withFileTypes: true }) : [];
  for (const f of pidFiles.filter((e) => e.name.endsWith('.pid'))) {
    try {
      process.kill(-Number(readFileSync(join(runDir, f.name), 'utf8')), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await sql?.end();
  await pg?.drop();
  ports?.release();
  if (!process.env.NGSCI_TEST_KEEP) rmSync(dataDir, { recursive: true, force: true });
});

test(
  'two replicas behind a balancer: one meter, prices and plans everywhere, SSE on both, kill -9 of the leader',
  { timeout: 180_000 },
  async () => {
    // one meter leader: the advisory lock
    const leader = await until(
      async () => {
        const held = [await leaderOf(0), await leaderOf(1)];
        return held.filter(Boolean).length === 1 ? held.indexOf(true) + 1 : null;
      },
      'exactly one meter leader',
      20,
    ).then((n) => n - 1);
    const other = 1 - leader;
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, INTERVAL * 500));
      assert.deepEqual(
        [await leaderOf(leader), await leaderOf(other)],
        [true, false],
        'the lock stays with one replica',
      );
    }

    // a price override made on the leader: quoted by the other replica (catalog and estimate)
    const catalogPrice = async (i: number) =>
      (
        await api<{
          sizes: Array<{
            id: string;
            offers: Array<{ cloud: string; onDemandMicrosPerHour: number }>;
          }>;
        }>(i, '/catalog', tokens.ada!)
      ).body.sizes
        .find((s) => s.id === SIZE)!
        .offers.find((o) => o.cloud === 'local')!.onDemandMicrosPerHour;
    const listPrice = await catalogPrice(other);
    const newPrice = listPrice + 1_234_567;
    const put = await api(leader, '/admin/prices', tokens.admin!, {
      method: 'PUT',
      body: JSON.stringify({ size: SIZE, cloud: 'local', onDemandMicrosPerHour: newPrice }),
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // a stale copy would stay stale for good on a replica that does not meter: give it a few cycles
    await until(
      async () => (await catalogPrice(other)) === newPrice,
      'the new price on the other replica',
      4 * INTERVAL,
    );

    // a plan for ada at list price, changed later on the non-leader
    assert.equal(
      (
        await api(other, '/admin/plans', tokens.admin!, {
          method: 'POST',
          body: JSON.stringify({ id: 'partner', label: 'Partner', multiplierPpm: 1_000_000 }),
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await api(other, '/admin/plan-assignments', tokens.admin!, {
          method: 'PUT',
          body: JSON.stringify({ subjectKind: 'user', subjectName: 'ada', planId: 'partner' }),
        })
      ).status,
      200,
    );

    // launches through the balancer; the bridge's calls land on either replica
    for (const u of ['ada', 'bob']) {
      const res = await api<Inst>('lb', '/instances', tokens[u]!, {
        method: 'POST',
        body: JSON.stringify({ size: SIZE }),
      });
      assert.equal(res.status, 202, `${u}: ${JSON.stringify(res.body)}`);
    }
    const running: Record<string, Inst> = {};
    for (const u of ['ada', 'bob'])
      running[u] = await until(
        async () => {
          const i = (await api<Inst>('lb', '/instances/default', tokens[u]!)).body;
          assert.notEqual(i.state, 'failed', `${u}: ${JSON.stringify(i)}`);
          return i.state === 'running' ? i : null;
        },
        `${u} running`,
        120,
      );
    for (const u of ['ada', 'bob'])
      assert.equal(
        running[u]!.ratePerHourMicros,
        newPrice,
        `${u}'s launch is priced at the override`,
      );
    assert.ok(new Set(served).size === 2, 'the balancer spread requests over both replicas');

    // SSE: a client on each replica follows bob's server; the stop reaches both
    const streams = [follow(0, tokens.bob!, 'default'), follow(1, tokens.bob!, 'default')];
    await until(
      async () => streams.every((s) => s.states.includes('running')),
      'both streams replay the start',
      20,
    );
    const stop = await api('lb', '/instances/default/stop', tokens.bob!, {
      method: 'POST',
      body: '{}',
    });
    assert.ok(stop.status < 300, `stop bob: ${stop.status} ${JSON.stringify(stop.body)}`);
    await until(
      async () => streams.every((s) => s.states.includes('stopped')),
      'the stop on both streams',
      60,
    );
    for (const s of streams) s.close();
    const bob = (await api<Inst>('lb', '/instances/default', tokens.bob!)).body;
    await until(async () => (await rowsOf(bob.id)).some((r) => r.final), "bob's final row", 30);

    // the plan multiplier changed on the non-leader: billed by the leader from the next cycle on
    // right after a write, then 5 s on: usage priced but not written (it is written every 8 s)
    const written = (await rowsOf(running.ada!.id)).length;
    await until(async () => (await rowsOf(running.ada!.id)).length > written, "ada's rows", 30);
    await new Promise((r) => setTimeout(r, 5000));
    const changedAt = Date.now();
    const plan = await api(other, '/admin/plans/partner', tokens.admin!, {
      method: 'PUT',
      body: JSON.stringify({ label: 'Partner', multiplierPpm: 500_000 }),
    });
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
    const nextCycle = changedAt + INTERVAL * 1000 + 1000;
    await until(
      async () => (await rowsOf(running.ada!.id)).some((r) => r.started_at.getTime() >= nextCycle),
      "ada's rows after the change",
      30,
    );
    for (const r of await rowsOf(running.ada!.id)) {
      if (r.started_at.getTime() >= nextCycle)
        assert.equal(
          r.multiplier_ppm,
          500_000,
          `row at ${r.started_at.toISOString()}: the new multiplier`,
        );
      // (a cycle whose clock read came just before the change may load the new plan)
      if (r.ended_at.getTime() <= changedAt - 1000)
        assert.equal(
          r.multiplier_ppm,
          1_000_000,
          `row at ${r.started_at.toISOString()}: the old one`,
        );
      // usage priced before the change but written after it keeps the old multiplier: the new
      // one reaches back at most to the last cycle before the change
      if (r.multiplier_ppm === 500_000)
        assert.ok(
          r.started_at.getTime() >= changedAt - INTERVAL * 1000 - 1500,
          `row at ${r.started_at.toISOString()}: the new multiplier starts ${changedAt - r.started_at.getTime()} ms before the change`,
        );
      assert.equal(r.rate_micros, newPrice, 'billed at the override');
      assert.equal(r.plan_id, 'partner');
    }

    // kill -9 of the leader: the other takes over; ada's server (started by either) keeps running
    const killedAt = Date.now();
    replicas[leader]!.child!.kill('SIGKILL');
    await until(async () => leaderOf(other), 'the other replica to take the meter over', 30);
    console.log(
      `# meter takeover after kill -9 of the leader: ${Date.now() - killedAt} ms (interval ${INTERVAL * 1000} ms)`,
    );
    const beforeKill = (await rowsOf(running.ada!.id)).at(-1)!.ended_at.getTime();
    await until(
      async () =>
        (await rowsOf(running.ada!.id)).at(-1)!.ended_at.getTime() > beforeKill + INTERVAL * 1000,
      "the new leader's rows for ada",
      30,
    );
    const stopAda = await api('lb', '/instances/default/stop', tokens.ada!, {
      method: 'POST',
      body: '{}',
    });
    assert.ok(stopAda.status < 300, `stop ada: ${stopAda.status} ${JSON.stringify(stopAda.body)}`);
    const ada = await until(
      async () => {
        const i = (await api<Inst>('lb', '/instances/default', tokens.ada!)).body;
        return i.state === 'stopped' ? i : null;
      },
      'ada stopped',
      60,
    );
    await until(async () => (await rowsOf(ada.id)).some((r) => r.final), "ada's final row", 30);

    // nothing billed twice or lost, recomputed from the rows
    checkLedger(ada, await rowsOf(ada.id), 'ada');
    checkLedger(bob, await rowsOf(bob.id), 'bob');
    const [{ n }] = await sql<[{ n: number }]>`
      select count(*)::int as n from (
        select meter_key, started_at from usage_intervals group by 1, 2 having count(*) > 1) d`;
    assert.equal(n, 0, 'no interval written twice');
  },
);
