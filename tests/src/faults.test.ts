/**
 * Faults of processes, end to end on Postgres with a real JupyterHub and real single-user servers:
 * a kill -9 of the service while a start is half done and while a resize is under way (JupyterHub
 * restarts a managed service that dies), then a JupyterHub restart while a resize waits. Each
 * must end with no instance stuck, no server process or pid file left behind, the user's files
 * kept, and a ledger that recomputes exactly (ledger-check.ts). The terraform test double killed
 * mid-apply is hub-service/src/provisioners/terraform/killed-apply.test.ts.
 *
 * To place each fault at a known step, local servers run through a wrapper (same pid and
 * environment as the server, so the service's stop and adoption treat it as the server): while a
 * file named after the user exists in the hold dir, the start waits before the server runs; with
 * one in the slow-stop dir, the server takes 5 s to exit after SIGTERM, so a resize is seen
 * waiting on its old machine's stop.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { checkLedger } from './ledger-check.js';
import {
  isAlive,
  ROOT,
  startPostgresStack,
  until,
  type PostgresStack,
  type Stack,
} from './stack.js';

interface Inst {
  id: string;
  state: string;
  size: string;
  errorCode: string | null;
  errorMessage: string | null;
  readyAt: string | null;
}

const USERS = ['starter', 'resizer'] as const;
let stack: Stack;
let pgStack: PostgresStack;
let sql: postgres.Sql;
const tokens: Record<string, string> = {};
const scratch = mkdtempSync(join(tmpdir(), 'ngsci-faults-'));
const holdDir = join(scratch, 'hold');
const slowStopDir = join(scratch, 'slow-stop');

before(async () => {
  mkdirSync(holdDir);
  mkdirSync(slowStopDir);
  const wrapper = join(scratch, 'held-singleuser');
  const singleuser = join(ROOT, '.venv/bin/jupyterhub-singleuser');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `while [ -e '${holdDir}'/"$JUPYTERHUB_USER" ]; do sleep 0.2; done`,
      `[ -e '${slowStopDir}'/"$JUPYTERHUB_USER" ] || exec '${singleuser}' "$@"`,
      `trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; sleep 5; exit 0' TERM`,
      `'${singleuser}' "$@" &`,
      'child=$!',
      'wait "$child"',
      '',
    ].join('\n'),
  );
  // every server of the resizer is slow to stop
  writeFileSync(join(slowStopDir, 'resizer'), '');
  chmodSync(wrapper, 0o755);
  chmodSync(scratch, 0o755);
  pgStack = await startPostgresStack(
    {
      // a dead worker's jobs are reaped 4 s after its last heartbeat, not 60
      NGSCI_JOB_HEARTBEAT: '1',
      NGSCI_JOB_STALE_AFTER: '4',
      // the service's local servers start through the wrapper (the hub config sets
      // NGSCI_LOCAL_COMMAND itself, so it is given on the service's command line)
      NGSCI_SERVICE_COMMAND: `env NGSCI_LOCAL_COMMAND=${wrapper} node ${join(ROOT, 'hub-service/dist/index.js')}`,
    },
    USERS,
  );
  ({ stack, sql } = pgStack);
  for (const u of USERS) {
    tokens[u] = await stack.userToken(u);
  }
});

after(async () => {
  await pgStack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const api = async <T>(
  path: string,
  user: string,
  init?: RequestInit,
): Promise<{ status: number; body: T }> => {
  const res = await stack.api(path, tokens[user]!, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
};
const instance = async (user: string) => (await api<Inst>('/instances/default', user)).body;
const launch = (user: string, size: string) =>
  api<Inst>('/instances', user, { method: 'POST', body: JSON.stringify({ size }) });
/** The user's newest instance once it is in one of `states` (and is not `notId`). */
const waitFor = (user: string, states: string[], what: string, seconds = 90, notId?: string) =>
  until(
    async () => {
      const i = await instance(user);
      return i && i.id !== notId && states.includes(i.state) ? i : null;
    },
    what,
    seconds,
    stack,
  );

/** Live processes started for an instance (the server, its agent, its kernels, the wrapper's sleep). */
function processesOf(instanceId: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.includes(`NGSCI_INSTANCE_ID=${instanceId}`) && isAlive(Number(d)))
        found.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** The service's pid: the hub-service process whose environment names this stack's data dir. */
