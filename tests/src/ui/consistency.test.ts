/**
 * One figure per quantity, the same on every surface at the same instant (issue 13). A user on a
 * plan with a multiplier (×0.5) runs a size with a price override, on a stack on Postgres. At one
 * instant the test reads every surface of JupyterLab in Chromium — status bar, Instance section,
 * Usage section (total and table), Billing section (this month, budget bar, statements), admin
 * panel (users table, running instances) — plus `ngsci budget` and `ngsci usage` (and, on the
 * resized machine, `%ngsci budget` in a real kernel, each at the asOf it prints), and the API
 * (/budget, /instances, /usage, /billing/statements, /admin/users, /admin/instances, a month's
 * statement detail). Each figure must equal the ledger recomputed from its rows by this file's own
 * arithmetic (no service code): rows written so far, plus each open stream priced from its last
 * row to the instant read, within the surface's displayed precision and the rate's tick.
 *
 * A tick: the page updates its figures once a second, on the service's clock taken from the
 * answers' asOf (so behind by the answer's travel time): a displayed figure may lag the instant
 * read by up to two seconds of the running rate. The API and the CLI are compared at their asOf.
 *
 * While running the test also checks that every figure moves between two refreshes (the budget
 * bar and the admin panel's cost and spent moved only on a refresh before). A group budget's
 * figure and a month's statement detail are checked in hub-service/src/metering/live-gaps.test.ts.
 *
 * Cases: while running; after a resize (the Usage table must list both sizes, as the chart does —
 * the bug seen in the walk); after a stop. The month boundary is covered by the service test
 * hub-service/src/metering/figures.test.ts (clock injected); this test runs on the real clock, so
 * everything it bills falls on one UTC day, and today, this month, the last 30 days, the budget
 * and the running month's statement are the same amount.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import type { Browser, Locator, Page } from 'playwright-core';
import { ROOT, startStack, until, type Stack } from '../stack.js';
import { checkLedger } from '../ledger-check.js';
import { collectErrors, launchBrowser, login, openLab, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  runFromPalette,
  section,
  showOnly,
  trackApiCalls,
  type Inst,
} from './helpers.js';

const USER = 'admin';
/** the plan's multiplier and the price override (µ$ per hour, list) the test sets */
const PPM = 500_000;
// $20/h: at half price $10/h, 2,778 µ$ a second, so a figure that stops ticking is off within
// seconds by more than its displayed precision
const SMALL_RATE = 20_000_000;
/** the stack's home volume: NGSCI_HOME_GB × NGSCI_HOME_GB_MONTH_MICROS (set below) */
const HOME_RATE = 10 * 80_000;
const HOUR = 3600;
const STORAGE_MONTH = 730 * 3600;

// ---- the ledger recomputed from its rows (this file's own arithmetic)

function cumulative(rate: number, seconds: number, ppm: number, period: number): number {
  if (seconds <= 0) return 0;
  const den = BigInt(period) * 1_000_000n;
  return Number((2n * BigInt(rate) * BigInt(seconds) * BigInt(ppm) + den) / (2n * den));
}

interface Truth {
  /** every figure of the user at `at` (all of it falls on one UTC day) */
  total: number;
  byInstance: Map<string, number>;
  bySize: Map<string, { seconds: number; micros: number }>;
  /** µ$ per second the user's open streams add now */
  tick: number;
}

