/**
 * Metering end to end, on Postgres, with a real JupyterHub and real single-user servers: usage
 * billed to the second, a nonprofit user billed 0 with usage recorded, a budget hard stop, idle
 * culling that spares a busy kernel, and a kill -9 of the service (the hub restarts it) with no
 * second lost or counted twice, and a JupyterHub outage (SIGSTOP) with instances running. Meter, culler and grace periods run on second-scale settings.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';
import WebSocket from 'ws';
import { assertWarnedThenCulled } from './culling.js';
import { isAlive, startPostgresStack, until, type PostgresStack, type Stack } from './stack.js';

interface Inst {
  id: string;
  state: string;
  readyAt: string | null;
  stoppedAt: string | null;
  ratePerHourMicros: number;
}

const USERS = ['researcher', 'np', 'budget', 'idler', 'busy'] as const;
let stack: Stack;
let sql: postgres.Sql;
let pgStack: PostgresStack;
const tokens: Record<string, string> = {};
let adminToken: string;

before(async () => {
  pgStack = await startPostgresStack(
    {
      NGSCI_CULL_EVERY: '1',
      NGSCI_CULL_WARNING: '2',
      NGSCI_BUDGET_GRACE: '3',
      NGSCI_METER_ORPHAN_GRACE: '120',
    },
    USERS.slice(1),
  );
  ({ stack, sql } = pgStack);
  adminToken = await stack.userToken('admin');
  for (const u of USERS) tokens[u] = await stack.userToken(u);
});

after(async () => {
  await pgStack?.stop();
});

const api = async <T>(
  path: string,
  user: string | null,
  init?: RequestInit & { admin?: boolean },
): Promise<{ status: number; body: T }> => {
  const res = await stack.api(path, init?.admin ? adminToken : tokens[user!]!, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
};
const instance = async (user: string) => (await api<Inst>('/instances/default', user)).body;
const waitState = (user: string, states: string[], what: string, seconds = 90) =>
  until(
    async () => {
      const i = await instance(user);
      return states.includes(i.state) ? i : null;
    },
    what,
    seconds,
    stack,
  );

/** The ledger rows of one instance, oldest first. */
const rowsOf = (id: string) =>
  sql<
    Array<{
      started_at: Date;
      ended_at: Date;
      billed_from: string;
      billed_to: string;
      amount_micros: string;
      final: boolean;
      multiplier_ppm: number;
    }>
  >`
    select started_at, ended_at, billed_from, billed_to, amount_micros, final, multiplier_ppm
    from usage_intervals where meter_key = ${id} order by started_at`;

function assertContiguous(rows: Awaited<ReturnType<typeof rowsOf>>, what: string) {
  for (let i = 1; i < rows.length; i++) {
    assert.equal(
      rows[i]!.started_at.getTime(),
      rows[i - 1]!.ended_at.getTime(),
      `${what}: row ${i} starts where row ${i - 1} ends (no gap, no overlap)`,
    );
    assert.equal(
      Number(rows[i]!.billed_from),
      Number(rows[i - 1]!.billed_to),
      `${what}: billed seconds continue`,
    );
  }
}

/** rate × seconds, rounded half up to a whole µ$: the price of a whole start. */
const price = (rate: number, seconds: number, ppm = 1_000_000) =>
  Number((2n * BigInt(rate) * BigInt(seconds) * BigInt(ppm) + 3_600_000_000n) / 7_200_000_000n);

/** The service's pid: the hub-service process whose environment names this stack's data dir. */
function servicePid(): number | null {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!cmd.includes('hub-service/dist/index.js')) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (
        env.includes(`NGSCI_DATA_DIR=${stack.dataDir}`) ||
        env.some((e) => e.startsWith('NGSCI_DATA_DIR=') && e.endsWith(stack.dataDir))
      )
        return Number(d);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}

/** Makes a kernel of the user's server busy for `seconds` (a real execute_request over the kernel websocket). */
async function busyKernel(user: string, seconds: number): Promise<WebSocket> {
  const headers = { authorization: `token ${tokens[user]}` };
  const k = await until(
    async () => {
      const r = await fetch(`${stack.url}/user/${user}/api/kernels`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: '{}',
      });
      return r.status === 201 ? ((await r.json()) as { id: string }) : null;
    },
    'a kernel',
    60,
    stack,
  );
  const ws = new WebSocket(
    `${stack.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${k.id}/channels`,
    { headers },
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const session = randomUUID();
  ws.send(
    JSON.stringify({
      header: {
        msg_id: randomUUID(),
        username: user,
        session,
        msg_type: 'execute_request',
        version: '5.3',
        date: new Date().toISOString(),
      },
      parent_header: {},
      metadata: {},
      content: {
        code: `import time; time.sleep(${seconds})`,
        silent: false,
        store_history: false,
        user_expressions: {},
        allow_stdin: false,
        stop_on_error: true,
      },
      channel: 'shell',
      buffers: [],
    }),
  );
  await until(
    async () => {
      const r = await fetch(`${stack.url}/user/${user}/api/kernels/${k.id}`, { headers });
      return ((await r.json()) as { execution_state: string }).execution_state === 'busy';
    },
    'the kernel to be busy',
    30,
    stack,
  );
  return ws;
}

