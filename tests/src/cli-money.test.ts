/**
 * Money in `ngsci` and `%ngsci` against the real service: with a machine running, the terminal and
 * a notebook kernel show the service's own figures (cost so far, spent this month and today, the
 * usage total), written by the contract's formatter (the magic's Python copy included), rates
 * unrounded, hours in hours, every output ending with a newline, and HTML that JupyterLab's math
 * rendering cannot turn into a formula. Then a launch that a spent budget refuses: the error, with
 * its code, is all the command prints, and it exits 1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatMicros, formatRate } from '@ngsci/contract';
import { runKernelDriver } from './kernel-driver.js';
import { ROOT, startStack, until, type Stack } from './stack.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Inst {
  id: string;
  state: string;
  ratePerHourMicros: number;
  billedMicros?: number;
}

/**
 * Whether `text` is how the contract writes some amount within `slack` µ$ of `micros`: two reads
 * a moment apart differ by the seconds between them at the running rate, and no more.
 */
function shows(text: string, micros: number, slack: number): boolean {
  for (let m = Math.max(0, micros - slack); m <= micros + slack; m++)
    if (formatMicros(m) === text) return true;
  return false;
}

describe('money in ngsci and %ngsci', () => {
  let stack: Stack;
  let token: string;
  let adminToken: string;
  let inst: Inst;

  before(async () => {
    stack = await startStack({ database: 'postgres' });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken('admin');
  });
  after(async () => stack?.stop());

  const ngsci = (args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      const child = spawn(join(ROOT, '.venv', 'bin', 'ngsci'), args, {
        env: {
          PATH: process.env.PATH ?? '',
          NGSCI_API_URL: `${stack.url}/services/ngsci/api/v1`,
          JUPYTERHUB_API_TOKEN: token,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  const api = async <T>(path: string): Promise<T> => {
    const res = await stack.api(path, token);
    assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
    return (await res.json()) as T;
  };

  test('status, budget and usage print the API figures, in the contract format, ending with a newline', async () => {
    const launch = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    assert.equal(launch.status, 202, await launch.clone().text());
    inst = await until(
      async () => {
        const i = await api<Inst>('/instances/default');
        return i.state === 'running' ? i : null;
      },
      'the instance to run',
      120,
      stack,
    );
    // a few seconds of cost, so every figure is non-zero
    await new Promise((r) => setTimeout(r, 4000));
    // one second at the rate, µ$, and the time between the two reads
    const tick = Math.ceil(inst.ratePerHourMicros / 3600);

    const status = await ngsci(['status']);
    const listed = await api<{ instances: Inst[] }>('/instances');
    assert.equal(status.code, 0, status.stderr);
    assert.ok(
      status.stdout.endsWith('\n'),
      `status ends with a newline: ${JSON.stringify(status.stdout)}`,
    );
    const row = status.stdout.split('\n').find((l) => l.startsWith('default '));
    assert.ok(row, status.stdout);
    assert.ok(row.includes(formatRate(inst.ratePerHourMicros)), `the rate, unrounded: ${row}`);
    const billed = listed.instances[0]!.billedMicros;
    assert.ok(billed && billed > 0, 'the API gives what the instance cost so far');
    const cost = /\s(\$[\d,.]+|< \$0\.0001)\s/.exec(row.replace(/\$[\d.]+\/h/, ''))?.[1];
    assert.ok(cost && shows(cost, billed, tick * 10), `cost so far ${cost} ≈ API ${billed} µ$`);
    assert.notEqual(cost, '$0.00');

    const one = await ngsci(['status', 'default']);
    assert.equal(one.code, 0, one.stderr);
    assert.ok(one.stdout.endsWith('\n'));
    assert.match(one.stdout, /^rate:\s+\$0\.\d+\/h$/m);

    const budget = await ngsci(['budget']);
    const b = await api<{
      spentMicros: number;
      spentTodayMicros?: number;
      burnMicrosPerHour: number;
    }>('/budget');
    assert.equal(budget.code, 0, budget.stderr);
    assert.ok(budget.stdout.endsWith('\n'));
    const spent = /^spent this month:\s+(.+)$/m.exec(budget.stdout)?.[1];
    assert.ok(
      spent && shows(spent, b.spentMicros, tick * 10),
      `spent ${spent} ≈ API ${b.spentMicros}`,
    );
    assert.notEqual(spent, '$0.00');
    if (b.spentTodayMicros !== undefined) {
      const today = /^spent today:\s+(.+)$/m.exec(budget.stdout)?.[1];
      assert.ok(today && shows(today, b.spentTodayMicros, tick * 10), `today ${today}`);
    }
    assert.match(
      budget.stdout,
      new RegExp(`^burn rate:\\s+\\${formatRate(b.burnMicrosPerHour)}$`, 'm'),
    );

    const usage = await ngsci(['usage']);
    const u = await api<{ totalMicros: number }>('/usage');
    assert.equal(usage.code, 0, usage.stderr);
    assert.ok(usage.stdout.endsWith('\n'));
    const total = /: (\S+(?: \S+)?)(?: \(as of [\d:]+ UTC\))?\n/.exec(usage.stdout)?.[1];
    assert.ok(
      total && shows(total, u.totalMicros, tick * 10),
      `usage total ${total} ≈ ${u.totalMicros}`,
    );
    assert.match(usage.stdout, /^START\s+SIZE\s+HOURS\s+ACTIVE H\s+IDLE H\s+COST$/m);
    assert.match(usage.stdout, /cpu-small\s+(< )?0\.\d\d h/, 'hours columns show hours');
  });

  test('%ngsci budget and usage in a real kernel: the same figures; HTML without a raw dollar sign', async () => {
    const pid = stack.pidOf(inst.id);
    assert.ok(pid, 'the instance has a pid');
    const env = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const res = await runKernelDriver({
      env,
      cwd: env.HOME,
      cells: ['%ngsci budget', '%ngsci usage', '%ngsci status'],
    });
    assert.equal(res.status, 0, res.stderr);
    const [budget, usage, status] = res.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { text: string; html: string; stderr: string; error: string | null },
      );
    const b = await api<{ spentMicros: number; burnMicrosPerHour: number }>('/budget');
    const tick = Math.ceil(inst.ratePerHourMicros / 3600);
    assert.equal(budget!.error, null, budget!.stderr);
    const spent = /spent (\S+),/.exec(budget!.text)?.[1];
    assert.ok(
      spent && shows(spent, b.spentMicros, tick * 30),
      `%ngsci budget ${spent} ≈ API ${b.spentMicros}`,
    );
    assert.ok(budget!.text.includes(`burning ${formatRate(b.burnMicrosPerHour)}`), budget!.text);
    for (const cell of [budget!, usage!, status!]) {
      assert.equal(cell.error, null, cell.stderr);
      assert.ok(cell.html.length > 0, 'notebooks get HTML');
      assert.ok(
        !cell.html.includes('$'),
        `no raw $ for MathJax to pair: ${cell.html.slice(0, 200)}`,
      );
      assert.match(cell.html, /mathjax_ignore/);
      assert.match(cell.html, /&#36;/);
    }
    assert.match(usage!.text, /HOURS\s+ACTIVE H\s+IDLE H/);
  });

  test('a launch the budget refuses: the error with its code is all it prints, exit 1', async () => {
    const stopped = await stack.api('/instances/default/stop', token, { method: 'POST' });
    assert.equal(stopped.status, 202);
    await until(
      async () => ((await api<Inst>('/instances/default')).state === 'stopped' ? true : null),
      'the stop',
      60,
      stack,
    );
    const q = await stack.api('/admin/quotas', adminToken, {
      method: 'POST',
      body: JSON.stringify({
        subjectKind: 'user',
        subjectName: 'researcher',
        monthlyBudgetMicros: 1,
        hardStop: true,
      }),
    });
    assert.equal(q.status, 201, await q.clone().text());
    const refused = await ngsci(['launch', 'cpu-small']);
    assert.equal(refused.code, 1, 'the service refused: exit 1');
    assert.equal(refused.stdout, '', 'nothing else is printed');
    // (the amounts in the message are the service's words: metering/quotas.ts)
    assert.match(refused.stderr, /^ngsci: \[budget_exhausted\] .*budget of .+ is spent/);
    assert.equal(refused.stderr.split('\n').length, 2, `one line: ${refused.stderr}`);
  });
});