async function truthAt(sql: postgres.Sql, at: number): Promise<Truth> {
  const insts = await sql<
    {
      id: string;
      size_id: string;
      state: string;
      ready_at: Date | null;
      stopped_at: Date | null;
      created_at: Date;
      rate: string;
    }[]
  >`select id::text, size_id, state, ready_at, stopped_at, created_at,
      list_rate_per_hour_micros as rate from instances where user_name = ${USER}`;
  const rows = await sql<
    {
      meter_key: string;
      kind: string;
      size_id: string | null;
      billed_from: string;
      billed_to: string;
      ended_at: Date;
      amount_micros: string;
      final: boolean;
    }[]
  >`select meter_key, kind, size_id, billed_from, billed_to, ended_at, amount_micros, final
      from usage_intervals where user_name = ${USER} order by started_at`;
  const bySize = new Map<string, { seconds: number; micros: number }>();
  const add = (size: string, seconds: number, micros: number) => {
    const r = bySize.get(size) ?? { seconds: 0, micros: 0 };
    r.seconds += seconds;
    r.micros += micros;
    bySize.set(size, r);
  };
  const byInstance = new Map<string, number>();
  let tick = 0;
  for (const i of insts) {
    if (!i.ready_at) continue;
    const own = rows.filter((r) => r.meter_key === i.id);
    let micros = own.reduce((a, r) => a + Number(r.amount_micros), 0);
    let seconds = own.reduce((a, r) => a + Number(r.billed_to) - Number(r.billed_from), 0);
    const billedTo = own.length ? Number(own.at(-1)!.billed_to) : 0;
    if (!own.at(-1)?.final) {
      const ended = i.state === 'stopped' || i.state === 'failed';
      const until = ended && i.stopped_at ? i.stopped_at.getTime() : at;
      let s = Math.max(0, Math.floor((until - i.ready_at.getTime()) / 1000));
      if (ended) s = Math.max(s, 60);
      else tick += (Number(i.rate) * PPM) / 1e6 / HOUR;
      micros +=
        cumulative(Number(i.rate), s, PPM, HOUR) - cumulative(Number(i.rate), billedTo, PPM, HOUR);
      seconds += Math.max(0, s - billedTo);
    }
    byInstance.set(i.id, micros);
    add(i.size_id, seconds, micros);
  }
  // the home volume: billed from the user's first instance on, at its rate per storage month
  const first = Math.min(...insts.map((i) => i.created_at.getTime()));
  if (Number.isFinite(first)) {
    const home = rows.filter((r) => r.kind === 'storage');
    const written = home.reduce((a, r) => a + Number(r.amount_micros), 0);
    const billedTo = home.length ? Number(home.at(-1)!.billed_to) : 0;
    const s = Math.max(0, Math.floor((at - first) / 1000));
    const micros =
      written +
      cumulative(HOME_RATE, s, PPM, STORAGE_MONTH) -
      cumulative(HOME_RATE, billedTo, PPM, STORAGE_MONTH);
    if (micros) add('home-volume', 0, micros);
    tick += (HOME_RATE * PPM) / 1e6 / STORAGE_MONTH;
  }
  const total = [...bySize.values()].reduce((a, r) => a + r.micros, 0);
  return { total, byInstance, bySize, tick: Math.ceil(tick) };
}

// ---- what a surface displays, as an amount and its precision

interface Shown {
  micros: number;
  /** half of the last displayed digit (or half the "< $x" bound) */
  half: number;
  text: string;
}

function money(text: string | null | undefined): Shown {
  const m = /(<\s*)?\$([\d,]+)(?:\.(\d+))?/.exec(text ?? '');
  assert.ok(m, `no amount in ${JSON.stringify(text)}`);
  const decimals = m[3]?.length ?? 0;
  const value = Number(`${m[2]!.replace(/,/g, '')}.${m[3] ?? '0'}`);
  const micros = Math.round(value * 1e6);
  if (m[1]) return { micros: micros / 2, half: micros / 2, text: text! };
  return { micros, half: 10 ** (6 - decimals) / 2, text: text! };
}

/** "0.02 h" → seconds and half the last digit */
function hours(text: string): { seconds: number; half: number } {
  const m = /(<\s*)?([\d,]+)(?:\.(\d+))?\s*h/.exec(text);
  assert.ok(m, `no hours in ${JSON.stringify(text)}`);
  const v = Number(`${m[2]!.replace(/,/g, '')}.${m[3] ?? '0'}`) * 3600;
  const half = (3600 * 10 ** -(m[3]?.length ?? 0)) / 2;
  return m[1] ? { seconds: v / 2, half: v / 2 } : { seconds: v, half };
}

