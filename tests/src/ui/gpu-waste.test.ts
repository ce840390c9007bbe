/**
 * GPU money wasted (issue 15, part 3) on a real hub, in every surface. A researcher's gpu-a100
 * server runs on the local provisioner with simulated GPUs (NGSCI_LOCAL_SIMULATE_GPUS); the agent
 * the service starts beside it reads a recorded nvidia-smi (NGSCI_AGENT_NVIDIA_SMI, every
 * NGSCI_AGENT_GPU_INTERVAL seconds): idle, below the threshold, at it, busy, idle again, then
 * `[N/A]` (no reading: never idle) for good, so the figure stops moving and every surface can be
 * compared to the µ$. Then: the sidebar's Usage section in Chromium, GET /api/v1/usage, the JSON
 * and CSV statements, the admin panel's ranking and GET /admin/gpu-waste, `ngsci usage`,
 * `ngsci admin gpu-waste` and `%ngsci usage` in a kernel of the server all say the same, and the
 * µ$ are the idle seconds at the instance's own rate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  cumulativeMicros,
  formatGpuIdle,
  formatHours,
  formatIdleShare,
  formatMicros,
  type GpuIdle,
  type GpuWasteRanking,
} from '@ngsci/contract';
import { runKernelDriver } from '../kernel-driver.js';
import { ROOT, startPostgresStack, until, type PostgresStack, type Stack } from '../stack.js';
import { collectErrors, login, openLab, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  researcherInLab,
  screenshot,
  section,
  showOnly,
  type Inst,
} from './helpers.js';

// recorded `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total
// --format=csv,noheader,nounits` readings of one A100
const A100 = (util: string, usedMiB: number) =>
  `0, NVIDIA A100-SXM4-40GB, ${util}, ${usedMiB}, 40960\n`;
const IDLE = A100('0', 4);
const LOW = A100('3', 1210); // below 5 %: idle
const AT = A100('5', 1210); // at the threshold: busy
const BUSY = A100('87', 30112);
const NA = A100('[N/A]', 4); // no reading: unknown, never idle
const SEQUENCE = [
  ...Array<string>(6).fill(IDLE),
  LOW,
  LOW,
  AT,
  BUSY,
  BUSY,
  ...Array<string>(4).fill(IDLE),
  LOW,
  NA,
];
const IDLE_SAMPLES = SEQUENCE.filter((f) => f === IDLE || f === LOW).length;
const INTERVAL = 1;

/**
 * The recorded nvidia-smi: for an instance whose `play-<id>` file exists, one frame of the
 * sequence per call and the last (`[N/A]`) from then on; for any other, the recorded "no driver"
 * answer (exit 9), as on a machine without a GPU. The agent runs it with its own environment,
 * which names its instance (NGSCI_INSTANCE_ID).
 */
function recordedNvidiaSmi(dir: string): string {
  SEQUENCE.forEach((f, i) =>
    writeFileSync(join(dir, `frame-${String(i + 1).padStart(3, '0')}`), f),
  );
  const script = join(dir, 'nvidia-smi');
  const noDriver = join(ROOT, 'cli', 'testdata', 'nvidia-smi-no-driver.txt');
  writeFileSync(
    script,
    `#!/bin/sh
d='${dir}'
id="$NGSCI_INSTANCE_ID"
if [ ! -e "$d/play-$id" ]; then cat '${noDriver}'; exit 9; fi
n=$(cat "$d/count-$id" 2>/dev/null || echo 1)
if [ "$n" -gt ${SEQUENCE.length} ]; then n=${SEQUENCE.length}; fi
cat "$d/frame-$(printf %03d "$n")"
echo $((n + 1)) > "$d/count-$id"
`,
  );
  chmodSync(script, 0o755);
  return script;
}