function servicePid(): number | null {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('hub-service/dist/index.js'))
        continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.includes(`NGSCI_DATA_DIR=${stack.dataDir}`) && isAlive(Number(d))) return Number(d);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}

const serviceBack = (old: number, what: string) =>
  until(
    async () => {
      const p = servicePid();
      if (!p || p === old) return null;
      return (
        (await fetch(`${stack.url}/services/ngsci/health`)).ok &&
        (await fetch(`${stack.url}/hub/api/`)).ok
      );
    },
    what,
    90,
    stack,
  );

const FILE = 'kept-across-faults.txt';
const contents = (user: string, init?: RequestInit) =>
  fetch(`${stack.url}/user/${user}/api/contents/${FILE}`, {
    ...init,
    headers: { authorization: `token ${tokens[user]}`, 'content-type': 'application/json' },
  });
/** The user's file, read through the proxy from whatever server now runs for them. */
const fileOf = (user: string) =>
  until(
    async () => {
      const r = await contents(user);
      return r.ok ? ((await r.json()) as { content: string }).content : null;
    },
    `${user}'s file through the new server`,
    60,
    stack,
  );

/** Waits until the instance's stop job runs (its machine is stopping, slowly). */
const stopUnderWay = (id: string) =>
  until(
    async () =>
      (
        await sql`select 1 from jobs j join instances i on i.id = j.instance_id
          where j.instance_id = ${id} and j.kind = 'stop' and j.state = 'running'
            and i.state = 'stopping' and i.resize_state = 'stopping'`
      ).length > 0,
    'the old machine to be stopping',
    30,
    stack,
  );

const row = async (id: string) =>
  (
    await sql<Array<{ state: string; resize_state: string | null; size_id: string }>>`
      select state, resize_state, size_id from instances where id = ${id}`
  )[0]!;