function near(what: string, shown: Shown, expected: number, tick: number, ticks = 2): void {
  const slack = shown.half + ticks * tick + 2;
  assert.ok(
    Math.abs(shown.micros - expected) <= slack,
    `${what}: shows ${JSON.stringify(shown.text)} (${shown.micros} µ$), the ledger says ${expected} µ$ (±${slack})`,
  );
}

/** Every figure the page shows, read in one go (one evaluate: within the same second). */
interface PageFigures {
  at: number;
  status: string;
  cost: string;
  usageTotal: string;
  usageRows: string[][];
  month: string;
  budget: string;
  statements: string[][];
  adminSpent: string;
  adminCosts: Record<string, string>;
}

/** the figures every case reads; each must be on the page before a case reads them */
const FIGURES = [
  '.jp-ngsci-status',
  '.jp-ngsci-usage-total',
  '.jp-ngsci-mtd',
  '.jp-ngsci-budget-label',
  'table[aria-label="Statements"] tbody td:nth-child(3)',
  `.jp-ngsci-admin-spent[data-user="${USER}"]`,
];

const READ = `(() => {
  const t = (sel) => document.querySelector(sel)?.textContent ?? '';
  const rows = (sel) => [...document.querySelectorAll(sel + ' tbody tr')].map((r) =>
    [...r.querySelectorAll('td')].map((c) => c.textContent ?? ''));
  const costs = {};
  for (const c of document.querySelectorAll('.jp-ngsci-admin-cost')) costs[c.dataset.instance] = c.textContent;
  return {
    at: Date.now(),
    status: t('.jp-ngsci-status'),
    cost: t('[data-testid="ngsci-cost"]'),
    usageTotal: t('.jp-ngsci-usage-total'),
    usageRows: rows('table[aria-label="Usage by size"]'),
    month: t('.jp-ngsci-mtd'),
    budget: t('.jp-ngsci-budget-label'),
    statements: rows('table[aria-label="Statements"]'),
    adminSpent: t('.jp-ngsci-admin-spent[data-user="${USER}"]'),
    adminCosts: costs,
  };
})()`;