/** `.venv/bin/ngsci` as a terminal of the hub runs it. */
function ngsci(
  stack: Stack,
  token: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(ROOT, '.venv', 'bin', 'ngsci'), args, {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: tmpdir(),
        NGSCI_API_URL: `${stack.url}/services/ngsci/api/v1`,
        JUPYTERHUB_API_TOKEN: token,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The environment and home of a running local instance, read from its process. */
function serverEnv(stack: Stack, instanceId: string): { env: Record<string, string>; cwd: string } {
  const pid = stack.pidOf(instanceId);
  assert.ok(pid, 'the instance has a pid');
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return { env, cwd: env.HOME! };
}

/** RFC 4180 cells of one CSV line (the statement quotes cells with commas or quotes). */
function csvCells(line: string): string[] {
  const out: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted && c === '"' && line[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      out.push(cell);
      cell = '';
    } else cell += c;
  }
  return [...out, cell];
}

describe('GPU money wasted on a real hub', () => {
  let pg: PostgresStack;
  let stack: Stack;
  let work: string;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let token: string;
  let inst: Inst;
  let figure: GpuIdle;
  let month: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ngsci-gpu-waste-'));
    pg = await startPostgresStack({
      NGSCI_LOCAL_SIMULATE_GPUS: 'true',
      NGSCI_AGENT_NVIDIA_SMI: recordedNvidiaSmi(work),
      NGSCI_AGENT_GPU_INTERVAL: String(INTERVAL),
    });
    stack = pg.stack;
    token = await stack.userToken('researcher');
    ({ browser, page, errors } = await researcherInLab(stack, token, { size: 'gpu-a100' }));
    inst = (await (await stack.api('/instances/default', token)).json()) as Inst;
    assert.equal(inst.size, 'gpu-a100');
  });

  after(async () => {
    await browser?.close();
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the recorded sequence becomes idle seconds priced at the instance rate, then stops moving', async (t) => {
    // the machine is running (billed) before its agent's readings start to play
    writeFileSync(join(work, `play-${inst.id}`), '');
    // the sequence has played once the agent reported [N/A]; the figure is final once the meter
    // has written past that reading (later [N/A] readings add nothing)
    const naAt = await until(
      async () => {
        const rows = await pg.sql<{ at: Date }[]>`
          select at from gpu_samples
          where instance_id = ${inst.id} and gpus -> 0 ->> 'utilizationPercent' is null
            and jsonb_array_length(gpus) = 1
          order by at limit 1`;
        return rows[0]?.at;
      },
      'the [N/A] reading at the end of the recorded sequence',
      Math.max(60, (SEQUENCE.length + 10) * INTERVAL * 2),
      stack,
    );
    await until(
      async () => {
        const rows = await pg.sql<{ end: Date | null }[]>`
          select max(ended_at) as end from gpu_idle_intervals where meter_key = ${inst.id}`;
        return rows[0]?.end && rows[0].end.getTime() >= naAt.getTime() ? true : null;
      },
      "the meter's idle rows past the [N/A] reading",
      60,
      stack,
    );
    const usage = (await (await stack.api('/usage', token)).json()) as {
      gpuIdle: GpuIdle;
      from: string;
    };
    figure = usage.gpuIdle;
    month = usage.from.slice(0, 7);
    // each idle reading stands for the seconds since the one before it (≥ 1 s each, at most
    // the 90 s span); the busy and at-threshold readings were sampled but not idle
    assert.equal(figure.thresholdPercent, 5);
    assert.ok(figure.idleSeconds >= IDLE_SAMPLES, `idle ${figure.idleSeconds} s`);
    assert.ok(figure.idleSeconds <= IDLE_SAMPLES * 90, `idle ${figure.idleSeconds} s`);
    assert.ok(figure.sampledSeconds > figure.idleSeconds, 'busy readings are sampled, not idle');
    // the µ$: the idle seconds at the instance's own rate (list rate × the plan's multiplier),
    // with the ledger's rounding (one instance: the cumulative rounding telescopes)
    const [row] = await pg.sql<{ rate: string }[]>`
      select list_rate_per_hour_micros as rate from instances where id = ${inst.id}`;
    const me = (await (await stack.api('/me', token)).json()) as {
      plan: { multiplierPpm: number };
    };
    assert.equal(
      figure.idleMicros,
      cumulativeMicros(Number(row!.rate), figure.idleSeconds, me.plan.multiplierPpm, 3600),
    );
    assert.ok(figure.idleMicros > 0);
    t.diagnostic(
      `${formatGpuIdle(figure)}: ${figure.idleSeconds} of ${figure.sampledSeconds} sampled s, ` +
        `${figure.idleMicros} µ$ at ${row!.rate} µ$/h`,
    );
    // and it no longer moves: the agent keeps reporting [N/A]
    await new Promise((r) => setTimeout(r, (INTERVAL * 2 + 6) * 1000));
    const later = (await (await stack.api('/usage', token)).json()) as { gpuIdle: GpuIdle };
    assert.deepEqual(later.gpuIdle, figure);
  });

  test("the sidebar's Usage section shows the figure the API and the statements carry, to the µ$", async () => {
    assert.ok(figure, 'the first test found the figure');
    // a fresh page: the section asks for the figure when it is shown
    await page.reload();
    await waitForLab(page);
    await dismissNews(page);
    await openSidebar(page);
    await showOnly(page, 'Usage');
    const line = section(page, 'Usage').locator('.jp-ngsci-gpu-idle');
    await line.waitFor();
    const expected = `${formatGpuIdle(figure)} this month`;
    assert.equal(await line.textContent(), expected);
    assert.match(
      (await line.getAttribute('title')) ?? '',
      new RegExp(`every GPU was below 5% utilisation \\(${formatIdleShare(figure)} of the `),
    );
    // the A100 the agent read, on the same section
    await section(page, 'Usage').getByText('GPU 0 (NVIDIA A100-SXM4-40GB)').waitFor();
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-usage-gpu-idle-light');

    const json = (await (await stack.api(`/billing/statements/${month}`, token)).json()) as {
      gpuIdle: GpuIdle;
    };
    assert.deepEqual(json.gpuIdle, figure);
    const csv = await stack.api(`/billing/statements/${month}?format=csv`, token);
    assert.equal(csv.status, 200);
    const [head, ...rows] = (await csv.text())
      .trim()
      .split('\r\n')
      .map((l) => csvCells(l));
    const total = Object.fromEntries(head!.map((k, i) => [k, rows.at(-1)![i]!]));
    assert.equal(total.kind, 'total');
    assert.deepEqual(
      [total.gpu_idle_seconds, total.gpu_sampled_seconds, total.gpu_idle_micros].map(Number),
      [figure.idleSeconds, figure.sampledSeconds, figure.idleMicros],
    );
    assert.equal(Number(total.gpu_idle_usd) * 1e6, figure.idleMicros);
    assert.deepEqual(errors, []);
  });

  test('`ngsci usage` and `%ngsci usage` in a kernel of the server print the same line', async () => {
    assert.ok(figure, 'the first test found the figure');
    const line = `${formatGpuIdle(figure)} (every GPU below 5%)`;
    const cli = await ngsci(stack, token, ['usage']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(
      cli.stdout.split('\n').filter((l) => l.startsWith('idle GPU')),
      [line],
    );
    const run = await runKernelDriver({ ...serverEnv(stack, inst.id), cells: ['%ngsci usage'] });
    assert.equal(run.status, 0, `the kernel driver failed:\n${run.stderr}`);
    const [out] = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; html: string; error: string | null });
    assert.equal(out!.error, null);
    assert.deepEqual(
      out!.text.split('\n').filter((l) => l.includes('idle GPU')),
      [line],
    );
  });

  test("the admin panel's ranking shows the researcher with the same hours, share and dollars", async () => {
    assert.ok(figure, 'the first test found the figure');
    const adminToken = await stack.userToken('admin');
    const ranked = (await (
      await stack.api(`/admin/gpu-waste?month=${month}`, adminToken)
    ).json()) as GpuWasteRanking;
    const entry = ranked.users.find((u) => u.name === 'researcher');
    assert.deepEqual(entry, {
      name: 'researcher',
      idleSeconds: figure.idleSeconds,
      sampledSeconds: figure.sampledSeconds,
      idleMicros: figure.idleMicros,
    });
    assert.equal(ranked.totalIdleMicros, figure.idleMicros, 'no one else wasted any');
    const cells = [
      'researcher',
      formatHours(figure.idleSeconds),
      formatIdleShare(figure),
      formatMicros(figure.idleMicros),
    ];
    const cli = await ngsci(stack, adminToken, ['admin', 'gpu-waste']);
    assert.equal(cli.code, 0, cli.stderr);
    const row = cli.stdout.split('\n').find((l) => l.startsWith('researcher'));
    assert.deepEqual(row?.split(/\s{2,}/), cells);

    // the admin's own machine: its agent reads "no driver", a CPU machine
    await launchAndWait(stack, adminToken, 'cpu-small');
    const admin = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const adminPage = await login(admin, stack.url, 'admin', stack.passwords.admin!);
    // before the admin signs in, the panel's GET /session answers 401 login_required
    const adminErrors = collectErrors(adminPage, [
      /Failed to load resource: the server responded with a status of 401/,
    ]);
    await openLab(adminPage, stack.url, 'admin');
    await dismissNews(adminPage);
    await openSidebar(adminPage);
    await adminPage.getByRole('button', { name: 'Admin panel' }).click();
    const panel = adminPage.locator('.jp-ngsci-admin');
    const popup = adminPage.waitForEvent('popup');
    await panel.getByRole('button', { name: 'Sign in as admin' }).click();
    await (await popup).waitForEvent('close', { timeout: 30_000 });
    const part = panel.locator('.jp-ngsci-admin-part[aria-label="GPU money wasted"]');
    const table = part.getByRole('table', { name: 'GPU money wasted by user' });
    await table.waitFor();
    const researcher = table.getByRole('row').filter({ hasText: 'researcher' });
    assert.deepEqual(
      (await researcher.getByRole('cell').allTextContents()).map((c) => c.trim()),
      cells,
    );
    await part
      .getByText(
        `${month}: billed GPU time with every GPU below 5% utilisation, ${formatMicros(figure.idleMicros)} in all.`,
      )
      .waitFor();
    await part.scrollIntoViewIfNeeded();
    await screenshot(part, 'admin-gpu-waste-light');
    assert.deepEqual(adminErrors, []);
    await admin.close();
  });
});
