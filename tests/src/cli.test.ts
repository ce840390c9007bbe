/**
 * The `ngsci` command against the real service, run the way an instance's terminal runs it: the
 * launcher that setup puts into .venv/bin, configured by NGSCI_API_URL and JUPYTERHUB_API_TOKEN.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, ROOT, startStack, type Stack } from './stack.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('ngsci against the real service', () => {
  let stack: Stack;
  let token: string;
  let adminToken: string;

  before(async () => {
    stack = await startStack({ database: 'postgres' });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken('admin');
  });
  after(async () => stack?.stop());

  const ngsci = (
    args: string[],
    as = token,
    extraEnv: Record<string, string> = {},
  ): Promise<Result> =>
    new Promise((resolve) => {
      const child = spawn(join(ROOT, '.venv', 'bin', 'ngsci'), args, {
        env: {
          PATH: process.env.PATH ?? '',
          NGSCI_API_URL: `${stack.url}/services/ngsci/api/v1`,
          JUPYTERHUB_API_TOKEN: as,
          ...extraEnv,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  const json = <T>(r: Result): T => {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  test('status --json names the user and plan', async () => {
    const s = json<{ me: { name: string; plan: { id: string } }; instances: unknown[] }>(
      await ngsci(['status', '--json']),
    );
    assert.equal(s.me.name, 'researcher');
    assert.equal(s.me.plan.id, 'private');
    assert.deepEqual(s.instances, []);
  });

  test('launch follows the events with a progress bar until running; stop --json ends it', async () => {
    const launched = await ngsci(['launch', 'cpu-small', '--server', 'cli1']);
    assert.equal(launched.code, 0, launched.stderr);
    assert.match(
      launched.stderr,
      /\[#+\.*\]\s+\d+% (requested|provisioning|starting)/,
      'progress lines while waiting',
    );
    assert.match(launched.stderr, /\[#{24}\] 100% running/);
    assert.match(launched.stdout, /server 'cli1' is running on cpu-small at \$\d+\.\d{2,6}\/h/);

    const inst = json<{ id: string; state: string; size: string }>(
      await ngsci(['status', 'cli1', '--json']),
    );
    assert.equal(inst.state, 'running');
    const pid = stack.pidOf(inst.id);
    assert.ok(pid && isAlive(pid));

    const again = await ngsci(['launch', 'cpu-small', '--server', 'cli1', '--json']);
    assert.equal(again.code, 1, 'the service refuses a second launch');
    assert.equal(
      (JSON.parse(again.stderr) as { error: { code: string } }).error.code,
      'instance_busy',
    );

    const stopped = json<{ state: string }>(await ngsci(['stop', 'cli1', '--json']));
    assert.equal(stopped.state, 'stopped');
    assert.equal(isAlive(pid), false);
  });

  test('a pair of packages: launch --cpu S runs the size s.none at its offer; catalog --pairs lists it', async () => {
    const pairs = json<{
      pairs: Array<{
        id: string;
        offers: Array<{ cloud: string; available: boolean; onDemandMicrosPerHour: number }>;
      }>;
    }>(await ngsci(['catalog', '--pairs', '--cloud', 'local', '--json']));
    const sNone = pairs.pairs
      .find((p) => p.id === 's.none')
      ?.offers.find((o) => o.cloud === 'local');
    assert.ok(sNone?.available, 's.none is offered on local');
    const launched = await ngsci(['launch', '--cpu', 'S', '--server', 'cli2']);
    assert.equal(launched.code, 0, launched.stderr);
    assert.match(launched.stdout, /server 'cli2' is running on s\.none at \$/);
    const inst = json<{ size: string; ratePerHourMicros: number }>(
      await ngsci(['status', 'cli2', '--json']),
    );
    assert.equal(inst.size, 's.none');
    assert.equal(inst.ratePerHourMicros, sNone.onDemandMicrosPerHour);
    assert.equal(json<{ state: string }>(await ngsci(['stop', 'cli2', '--json'])).state, 'stopped');
  });

  test('admin verbs: a quota set from the command line is what the API holds; researchers are refused', async () => {
    const set = await ngsci(
      [
        'admin',
        'quota',
        'set',
        '--user',
        'researcher',
        '--budget',
        '150.25',
        '--hard-stop',
        '--max-concurrent',
        '2',
        '--json',
      ],
      adminToken,
    );
    const q = json<{
      subjectName: string;
      monthlyBudgetMicros: number;
      hardStop: boolean;
      maxConcurrent: number;
    }>(set);
    assert.equal(q.monthlyBudgetMicros, 150_250_000);
    const held = (await (await stack.api('/admin/quotas', adminToken)).json()) as {
      quotas: Array<{
        subjectName: string;
        monthlyBudgetMicros: number;
        maxConcurrent: number;
        hardStop: boolean;
      }>;
    };
    const mine = held.quotas.find((x) => x.subjectName === 'researcher');
    assert.equal(mine?.monthlyBudgetMicros, 150_250_000);
    assert.equal(mine?.maxConcurrent, 2);
    assert.equal(mine?.hardStop, true);

    const changed = json<{ monthlyBudgetMicros: number; maxConcurrent: number }>(
      await ngsci(
        ['admin', 'quota', 'set', '--user', 'researcher', '--max-concurrent', '3', '--json'],
        adminToken,
      ),
    );
    assert.equal(changed.maxConcurrent, 3);
    assert.equal(changed.monthlyBudgetMicros, 150_250_000, 'changing one limit keeps the budget');

    const table = await ngsci(['admin', 'instances', '--all'], adminToken);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^USER\s+SERVER\s+SIZE/m);
    assert.match(table.stdout, /researcher\s+cli1\s+cpu-small/);

    const refused = await ngsci(['admin', 'instances'], token);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^ngsci: \[forbidden\] /);
  });

  test('admin credits: a grant recorded from the command line is in the API, in µ$; researchers are refused', async () => {
    const added = json<{ id: number; amountMicros: number; remainingMicros: number }>(
      await ngsci(
        [
          'admin',
          'credits',
          'add',
          '--cloud',
          'gcp',
          '--amount',
          '50,000.25',
          '--starts',
          '2026-01-01',
          '--expires',
          '2099-12-31',
          '--note',
          'research credits',
          '--json',
        ],
        adminToken,
      ),
    );
    assert.equal(added.amountMicros, 50_000_250_000);
    const held = (await (await stack.api('/admin/credits', adminToken)).json()) as {
      grants: Array<{ id: number; cloud: string; note: string | null }>;
    };
    assert.deepEqual(
      held.grants.filter((g) => g.id === added.id).map((g) => [g.cloud, g.note]),
      [['gcp', 'research credits']],
    );
    const list = await ngsci(['admin', 'credits'], adminToken);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /gcp\s+\$50,000\.25/);
    const refused = await ngsci(['admin', 'credits'], token);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^ngsci: \[forbidden\] /);
    // leave the shared hub without grants, as the other tests found it
    const removed = await stack.api(`/admin/credits/${added.id}`, adminToken, { method: 'DELETE' });
    assert.equal(removed.status, 200);
  });

  test('estimate posts a scenario file; a bad file is refused before anything is sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-cli-'));
    const good = join(dir, 'lab.json');
    writeFileSync(
      good,
      JSON.stringify({
        months: 12,
        instanceHours: [{ size: 'cpu-small', hoursPerMonth: 100 }],
        fixedMonthly: [{ name: 'hub VM', monthlyMicros: 70_000_000 }],
      }),
    );
    const est = json<{
      monthlyMicros: number;
      totalMicros: number;
      lines: Array<{ name: string; monthlyMicros: number }>;
    }>(await ngsci(['estimate', good, '--json']));
    assert.equal(est.totalMicros, est.monthlyMicros * 12);
    assert.equal(
      est.monthlyMicros,
      est.lines.reduce((s, l) => s + l.monthlyMicros, 0),
    );
    assert.ok(est.lines.some((l) => l.name === 'hub VM' && l.monthlyMicros === 70_000_000));

    const human = await ngsci(['estimate', good]);
    assert.match(human.stdout, /total \(12 months\):\s+\$[\d,]+\.\d\d/);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ months: 0, cpus: 3 }));
    const r = await ngsci(['estimate', bad]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^ngsci: \[invalid_scenario\] estimate: .*bad\.json is not a valid scenario/,
    );
  });

  test('bad arguments and bad configuration: one line and an exit code', async () => {
    const noSize = await ngsci(['resize']);
    assert.equal(noSize.code, 2);
    assert.equal(noSize.stderr, 'ngsci: [usage] resize: missing SIZE (see: ngsci resize --help)\n');
    const unknown = await ngsci(['launch', 'gpu-x9']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^ngsci: \[unknown_size\] /);
    const badToken = await ngsci(['status'], 'not-a-real-token');
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /^ngsci: \[unauthenticated\] /);
    assert.ok(!badToken.stderr.includes('not-a-real-token'));
    const nowhere = await ngsci(['status'], token, {
      NGSCI_API_URL: 'http://127.0.0.1:9/services/ngsci/api/v1',
    });
    assert.equal(nowhere.code, 3);
    assert.match(nowhere.stderr, /cannot reach the ngsci service/);
  });
});
