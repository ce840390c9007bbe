/**
 * A researcher's own spot preemption default, set in the sidebar, and kernel variables kept
 * across a spot preemption, in Chromium against the real stack (hub, proxy, service, Postgres,
 * the local provisioner's real JupyterLab and kernels). The admin's default is 'stop'.
 * 1. The Instance section's "On spot preemption" control shows the organisation's default; the
 *    researcher picks "Relaunch on-demand" and "Keep my variables"; the service has both, and a
 *    spot launch that names no onPreemption gets on-demand.
 * 2. On that spot server a notebook defines `x = 42`; the cloud's recorded AWS notice goes
 *    through the agent path; the open page saves the documents and the notebook's variables
 *    (it says so), the server process is killed as the cloud takes the machine, the service
 *    relaunches it on demand, and the reopened notebook's new kernel has `x` back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { environOf, isAlive, startStack, until, type Stack } from '../stack.js';
import { feedSpotNotice, recordedSpotNotice, type SpotMetadata } from '../spot-metadata.js';
import { launchBrowser, login, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  screenshot,
  section,
  showOnly,
} from './helpers.js';

interface Inst {
  id: string;
  state: string;
  spot: boolean;
  onPreemption?: string | null;
}

interface Choice {
  chosen: string | null;
  effective: string;
  source: string;
  keepState: boolean;
}

const NOTEBOOK = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {
    kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
  },
  cells: ['x = 42\nwords = ["spot", "kept"]\nprint("defined")', 'print("x is", x, words)'].map(
    (source, i) => ({
      cell_type: 'code',
      id: `c${i + 1}`,
      metadata: {},
      source,
      outputs: [],
      execution_count: null,
    }),
  ),
};

describe('the spot preemption default in the sidebar, and variables kept at a spot notice', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let token: string;
  let metadata: SpotMetadata;

  before(async () => {
    stack = await startStack({
      database: 'postgres',
      env: { NGSCI_PREEMPTION_DEFAULT: 'stop', NGSCI_HOME_GB: '0' },
    });
    token = await stack.userToken('researcher');
    metadata = await recordedSpotNotice();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await metadata?.close();
    await stack?.stop();
  });

  const current = async () => (await (await stack.api('/instances/default', token)).json()) as Inst;
  const cells = () => page.locator('.jp-Notebook .jp-Cell');

  async function run(n: number, expect: RegExp, timeout = 90_000): Promise<void> {
    await cells().nth(n).locator('.cm-content').click();
    await page.keyboard.press('Shift+Enter');
    try {
      await cells()
        .nth(n)
        .locator('.jp-OutputArea-output')
        .filter({ hasText: expect })
        .first()
        .waitFor({ timeout });
    } catch (err) {
      throw new Error(`cell ${n + 1} shows: ${await cells().nth(n).innerText()}`, { cause: err });
    }
  }

  const feedNotice = (instanceId: string) => feedSpotNotice(instanceId, metadata.url);

  test('the sidebar sets the default; a spot launch without its own choice uses it', async () => {
    await launchAndWait(stack, token, 'cpu-small');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await login(context, stack.url, 'researcher', stack.password);
    await page.goto(`${stack.url}/user/researcher/lab`);
    await waitForLab(page);
    await dismissNews(page);
    await openSidebar(page);
    await showOnly(page, 'Instance');
    const instance = section(page, 'Instance');
    const select = instance.getByLabel('On spot preemption');
    const applies = instance.getByTestId('ngsci-preemption-applies');
    await applies
      .filter({ hasText: "stop (your organisation's default)" })
      .waitFor({ timeout: 30_000 });
    assert.equal(await select.inputValue(), 'default');
    assert.equal(
      await select.locator('option[value="default"]').innerText(),
      'Organisation default (stop)',
    );

    await select.selectOption({ label: 'Relaunch on-demand' });
    await applies.filter({ hasText: 'relaunch on-demand (your choice)' }).waitFor();
    await instance.getByLabel(/Keep my variables/).check();
    await instance
      .getByRole('status')
      .filter({ hasText: "notebooks' variables are saved at a spot notice" })
      .waitFor();
    await screenshot(instance.locator('.jp-ngsci-preemption'), 'preemption-default-light');

    const choice = (await (await stack.api('/me/preemption', token)).json()) as Choice;
    assert.deepEqual(
      [choice.chosen, choice.effective, choice.source, choice.keepState],
      ['on-demand', 'on-demand', 'user', true],
    );
    // a fresh page shows what was saved
    await page.reload();
    await waitForLab(page);
    await openSidebar(page);
    await showOnly(page, 'Instance');
    await applies.filter({ hasText: '(your choice)' }).waitFor({ timeout: 30_000 });
    assert.equal(await select.inputValue(), 'on-demand');
    assert.ok(await instance.getByLabel(/Keep my variables/).isChecked());

    // a spot launch that names no onPreemption: the researcher's, not the admin's 'stop'
    assert.equal(
      (await stack.api('/instances/default/stop', token, { method: 'POST' })).status,
      202,
    );
    await until(async () => (await current()).state === 'stopped', 'stopped', 60, stack);
    const res = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small', spot: true }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const spot = await until(
      async () => {
        const i = await current();
        if (i.state === 'failed') throw new Error(`the instance failed: ${JSON.stringify(i)}`);
        return i.state === 'running' ? i : null;
      },
      'the spot server running',
      120,
      stack,
    );
    assert.equal(spot.spot, true);
    assert.equal(spot.onPreemption, 'on-demand');
  });

  test('at a spot notice the page saves the notebook variables; after the relaunch they are back', async () => {
    const first = await current();
    assert.equal(first.state, 'running');
    await page.goto(`${stack.url}/user/researcher/lab`);
    await waitForLab(page, 120_000);
    // the page checks for notices every 15 s (the shortest setting) instead of every minute
    const put = (await page.evaluate(`(async () => {
      const xsrf = /_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const root = location.pathname.replace(/lab.*$/, '');
      const headers = { 'content-type': 'application/json', 'x-xsrftoken': xsrf };
      const s = await fetch(root + 'lab/api/settings/ngsci-labextension:notifications', {
        method: 'PUT',
        headers,
        body: JSON.stringify({ raw: '{"pollSeconds": 15}' }),
      });
      const n = await fetch(root + 'api/contents/spot.ipynb', {
        method: 'PUT',
        headers,
        body: JSON.stringify({ type: 'notebook', format: 'json', content: ${JSON.stringify(NOTEBOOK)} }),
      });
      return [s.status, n.status];
    })()`)) as number[];
    assert.deepEqual(put, [204, 201]);
    await page.goto(`${stack.url}/user/researcher/lab/tree/spot.ipynb`);
    await waitForLab(page, 120_000);
    await dismissNews(page);
    await page.getByText(/Python 3 \(ipykernel\) \| Idle/).waitFor({ timeout: 90_000 });
    await run(0, /defined/);

    await feedNotice(first.id);
    // the page's notification: documents and variables saved, before the machine goes
    await page
      .locator('.Toastify')
      .getByText(/Your notebooks' variables were saved \(spot\.ipynb: .*\bx\b/)
      .first()
      .waitFor({ timeout: 90_000 });
    const home = environOf(stack.pidOf(first.id)!).HOME!;
    const state = join(home, '.ngsci', 'state');
    assert.ok(
      existsSync(state) && readdirSync(state).length > 0,
      'a snapshot on the persistent home',
    );

    // the cloud takes the machine
    const pid = stack.pidOf(first.id);
    assert.ok(pid && isAlive(pid), 'the server process runs');
    process.kill(pid, 'SIGKILL');
    await page.waitForEvent('load', { timeout: 180_000 });
    // the notebooks JupyterLab reopens restore their variables and the page says so: watched
    // from the reload on (and again if the notebook has to be opened by hand)
    let sawRestore = false;
    const watch = () =>
      void page
        .locator('.Toastify')
        .getByText(/spot\.ipynb: restored .*\bx\b/)
        .first()
        .waitFor({ timeout: 180_000 })
        .then(() => (sawRestore = true))
        .catch(() => undefined);
    watch();
    await waitForLab(page, 120_000);
    const back = await current();
    assert.notEqual(back.id, first.id, 'a relaunch is a new instance');
    assert.equal(back.spot, false, 'relaunched on demand');

    const open = await cells()
      .first()
      .waitFor({ timeout: 20_000 })
      .then(() => true)
      .catch(() => false);
    if (!open) {
      await page.goto(`${stack.url}/user/researcher/lab/tree/spot.ipynb`);
      watch();
      await waitForLab(page, 120_000);
    }
    const select = page.locator('dialog.jp-Dialog', { hasText: 'Select Kernel' });
    await select
      .waitFor({ timeout: 8_000 })
      .then(() => select.getByRole('button', { name: 'Select' }).click())
      .catch(() => undefined);
    await dismissNews(page);
    await until(async () => sawRestore, 'the notice of the restore', 180, stack);
    await page.getByText(/Python 3 \(ipykernel\) \| Idle/).waitFor({ timeout: 90_000 });
    await run(1, /x is 42 \['spot', 'kept'\]/);
  });
});
