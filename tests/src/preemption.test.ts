/**
 * Spot preemption on the real stack (hub, proxy, service, local provisioner, Postgres): a spot
 * server launched with `onPreemption`, the cloud's notice fed to the agent path (a second agent
 * with the instance's credential, asking a local metadata server that answers with AWS's recorded
 * instance-action), then the server process killed as a cloud takes a machine. With on-demand
 * recovery the same server comes back on demand at the on-demand rate, and the ledger,
 * recomputed row by row (ledger-check.ts), bills the old machine to the moment it ended and the
 * new one from the moment it was ready: nothing twice, nothing in between. With 'stop' the
 * server stays stopped and the user is told. Last, in Chromium: the open JupyterLab page shows the
 * restart overlay while the server comes back, and reopens JupyterLab on the new machine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { checkLedger } from './ledger-check.js';
import { isAlive, startStack, until, type Stack } from './stack.js';
import { launchBrowser, login, openLab, waitForLab } from './ui/browser.js';
import { dismissNews, screenshot } from './ui/helpers.js';
import { feedSpotNotice, recordedSpotNotice, type SpotMetadata } from './spot-metadata.js';

interface Inst {
  id: string;
  state: string;
  spot: boolean;
  size: string;
  ratePerHourMicros: number;
  errorCode: string | null;
  onPreemption?: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
}

describe('spot preemption on the local provisioner', () => {
  let stack: Stack;
  let sql: postgres.Sql;
  let token: string;
  let metadata: SpotMetadata;

  before(async () => {
    stack = await startStack({
      database: 'postgres',
      env: { NGSCI_METER_INTERVAL: '1', NGSCI_METER_ACCRUE_EVERY: '1', NGSCI_HOME_GB: '0' },
    });
    sql = postgres(stack.databaseUrl ?? '', { max: 2, onnotice: () => {} });
    token = await stack.userToken('researcher');
    // AWS's instance metadata, answering with the recorded spot instance-action
    metadata = await recordedSpotNotice();
  });
  after(async () => {
    await metadata?.close();
    await sql?.end();
    await stack?.stop();
  });

  const current = async () => (await (await stack.api('/instances/default', token)).json()) as Inst;
  const all = async () =>
    (
      (await (await stack.api('/instances?all=true', token)).json()) as {
        instances: Inst[];
      }
    ).instances;
  const notices = async () =>
    (
      (await (await stack.api('/notifications', token)).json()) as {
        notifications: Array<{ kind: string; title: string; body: string }>;
      }
    ).notifications;

  async function launchSpot(onPreemption: string): Promise<Inst> {
    const res = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small', spot: true, onPreemption }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    return until(
      async () => {
        const i = await current();
        if (i.state === 'failed') throw new Error(`the instance failed: ${JSON.stringify(i)}`);
        return i.state === 'running' ? i : null;
      },
      'the spot server running',
      120,
      stack,
    );
  }

  const feedNotice = (instanceId: string) => feedSpotNotice(instanceId, metadata.url);

  /** The cloud takes the machine: the server process is killed without warning. */
  function takeMachine(instanceId: string): void {
    const pid = stack.pidOf(instanceId);
    assert.ok(pid && isAlive(pid), 'the server process runs');
    process.kill(pid, 'SIGKILL');
  }

  test('on-demand recovery: the server comes back on demand, billed at its own rate, nothing twice', async () => {
    const catalog = (await (await stack.api('/catalog', token)).json()) as {
      sizes: Array<{
        id: string;
        offers: Array<{ cloud: string; onDemandMicrosPerHour: number; spotMicrosPerHour: number }>;
      }>;
    };
    const offer = catalog.sizes
      .find((s) => s.id === 'cpu-small')!
      .offers.find((o) => o.cloud === 'local')!;
    assert.ok(offer.spotMicrosPerHour < offer.onDemandMicrosPerHour, 'spot is cheaper');

    const first = await launchSpot('on-demand');
    assert.equal(first.spot, true);
    assert.equal(first.onPreemption, 'on-demand');
    assert.equal(first.ratePerHourMicros, offer.spotMicrosPerHour);
    await feedNotice(first.id);
    const warned = await until(
      async () => (await notices()).find((n) => n.kind === 'spot'),
      'the spot notice',
      20,
      stack,
    );
    assert.match(warned.body, /starts again on demand/);
    // billed past the 60 s minimum at the spot rate before the cloud takes it, so the old
    // stream's end is where the machine ended, not the minimum's
    await until(
      async () => Date.now() - Date.parse(first.readyAt!) > 63_000,
      'a minute of spot',
      90,
    );
    takeMachine(first.id);

    const back = await until(
      async () => {
        const i = await current();
        return i.id !== first.id && i.state === 'running' ? i : null;
      },
      'the server running again',
      120,
      stack,
    );
    assert.equal(back.spot, false, 'on demand now');
    assert.equal(back.ratePerHourMicros, offer.onDemandMicrosPerHour);
    const old = (await all()).find((i) => i.id === first.id)!;
    assert.equal(old.state, 'stopped');
    assert.equal(old.errorCode, 'preempted');
    assert.ok(Date.parse(old.stoppedAt!) <= Date.parse(back.readyAt!));
    const told = await notices();
    assert.ok(
      told.some((n) => /starting again on demand/.test(n.title)),
      JSON.stringify(told),
    );
    // the server answers through the proxy again (the hub took the new instance up)
    await until(
      async () =>
        (await fetch(`${stack.url}/user/researcher/api`, { redirect: 'manual' })).status === 200,
      'the new server answering through the hub',
      60,
      stack,
    );

    // stopped, both streams are final: recomputed row by row, nothing in the gap, nothing twice
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(
      (await stack.api('/instances/default/stop', token, { method: 'POST' })).status,
      202,
    );
    await until(async () => (await current()).state === 'stopped', 'stopped', 60, stack);
    await until(
      async () =>
        (
          await sql`select 1 from usage_intervals
            where meter_key in (${first.id}, ${back.id}) and final`
        ).length === 2,
      'both usage streams closed',
      30,
      stack,
    );
    const ledger = await checkLedger(sql, { instanceIds: [first.id, back.id] });
    assert.deepEqual(ledger.problems, [], 'the ledger recomputes exactly');
    const rows = await sql<Array<{ meter_key: string; started_at: Date; ended_at: Date }>>`
      select meter_key, started_at, ended_at from usage_intervals
      where meter_key in (${first.id}, ${back.id}) order by started_at`;
    const oldEnd = Math.max(
      ...rows.filter((r) => r.meter_key === first.id).map((r) => r.ended_at.getTime()),
    );
    const newStart = Math.min(
      ...rows.filter((r) => r.meter_key === back.id).map((r) => r.started_at.getTime()),
    );
    const [facts] = await sql<Array<{ stopped_at: Date }>>`
      select stopped_at from instances where id = ${first.id}`;
    assert.equal(oldEnd, facts!.stopped_at.getTime(), 'the old stream ends where the machine did');
    assert.equal(newStart, Date.parse(back.readyAt!), 'the new one billed from its own start');
    assert.ok(oldEnd <= newStart, 'no second billed twice');
    const oldTotals = ledger.totals.get(first.id)!;
    const newTotals = ledger.totals.get(back.id)!;
    assert.ok(oldTotals.closed && newTotals.closed);
    console.log(
      `preemption: old ${oldTotals.seconds} s, ${oldTotals.micros} µ$ at spot; new ${newTotals.seconds} s, ` +
        `${newTotals.micros} µ$ on demand; gap ${Date.parse(back.readyAt!) - facts!.stopped_at.getTime()} ms unbilled`,
    );
  });

  test("'stop': the server stays stopped and the user is told", async () => {
    const first = await launchSpot('stop');
    await feedNotice(first.id);
    takeMachine(first.id);
    const ended = await until(
      async () => {
        const i = await current();
        return i.state === 'stopped' ? i : null;
      },
      'the server stopped',
      60,
      stack,
    );
    assert.equal(ended.id, first.id);
    assert.equal(ended.errorCode, 'preempted');
    const told = await until(
      async () =>
        (await notices()).find((n) =>
          /was stopped: the cloud took its spot machine back/.test(n.title),
        ),
      'the stop notice',
      20,
      stack,
    );
    assert.match(told.body, /stays stopped/);
    // nothing starts behind the user's back
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal((await current()).id, first.id);
    assert.equal((await current()).state, 'stopped');
  });

  test('in JupyterLab: the page follows the relaunch and comes back (Chromium)', async () => {
    const first = await launchSpot('on-demand');
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      const page = await login(context, stack.url, 'researcher', stack.password);
      await openLab(page, stack.url, 'researcher');
      await dismissNews(page);
      await feedNotice(first.id);
      takeMachine(first.id);
      const restarting = page.getByRole('dialog', { name: 'Your machine is restarting' });
      await restarting
        .getByText('The cloud took this spot machine back: starting your server again')
        .waitFor({ timeout: 60_000 });
      await screenshot(page, 'preemption-progress-light');
      // the page reloads into JupyterLab on the new machine
      await page.waitForEvent('load', { timeout: 180_000 });
      await waitForLab(page, 120_000);
      const now = await current();
      assert.notEqual(now.id, first.id);
      assert.equal(now.state, 'running');
      assert.equal(now.spot, false);
    } finally {
      await browser.close();
    }
  });
});