test(
  'kill -9 of the service during a start and a resize, and a hub restart while a resize waits',
  { timeout: 300_000 },
  async (t) => {
    // the resizer runs on cpu-small, with a file in its home
    assert.equal((await launch('resizer', 'cpu-small')).status, 202);
    const small = await waitFor('resizer', ['running', 'failed'], 'the resizer running', 120);
    assert.equal(small.state, 'running', JSON.stringify(small));
    const put = await until(
      async () => {
        const r = await contents('resizer', {
          method: 'PUT',
          body: JSON.stringify({
            type: 'file',
            format: 'text',
            content: 'written before the faults',
          }),
        });
        return r.ok ? r : null;
      },
      'a file written through the server',
      60,
      stack,
    );
    assert.ok(put.ok);

    // the starter's start, held half way: its process runs, it does not answer yet
    writeFileSync(join(holdDir, 'starter'), '');
    assert.equal((await launch('starter', 'cpu-small')).status, 202);
    const starting = await waitFor('starter', ['starting'], 'the held start to be starting', 60);
    await until(async () => processesOf(starting.id).length > 0, 'the held server process', 30);

    // the resize is accepted and its old machine is stopping (a stop job runs) when the service
    // is killed, with the start above still half done
    const resizing = api<Inst>('/instances/default/resize', 'resizer', {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-large' }),
    }).catch((e: unknown) => ({ status: 0, body: String(e) }));
    await stopUnderWay(small.id);
    const pid = servicePid();
    assert.ok(pid, 'found the service process');
    process.kill(pid, 'SIGKILL');
    const atKill = await row(small.id);
    assert.equal(atKill.resize_state, 'stopping', 'the resize waited on its stop');
    assert.equal((await row(starting.id)).state, 'starting', 'the start was half done');
    // the caller of the resize may hear an error (the service died under it): it was recorded
    t.diagnostic(`the resize request answered ${(await resizing).status}`);

    // JupyterHub restarts its managed service (it polls it every 30 s or so)
    const killedAt = Date.now();
    await serviceBack(pid, 'the hub to restart the killed service');
    t.diagnostic(
      `the hub restarted the service after ${Math.round((Date.now() - killedAt) / 1000)} s`,
    );

    // 1. the half-done start fails cleanly: the user sees why, nothing of it is left
    const failed = await waitFor('starter', ['failed', 'running'], 'the held start to end', 60);
    assert.equal(failed.id, starting.id);
    assert.equal(failed.state, 'failed', JSON.stringify(failed));
    assert.equal(failed.errorCode, 'provision_failed');
    assert.match(failed.errorMessage ?? '', /restarted while provisioning/);
    assert.equal(failed.readyAt, null);
    await until(
      async () => processesOf(starting.id).length === 0,
      'the half-started server to be removed',
      30,
      stack,
    );
    assert.equal(stack.pidOf(starting.id), null, 'its pid file is gone');
    // the hub gave the spawn up too, and the user can start again
    await until(
      async () => {
        const u = (await (await stack.hub('/users/starter')).json()) as {
          servers: Record<string, { pending: string | null; ready: boolean }>;
        };
        const s = u.servers[''];
        return !s || (!s.ready && !s.pending);
      },
      "the hub to give the starter's spawn up",
      60,
      stack,
    );
    rmSync(join(holdDir, 'starter'));
    await until(
      async () => (await launch('starter', 'cpu-small')).status === 202,
      'a new start',
      30,
      stack,
    );
    const again = await waitFor('starter', ['running', 'failed'], 'the new start', 90, starting.id);
    assert.equal(again.state, 'running', JSON.stringify(again));

    // 2. the resize survives the kill: the old size stopped, the new one runs, the file is there
    const large = await waitFor(
      'resizer',
      ['running', 'failed'],
      'the resize to finish after the restart',
      120,
      small.id,
    );
    assert.equal(large.state, 'running', JSON.stringify(large));
    assert.equal(large.size, 'cpu-large');
    assert.deepEqual(await row(small.id), {
      state: 'stopped',
      resize_state: 'done',
      size_id: 'cpu-small',
    });
    assert.deepEqual(processesOf(small.id), [], 'the old size is gone');
    assert.equal(await fileOf('resizer'), 'written before the faults');

    // 3. JupyterHub restarted (as `npm start` does on SIGUSR2) while the resize waits on its stop
    const oldService = servicePid()!;
    const back = api<Inst>('/instances/default/resize', 'resizer', {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    }).catch((e: unknown) => ({ status: 0, body: String(e) }));
    await stopUnderWay(large.id);
    process.kill(stack.pid, 'SIGUSR2');
    t.diagnostic(`the resize request answered ${(await back).status}`);
    await serviceBack(oldService, 'the hub and the service to come back');
    const smallAgain = await waitFor(
      'resizer',
      ['running', 'failed'],
      'the resize to finish after the hub restart',
      120,
      large.id,
    );
    assert.equal(smallAgain.state, 'running', JSON.stringify(smallAgain));
    assert.equal(smallAgain.size, 'cpu-small');
    assert.deepEqual(await row(large.id), {
      state: 'stopped',
      resize_state: 'done',
      size_id: 'cpu-large',
    });
    assert.deepEqual(processesOf(large.id), [], 'the old size is gone');
    const active = await sql`
      select id from instances where user_name = 'resizer' and state not in ('stopped', 'failed')`;
    assert.equal(active.length, 1, 'one machine for the user, at one size');
    assert.equal(await fileOf('resizer'), 'written before the faults');

    // the end: everything stopped, then the ledger is recomputed from its rows
    for (const u of USERS)
      assert.equal(
        (await api(`/instances/default/stop`, u, { method: 'POST', body: '{}' })).status,
        202,
      );
    for (const u of USERS) await waitFor(u, ['stopped'], `${u} stopped`, 60);
    await until(
      async () =>
        (
          await sql`
            select i.id from instances i where i.ready_at is not null and not exists (
              select 1 from usage_intervals u where u.meter_key = i.id::text and u.final)`
        ).length === 0,
      "every instance's usage closed",
      30,
      stack,
    );
    const ledger = await checkLedger(sql);
    assert.deepEqual(ledger.problems, [], 'the ledger recomputes exactly');
    assert.equal(ledger.totals.get(starting.id)?.rows, 0, 'nothing billed for the failed start');
    for (const i of [small, large, smallAgain, again])
      assert.ok((ledger.totals.get(i.id)?.seconds ?? 0) >= 60, `${i.size} ${i.id} billed`);
    const all = await sql<
      Array<{ id: string; state: string }>
    >`select id::text, state from instances`;
    for (const i of all) {
      assert.ok(['stopped', 'failed'].includes(i.state), `${i.id} ended: ${i.state}`);
      assert.deepEqual(processesOf(i.id), [], `no process of ${i.id} left`);
      assert.ok(!existsSync(join(stack.dataDir, 'run', `${i.id}.pid`)), `no pid file of ${i.id}`);
    }
  },
);