test(
  'metering with a real hub: to the second, nonprofit, hard stop, culling, kill -9, hub outage',
  { timeout: 240_000 },
  async () => {
    // plans and idle policy first: np is non-profit; idler is culled after 8 idle seconds
    assert.equal(
      (
        await api('/admin/plan-assignments', null, {
          admin: true,
          method: 'PUT',
          body: JSON.stringify({ subjectKind: 'user', subjectName: 'np', planId: 'nonprofit' }),
        })
      ).status,
      200,
    );
    assert.equal(
      (
        await api('/admin/quotas', null, {
          admin: true,
          method: 'POST',
          body: JSON.stringify({
            subjectKind: 'user',
            subjectName: 'idler',
            idleTimeoutCpuSeconds: 8,
          }),
        })
      ).status,
      201,
    );

    for (const u of USERS) {
      const res = await api('/instances', u, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(res.status, 202, `${u}: ${JSON.stringify(res.body)}`);
    }
    // all five watched at once: on a loaded machine the idler (8 idle seconds) may be culled
    // before a one-after-another wait reaches it; it counts as started once it became ready, and
    // its culling (warned, then stopped) is checked below
    const ready: Record<string, Inst> = Object.fromEntries(
      await Promise.all(
        USERS.map(async (u) => {
          const states = u === 'idler' ? ['running', 'stopped', 'failed'] : ['running', 'failed'];
          return [u, await waitState(u, states, `${u} running`, 120)] as const;
        }),
      ),
    );
    for (const u of USERS) {
      const i = ready[u]!;
      const started =
        i.state === 'running' || (u === 'idler' && i.state === 'stopped' && i.readyAt !== null);
      assert.ok(started, `${u}: ${JSON.stringify(i)}`);
    }

    // a busy kernel: its server is idle by the hub's activity, but must not be culled
    const ws = await busyKernel('busy', 120);
    assert.equal(
      (
        await api('/admin/quotas', null, {
          admin: true,
          method: 'POST',
          body: JSON.stringify({
            subjectKind: 'user',
            subjectName: 'busy',
            idleTimeoutCpuSeconds: 8,
          }),
        })
      ).status,
      201,
    );
    // a budget of 1 µ$ with hard stop: spent at the next cycle, then a 3 s grace, then stopped
    assert.equal(
      (
        await api('/admin/quotas', null, {
          admin: true,
          method: 'POST',
          body: JSON.stringify({
            subjectKind: 'user',
            subjectName: 'budget',
            monthlyBudgetMicros: 1,
            hardStop: true,
          }),
        })
      ).status,
      201,
    );

    const budgetStopped = await waitState(
      'budget',
      ['stopped', 'failed'],
      'the budget hard stop',
      60,
    );
    assert.equal(budgetStopped.state, 'stopped');
    const budgetEvents = (
      await sql<
        Array<{ message: string }>
      >`select message from instance_events where instance_id = ${budgetStopped.id} order by id`
    ).map((e) => e.message);
    assert.ok(
      budgetEvents.some((m) => /monthly budget of \$0\.000001 is spent/.test(m)),
      budgetEvents.join(' | '),
    );
    const again = await api<{ code: string }>('/instances', 'budget', {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    assert.equal(again.status, 403);
    assert.equal(again.body.code, 'budget_exhausted');

    const culled = await waitState(
      'idler',
      ['stopped', 'failed'],
      'the idle server to be culled',
      60,
    );
    assert.equal(culled.state, 'stopped');
    await assertWarnedThenCulled(sql, culled.id);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal((await instance('busy')).state, 'running', 'the busy kernel kept its server');
    const meter = (
      await api<{ lastCycle: { keptBusy: string[] } }>('/admin/meter', null, { admin: true })
    ).body;
    assert.ok(meter.lastCycle.keptBusy.includes(ready.busy!.id), JSON.stringify(meter));
    ws.close();

    // kill -9 the service in the middle of an interval; the hub restarts a managed service
    const pid = servicePid();
    assert.ok(pid, 'found the service process');
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(pid, 'SIGKILL');
    await until(
      async () => {
        const p = servicePid();
        if (!p || p === pid || !isAlive(p)) return null;
        return (await fetch(`${stack.url}/services/ngsci/health`)).ok;
      },
      'the hub to restart the service',
      60,
      stack,
    );
    const before = Number((await rowsOf(ready.researcher!.id)).at(-1)!.billed_to);
    await until(
      async () => Number((await rowsOf(ready.researcher!.id)).at(-1)?.billed_to ?? 0) > before + 2,
      'the meter to run again',
      60,
      stack,
    );

    // a JupyterHub outage with instances running (the hub frozen with SIGSTOP for 6 s): usage keeps
    // accruing from the lifecycle, nothing is closed, and the rows stay contiguous
    const hubPid = Number(
      readFileSync(`/proc/${servicePid()}/stat`, 'utf8').split(') ')[1]!.split(' ')[1],
    );
    assert.match(readFileSync(`/proc/${hubPid}/cmdline`, 'utf8'), /jupyterhub/);
    const beforeOutage = Number((await rowsOf(ready.researcher!.id)).at(-1)!.billed_to);
    process.kill(hubPid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 6000));
      assert.ok(
        Number((await rowsOf(ready.researcher!.id)).at(-1)!.billed_to) > beforeOutage + 3,
        'accrues while the hub is down',
      );
    } finally {
      process.kill(hubPid, 'SIGCONT');
    }
    assert.equal((await instance('researcher')).state, 'running');

    // a JupyterHub restart with instances running (`npm start` restarts the hub on SIGUSR2): the
    // service restarts with it, adopts the running servers, and the ledger stays contiguous
    const serverPid = stack.pidOf(ready.researcher!.id);
    const oldService = servicePid();
    process.kill(stack.pid, 'SIGUSR2');
    await until(
      async () => {
        const p = servicePid();
        if (!p || p === oldService) return null;
        return (
          (await fetch(`${stack.url}/services/ngsci/health`)).ok &&
          (await fetch(`${stack.url}/hub/api/`)).ok
        );
      },
      'the hub and the service to come back',
      90,
      stack,
    );
    assert.equal(
      (await instance('researcher')).state,
      'running',
      'the instance outlived the hub restart',
    );
    assert.ok(
      serverPid && isAlive(serverPid) && stack.pidOf(ready.researcher!.id) === serverPid,
      'the same process',
    );
    const researcherToken = await stack.userToken('researcher');
    await until(
      async () =>
        (
          await fetch(`${stack.url}/user/researcher/api`, {
            headers: { authorization: `token ${researcherToken}` },
          })
        ).ok,
      'the new proxy to route to the server again',
      60,
      stack,
    );
    const afterRestart = Number((await rowsOf(ready.researcher!.id)).at(-1)!.billed_to);
    await until(
      async () =>
        Number((await rowsOf(ready.researcher!.id)).at(-1)?.billed_to ?? 0) > afterRestart + 2,
      'the meter to run after the hub restart',
      60,
      stack,
    );

    // run past the 60 s minimum, then stop: billed to the second from readyAt to stoppedAt
    const runFor = 62_000 - (Date.now() - new Date(ready.researcher!.readyAt!).getTime());
    if (runFor > 0) await new Promise((r) => setTimeout(r, runFor));
    for (const u of ['researcher', 'np', 'busy'])
      assert.equal((await api(`/instances/default/stop`, u, { method: 'POST' })).status, 202);
    for (const u of ['researcher', 'np', 'busy'])
      await waitState(u, ['stopped'], `${u} stopped`, 60);
    for (const u of ['researcher', 'np', 'busy', 'budget', 'idler']) {
      const i = await instance(u);
      await until(async () => (await rowsOf(i.id)).at(-1)?.final, `${u}'s usage closed`, 30, stack);
      const rows = await rowsOf(i.id);
      assertContiguous(rows, u);
      const seconds = Math.max(
        60,
        Math.floor((new Date(i.stoppedAt!).getTime() - new Date(i.readyAt!).getTime()) / 1000),
      );
      const billed = rows.reduce((s, r) => s + Number(r.billed_to) - Number(r.billed_from), 0);
      const amount = rows.reduce((s, r) => s + Number(r.amount_micros), 0);
      assert.equal(billed, seconds, `${u}: billed seconds = stoppedAt − readyAt`);
      const ppm = u === 'np' ? 0 : 1_000_000;
      assert.equal(
        amount,
        price(i.ratePerHourMicros, seconds, ppm),
        `${u}: amount = rate × seconds`,
      );
      assert.ok(rows.every((r) => r.multiplier_ppm === ppm));
    }
    const research = await instance('researcher');
    assert.ok(
      Math.floor(
        (new Date(research.stoppedAt!).getTime() - new Date(research.readyAt!).getTime()) / 1000,
      ) > 60,
      'a run longer than the minimum',
    );

    // what the user sees: the statement, in JSON and CSV, with the same totals
    const month = new Date().toISOString().slice(0, 7);
    const statement = (
      await api<{
        totalMicros: number;
        lines: Array<{ instanceId: string; seconds: number; amountMicros: number }>;
      }>(`/billing/statements/${month}`, 'np')
    ).body;
    assert.equal(statement.totalMicros, 0, 'non-profit: billed nothing');
    assert.ok(
      statement.lines.some((l) => l.seconds >= 60),
      'but the usage is recorded',
    );
    const csv = await (
      await stack.api(`/billing/statements/${month}?format=csv`, tokens.researcher!)
    ).text();
    const json = (await api<{ totalMicros: number }>(`/billing/statements/${month}`, 'researcher'))
      .body;
    const totalRow = csv.trim().split('\r\n').at(-1)!.split(',');
    assert.equal(Number(totalRow[13]), json.totalMicros);
    assert.ok(json.totalMicros > 0);
  },
);