describe('every surface shows the same money at the same instant', () => {
  let stack: Stack;
  let sql: postgres.Sql;
  let browser: Browser;
  let page: Page;
  let token: string;
  let errors: string[];
  let first: Inst;

  const api = async <T>(path: string): Promise<T> => {
    const res = await stack.api(path, token);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return (await res.json()) as T;
  };
  const ngsci = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(join(ROOT, '.venv', 'bin', 'ngsci'), args, {
        env: {
          PATH: process.env.PATH ?? '',
          NGSCI_API_URL: `${stack.url}/services/ngsci/api/v1`,
          JUPYTERHUB_API_TOKEN: token,
        },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`${code}: ${err}`)),
      );
    });

  /** `%ngsci` cells in a real kernel with a running instance's environment (magic.test.ts). */
  const magic = (
    instanceId: string,
    cells: string[],
  ): Promise<Array<{ text: string; error: string | null }>> =>
    new Promise((resolve, reject) => {
      const pid = stack.pidOf(instanceId);
      if (!pid) return reject(new Error(`no pid for ${instanceId}`));
      const env = Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      const child = spawn(join(ROOT, '.venv', 'bin', 'python'), [
        join(ROOT, 'tests', 'src', 'magic-kernel.py'),
      ]);
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) =>
        code === 0
          ? resolve(
              out
                .trim()
                .split('\n')
                .map((l) => JSON.parse(l) as { text: string; error: string | null }),
            )
          : reject(new Error(`the kernel driver: ${code} ${err}`)),
      );
      child.stdin.end(JSON.stringify({ env, cwd: env.HOME, cells }));
    });

  /** Every section of the sidebar open (each ticks only while shown), and the admin panel. */
  async function showEverything(): Promise<void> {
    await dismissNews(page);
    await openSidebar(page);
    for (const name of ['Instance', 'Usage', 'Billing']) {
      const title = page.locator('#ngsci-sidebar .lm-AccordionPanel-title', { hasText: name });
      if ((await title.getAttribute('aria-expanded')) !== 'true') await title.click();
    }
    const panel = page.locator('.jp-ngsci-admin');
    if (!(await panel.isVisible())) await page.getByRole('button', { name: 'Admin panel' }).click();
    const signIn = panel.getByRole('button', { name: 'Sign in as admin' });
    const running = panel.getByRole('table', { name: 'Running instances' });
    await Promise.race([signIn.waitFor(), running.waitFor()]);
    if (await signIn.isVisible()) {
      const popup = page.waitForEvent('popup');
      await signIn.click();
      await (await popup).waitForEvent('close', { timeout: 30_000 });
    }
    await panel.getByRole('table', { name: 'Users' }).waitFor({ timeout: 30_000 });
    // every part has its answer (a part still loading shows no amount)
    await page.waitForFunction(
      `[...${JSON.stringify(FIGURES)}].every((sel) => /\\$/.test(document.querySelector(sel)?.textContent ?? ''))`,
      undefined,
      { timeout: 30_000 },
    );
  }

  /** The page's figures, the CLI's and the API's, all at (nearly) one instant. */
  async function readAll() {
    const [shown, budgetText, usageText, budget, instances, usage, statements, adminUsers] =
      await Promise.all([
        page.evaluate(READ) as Promise<PageFigures>,
        ngsci(['budget']),
        ngsci(['usage']),
        api<{
          asOf: string;
          spentMicros: number;
          spentTodayMicros: number;
          budgets: { spentMicros: number }[];
        }>('/budget'),
        api<{ asOf: string; instances: { id: string; billedMicros: number }[] }>('/instances'),
        api<{
          asOf: string;
          totalMicros: number;
          series: { size: string; seconds: number; amountMicros: number }[];
        }>(`/usage?from=${new Date(Date.now() - 86_400_000).toISOString()}&granularity=day`),
        api<{ asOf: string; statements: { month: string; totalMicros: number }[] }>(
          '/billing/statements',
        ),
        api<{ asOf: string; users: { name: string; spentMicros: number }[] }>('/admin/users'),
      ]);
    return { shown, budgetText, usageText, budget, instances, usage, statements, adminUsers };
  }

  /** Compares every surface with the ledger; returns the page's usage table by size. */
  async function compareAll(label: string): Promise<Map<string, string[]>> {
    // a refresh of every part first, so no surface shows an answer from before the change
    const r = await readAll();
    const { shown } = r;
    const truth = await truthAt(sql, shown.at);
    const tick = Math.max(1, truth.tick);
    const say = (what: string) => `${label}: ${what}`;

    // the page, at the instant it was read
    near(say('status bar (today)'), money(shown.status.split(' today')[0]), truth.total, tick);
    near(say('Usage: last 30 days'), money(shown.usageTotal), truth.total, tick);
    near(say('Billing: this month'), money(shown.month), truth.total, tick);
    near(say('Billing: budget bar'), money(shown.budget.split(' of ')[0]), truth.total, tick);
    const month = new Date(shown.at).toISOString().slice(0, 7);
    assert.ok(shown.statements.length >= 1, say('a statement for this month'));
    near(say('Billing: statement total'), money(shown.statements[0]![2]), truth.total, tick);
    near(say('admin panel: Users, Spent'), money(shown.adminSpent), truth.total, tick);
    const current = (await api<Inst>('/instances/default')) as Inst;
    const billed = truth.byInstance.get(current.id) ?? 0;
    // a stopped instance stays in the Instance section with its final cost
    if (current.state === 'running' || current.state === 'stopped')
      near(say('Instance: cost so far'), money(shown.cost), billed, tick);
    if (current.state === 'running') {
      near(
        say('admin panel: Running instances, Cost'),
        money(shown.adminCosts[current.id]),
        billed,
        tick,
      );
    }
    const table = new Map(shown.usageRows.map((row) => [row[0]!, row]));
    for (const [size, t] of truth.bySize) {
      const row = table.get(size);
      assert.ok(
        row,
        say(`the Usage table lists ${size} (it lists ${[...table.keys()].join(', ')})`),
      );
      near(say(`Usage table: ${size} cost`), money(row[2]), t.micros, tick);
      const h = hours(row[1]!);
      assert.ok(
        Math.abs(h.seconds - t.seconds) <= h.half + 3,
        say(`Usage table: ${size} hours ${row[1]} vs ${t.seconds} s`),
      );
    }

    // the API, each answer at its own asOf, to the µ$ (ticks only for rows written in between)
    const at = async (asOf: string) => truthAt(sql, Date.parse(asOf));
    const exact = (what: string, got: number, want: number) =>
      assert.ok(
        Math.abs(got - want) <= 2,
        say(`${what}: the API says ${got} µ$, the ledger ${want}`),
      );
    const tb = await at(r.budget.asOf);
    exact('GET /budget spentMicros', r.budget.spentMicros, tb.total);
    exact('GET /budget spentTodayMicros', r.budget.spentTodayMicros, tb.total);
    for (const b of r.budget.budgets)
      exact('GET /budget budgets[].spentMicros', b.spentMicros, tb.total);
    const ti = await at(r.instances.asOf);
    for (const i of r.instances.instances)
      exact(`GET /instances ${i.id} billedMicros`, i.billedMicros, ti.byInstance.get(i.id) ?? 0);
    const tu = await at(r.usage.asOf);
    exact('GET /usage totalMicros', r.usage.totalMicros, tu.total);
    for (const [size, t] of tu.bySize) {
      const pts = r.usage.series.filter((p) => p.size === size);
      exact(
        `GET /usage ${size}`,
        pts.reduce((a, p) => a + p.amountMicros, 0),
        t.micros,
      );
    }
    const ts = await at(r.statements.asOf);
    const running = r.statements.statements.find((s) => s.month === month);
    exact('GET /billing/statements (this month)', running?.totalMicros ?? -1, ts.total);
    const ta = await at(r.adminUsers.asOf);
    exact(
      'GET /admin/users spentMicros',
      r.adminUsers.users.find((u) => u.name === USER)?.spentMicros ?? -1,
      ta.total,
    );
    const detail = await api<{
      asOf: string;
      totalMicros: number;
      lines: { amountMicros: number }[];
    }>(`/billing/statements/${month}`);
    const td = await at(detail.asOf);
    exact('GET /billing/statements/{month} totalMicros', detail.totalMicros, td.total);
    exact(
      'the statement detail lines',
      detail.lines.reduce((a, l) => a + l.amountMicros, 0),
      td.total,
    );
    const adminInstances = await api<{
      asOf: string;
      instances: { id: string; billedMicros?: number }[];
    }>('/admin/instances');
    const tai = await at(adminInstances.asOf);
    for (const i of adminInstances.instances.filter((x) => tai.byInstance.has(x.id)))
      exact(
        `GET /admin/instances ${i.id} billedMicros`,
        i.billedMicros ?? -1,
        tai.byInstance.get(i.id)!,
      );

    // the CLI: its figures are the service's at the asOf it prints (HH:MM:SS, so ±1 s)
    const cliAt = (text: string) => {
      const hms = /\(as of (\d\d:\d\d:\d\d) UTC\)/.exec(text);
      assert.ok(hms, say(`the CLI says when its figures are from: ${text}`));
      return Date.parse(`${new Date(shown.at).toISOString().slice(0, 10)}T${hms[1]}Z`);
    };
    const tcb = await truthAt(sql, cliAt(r.budgetText) + 500);
    const line = (text: string, name: string) =>
      text.split('\n').find((l) => l.trim().startsWith(name)) ?? '';
    near(
      say('ngsci budget: spent this month'),
      money(line(r.budgetText, 'spent this month')),
      tcb.total,
      tick,
      1,
    );
    near(
      say('ngsci budget: spent today'),
      money(line(r.budgetText, 'spent today')),
      tcb.total,
      tick,
      1,
    );
    const tcu = await truthAt(sql, cliAt(r.usageText) + 500);
    near(say('ngsci usage: total'), money(r.usageText.split('\n')[0]), tcu.total, tick, 1);
    return table;
  }

  before(async () => {
    stack = await startStack({
      database: 'postgres',
      env: { NGSCI_HOME_GB: '10', NGSCI_HOME_GB_MONTH_MICROS: '80000' },
    });
    sql = postgres(stack.databaseUrl!, { max: 2, onnotice: () => {} });
    token = await stack.userToken(USER);
    const post = async (path: string, body: unknown, method = 'POST') => {
      const res = await stack.api(path, token, { method, body: JSON.stringify(body) });
      assert.ok(res.ok, `${path}: ${res.status} ${await res.text()}`);
    };
    // a plan with a multiplier, a price override, and a budget: before the first start
    await post('/admin/plans', { id: 'half', label: 'Half price', multiplierPpm: PPM });
    await post(
      '/admin/plan-assignments',
      {
        subjectKind: 'user',
        subjectName: USER,
        planId: 'half',
      },
      'PUT',
    );
    await post(
      '/admin/prices',
      {
        size: 'cpu-small',
        cloud: 'local',
        onDemandMicrosPerHour: SMALL_RATE,
      },
      'PUT',
    );
    await post('/admin/quotas', {
      subjectKind: 'user',
      subjectName: USER,
      monthlyBudgetMicros: 5_000_000,
    });
    browser = await launchBrowser();
    first = await launchAndWait(stack, token, 'cpu-small');
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    page = await login(context, stack.url, USER, stack.passwords[USER]!);
    errors = collectErrors(page, [
      /Failed to load resource: the server responded with a status of 401/,
    ]);
    await openLab(page, stack.url, USER);
    await showEverything();
  });

  after(async () => {
    await browser?.close();
    await sql?.end();
    await stack?.stop();
  });

  test('while running, with a plan multiplier and a price override', async () => {
    const inst = await api<Inst & { ratePerHourMicros: number }>('/instances/default');
    assert.equal(inst.id, first.id);
    assert.equal(inst.ratePerHourMicros, SMALL_RATE, 'the price override is the list rate');
    // past the 60 s minimum's hint and with some meter rows written
    await until(async () => (await truthAt(sql, Date.now())).total > 0, 'some usage', 30);
    // every figure moves with the running part, between refreshes (the budget bar, the admin
    // panel's cost and spent only moved on a refresh before)
    const moving = [...FIGURES, '[data-testid="ngsci-cost"]', '.jp-ngsci-admin-cost'];
    const texts = `${JSON.stringify(moving)}.map((sel) => document.querySelector(sel)?.textContent ?? '')`;
    const before = (await page.evaluate(texts)) as string[];
    await page.waitForTimeout(3000);
    const later = (await page.evaluate(texts)) as string[];
    const still = moving.filter((_, i) => before[i] === later[i]);
    assert.deepEqual(
      still,
      [],
      `these did not move in 3 s: ${still.map((x) => `${x} ${later[moving.indexOf(x)]}`).join('; ')}`,
    );
    await compareAll('running');
    const check = await checkLedger(sql, { requireClosed: false });
    assert.deepEqual(check.problems, []);
    assert.deepEqual(errors, []);
  });

  test('after a resize: the Usage table lists both sizes, as the chart does', async () => {
    const res = await stack.api('/instances/default/resize', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-large' }),
    });
    assert.equal(res.status, 202, await res.text());
    await until(
      async () => {
        const i = await api<Inst>('/instances/default');
        return i.id !== first.id && i.state === 'running' ? i : null;
      },
      'the new size to run',
      120,
      stack,
    );
    // the old page's server is gone: JupyterLab again, on the new machine
    await page.goto(`${stack.url}/user/${USER}/lab`);
    await waitForLab(page, 120_000);
    await showEverything();
    const table = await compareAll('after a resize');
    assert.ok(table.has('cpu-small'), 'the stopped size stays in the Usage table');
    assert.ok(table.has('cpu-large'), 'the running size is in the Usage table');
    const chart = await page
      .locator('.jp-ngsci-chart .u-legend .u-series .u-label')
      .allTextContents();
    for (const size of table.keys())
      assert.ok(chart.includes(size), `the chart has ${size}: ${chart.join(', ')}`);
    // the resized-away instance's final row is the meter's, at its next cycle (the figures above
    // already counted it to its close); then the rows recomputed one by one hold no problem
    let check = await checkLedger(sql, { instanceIds: [first.id] });
    for (let i = 0; i < 60 && check.problems.length; i++) {
      await new Promise((r) => setTimeout(r, 500));
      check = await checkLedger(sql, { instanceIds: [first.id] });
    }
    assert.deepEqual(check.problems, []);
    // and where the eye sees them: in a 1400 × 900 window with the Usage section open, every row
    // of the table is inside the section's visible area (not below its fold)
    await page.setViewportSize({ width: 1400, height: 900 });
    await showOnly(page, 'Usage');
    const usage = section(page, 'Usage');
    const box = (await usage.boundingBox())!;
    for (const size of table.keys()) {
      const row = usage
        .getByRole('table', { name: 'Usage by size' })
        .getByRole('row')
        .filter({
          has: page.getByRole('cell', { name: size, exact: true }),
        });
      const r = (await row.boundingBox())!;
      assert.ok(
        r.y >= box.y && r.y + r.height <= box.y + box.height,
        `the ${size} row is at y ${Math.round(r.y)}–${Math.round(r.y + r.height)}, the Usage section shows ${Math.round(box.y)}–${Math.round(box.y + box.height)}`,
      );
    }
    await page.setViewportSize({ width: 1400, height: 1000 });

    // %ngsci budget in a kernel on the new machine: the same figure at the asOf it prints
    const now = await api<Inst>('/instances/default');
    const [cell] = await magic(now.id, ['%ngsci budget']);
    assert.equal(cell?.error, null);
    const title = cell!.text.split('\n').find((l) => /spent/.test(l)) ?? '';
    const hms = /\(as of (\d\d:\d\d:\d\d) UTC\)/.exec(title);
    assert.ok(hms, `%ngsci budget says when: ${title}`);
    const at = Date.parse(`${new Date().toISOString().slice(0, 10)}T${hms[1]}Z`) + 500;
    const truth = await truthAt(sql, at);
    const tick = Math.max(1, truth.tick);
    near('%ngsci budget: spent', money(/spent ([^,]+)/.exec(title)?.[1]), truth.total, tick, 1);
    near('%ngsci budget: today', money(/today ([^,]+)/.exec(title)?.[1]), truth.total, tick, 1);
  });

  test('after a stop: every surface shows the final figures, at once and re-opened', async (t) => {
    // every part in sight before the stop: what follows must come from the page's own refresh
    await showEverything();
    const calls = trackApiCalls(page, stack.url);
    const stopAt = Date.now();
    const res = await stack.api('/instances/default/stop', token, { method: 'POST' });
    assert.ok(res.ok, await res.text());
    await until(
      async () => (await api<Inst>('/instances/default')).state === 'stopped',
      'the stop',
      60,
      stack,
    );
    // the page's server is gone, stopped through ngsci: JupyterHub's modal "restart it?" is
    // not asked (the sidebar says it stopped and offers a start; connection-lost.ts)
    const declineRestart = async () => {
      const dialog = page.locator('dialog.jp-Dialog', { hasText: 'Server unavailable' });
      assert.equal(await dialog.count(), 0, 'no restart question for a server ngsci stopped');
    };
    // the sidebar follows its server's events: the stop alone refreshes every money part (the
    // status bar, Instance, Usage, Billing, the budget bar, the statements), nothing re-opened
    await section(page, 'Instance').locator('.jp-ngsci-state-stopped').waitFor({ timeout: 15_000 });
    await calls.quiet();
    const refreshed = calls.answered(stopAt);
    for (const path of ['/instances', '/usage', '/budget', '/billing/statements'])
      assert.ok(
        refreshed.some((c) => c.path === path && c.status === 200),
        `the page asked ${path} again after the stop: ${JSON.stringify(refreshed)}`,
      );
    // the admin panel (not the sidebar) asks again when shown: another tab, then the panel's
    const tab = (name: string) =>
      page.locator('#jp-main-dock-panel .lm-TabBar-tab', { hasText: name }).first();
    const clickPastDialog = async (target: Locator) => {
      await declineRestart();
      await target.click();
    };
    const reshowAdmin = async () => {
      await declineRestart();
      if (await tab('Launcher').isVisible()) await clickPastDialog(tab('Launcher'));
      else await runFromPalette(page, 'New Launcher');
      await clickPastDialog(tab('ngsci admin'));
      await calls.quiet();
    };
    await reshowAdmin();
    // the stopped instance's final row may not be written yet: every figure counts it once, at
    // its final amount (60 s minimum included), from its close
    const finalRows = (await checkLedger(sql)).problems.length === 0;
    await compareAll('just after the stop');
    t.diagnostic(`just after the stop, the final rows were ${finalRows ? '' : 'not yet '}written`);

    await until(async () => (await checkLedger(sql)).problems.length === 0, 'the final rows', 30);
    // the hub revoked the page's token with its server; once the service has noticed (its token
    // cache lasts up to NGSCI_AUTH_CACHE_SECONDS), the page reads with the browser's sign-in
    const pageToken = (await page.evaluate(
      `JSON.parse(document.getElementById('jupyter-config-data').textContent).token`,
    )) as string;
    assert.ok(pageToken, "the page's token");
    await until(
      async () => (await stack.api('/me', pageToken)).status === 401,
      "the service to refuse the stopped server's token",
      60,
    );
    // each part asks again when shown afresh: closed, then open again (each step waits for the
    // panel's animation)
    await declineRestart();
    const since = Date.now();
    for (const name of ['Instance', 'Usage', 'Billing'] as const) {
      const title = page.locator('#ngsci-sidebar .lm-AccordionPanel-title', { hasText: name });
      if ((await title.getAttribute('aria-expanded')) === 'true') {
        await clickPastDialog(title);
        await section(page, name).waitFor({ state: 'hidden' });
      }
      await clickPastDialog(title);
      await section(page, name).waitFor({ state: 'visible' });
    }
    await reshowAdmin();
    const again = calls.answered(since);
    for (const path of ['/instances', '/usage', '/budget', '/billing/statements'])
      assert.ok(
        again.some((c) => c.path === path && c.status === 200),
        `the re-opened parts had ${path} answered afresh: ${JSON.stringify(again)}`,
      );
    await compareAll('after a stop, re-opened');
    assert.equal(
      await page.locator('#ngsci-sidebar .jp-ngsci-notice-error:not([hidden])').count(),
      0,
      'no section says its figures could not be refreshed',
    );
    // once JupyterLab noticed its server gone (its polls fail), the page says so in a note,
    // not in a modal question
    await page.locator('.Toastify').getByText('Your server has stopped.').first().waitFor({
      timeout: 60_000,
    });
    await declineRestart();
  });
});
