/**
 * Budget-aware launch and stop in Chromium against the real stack (issue 13): at 1400×900 the
 * sizes are in sight without scrolling, each with the remaining budget's runway and the idle
 * timeout; a size the quota forbids is disabled with the reason; the local "cloud" shows no
 * price for GPUs it does not have; once a hard-stop budget is spent, the status bar and the
 * sidebar count down to the stop and every open document is saved before it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startStack, until, type Stack } from '../stack.js';
import { openSidebar, researcherInLab, screenshot, section, showOnly } from './helpers.js';

const ACCESS = 'access:services!service=ngsci';
const ADMIN_SCOPE = 'custom:ngsci:admin';
const GRACE_SECONDS = 45;

describe('budget-aware launch and stop in the sidebar', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let adminToken: string;
  let quotaId: number;
  let errors: string[];

  before(async () => {
    stack = await startStack({
      database: 'pglite',
      env: { NGSCI_BUDGET_GRACE: String(GRACE_SECONDS), NGSCI_METER_INTERVAL: '2' },
    });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken(stack.users.admin, [ACCESS, ADMIN_SCOPE]);
    // $5 a month with a hard stop, CPU small only, idle servers stop after 30 min
    const q = await stack.api('/admin/quotas', adminToken, {
      method: 'POST',
      body: JSON.stringify({
        subjectKind: 'user',
        subjectName: 'researcher',
        monthlyBudgetMicros: 5_000_000,
        hardStop: true,
        allowedSizes: ['cpu-small'],
        idleTimeoutCpuSeconds: 1800,
      }),
    });
    assert.ok(q.ok, await q.clone().text());
    quotaId = ((await q.json()) as { id: number }).id;
    ({ browser, context, page, errors } = await researcherInLab(stack, token, {
      viewport: { width: 1400, height: 900 },
    }));
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('at 1400×900 every size is in sight with its runway, the forbidden one disabled with the reason, no GPU price on this machine', async () => {
    await openSidebar(page);
    const resize = section(page, 'Resize');
    const small = resize.locator('.jp-ngsci-size-option', { hasText: 'CPU small' });
    // $5 less what ran so far, at $0.096/h: 2 days and some hours
    await small
      .getByTestId('ngsci-size-runway')
      .getByText(/^2 d \d+ h left in your budget · stops after 30 min idle$/)
      .waitFor();
    const large = resize.locator('.jp-ngsci-size-option', { hasText: 'CPU large' });
    await large
      .getByText('Not allowed: not among your allowed sizes (cpu-small)', { exact: true })
      .waitFor();
    assert.equal(
      await resize.getByRole('button', { name: 'Resize to CPU large' }).isDisabled(),
      true,
    );
    // GPU sizes: no price for hardware this machine does not have
    await resize.getByText(/^Not on local: .*T4.* \(this machine has no GPU\)\.$/).waitFor();
    assert.equal(await resize.locator('.jp-ngsci-size-option', { hasText: /GPU/ }).count(), 0);
    const catalog = (await (await stack.api('/catalog', token)).json()) as {
      sizes: Array<{
        id: string;
        offers: Array<{ cloud: string; available: boolean; simulated?: boolean }>;
      }>;
    };
    const t4 = catalog.sizes
      .find((s) => s.id === 'gpu-t4')!
      .offers.find((o) => o.cloud === 'local')!;
    assert.deepEqual([t4.available, t4.simulated], [false, true]);
    // every size row lies inside the section's box and the window, with the section unscrolled
    const placement = (await page.evaluate(`(() => {
      const sec = document.querySelector('#ngsci-sidebar .jp-ngsci-section[aria-label="Resize"]');
      const box = sec.getBoundingClientRect();
      const rows = [...sec.querySelectorAll('.jp-ngsci-size-option, .jp-ngsci-size-absent')];
      return {
        rows: rows.length,
        scrolled: sec.scrollTop,
        hidden: rows
          .map((r) => r.getBoundingClientRect())
          .filter((r) => r.top < box.top || r.bottom > box.bottom || r.bottom > window.innerHeight)
          .length,
      };
    })()`)) as { rows: number; scrolled: number; hidden: number };
    assert.equal(placement.rows, 3, 'CPU small, CPU large and the GPU line');
    assert.equal(placement.scrolled, 0);
    assert.equal(placement.hidden, 0, 'no size is below the fold at 1400×900');
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-resize-runway-light');
    assert.deepEqual(errors, []);

    // the hub's spawn form (a second, named server) gets the same from the service
    const form = await context.newPage();
    await form.goto(`${stack.url}/hub/spawn/researcher/second`);
    const formSmall = form.locator('label.ngsci-size', { hasText: 'CPU small' });
    await formSmall
      .getByText(/^2 d \d+ h left in your budget · stops after 30 min idle$/)
      .waitFor();
    const formLarge = form.locator('label.ngsci-size', { hasText: 'CPU large' });
    await formLarge
      .getByText('Not allowed: not among your allowed sizes (cpu-small)', { exact: true })
      .waitFor();
    assert.equal(await form.locator('#ngsci-size-cpu-large').isDisabled(), true);
    await screenshot(form, 'spawn-form-runway');
    await form.close();
  });

  test('a spent hard-stop budget: a countdown in the status bar and the sidebar, documents saved before the stop', async () => {
    // an unsaved notebook
    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    const kernel = page.getByRole('dialog');
    if (await kernel.isVisible({ timeout: 3000 }).catch(() => false))
      await kernel.getByRole('button', { name: 'Select' }).click();
    await page.locator('.jp-Notebook .jp-Cell .cm-content').first().click();
    await page.keyboard.type('print("saved before the budget stop")');
    // the admin lowers the budget below what is spent: the meter announces 100 %, the grace runs
    const put = await stack.api(`/admin/quotas/${quotaId}`, adminToken, {
      method: 'PUT',
      body: JSON.stringify({
        subjectKind: 'user',
        subjectName: 'researcher',
        monthlyBudgetMicros: 1,
        hardStop: true,
        allowedSizes: ['cpu-small'],
      }),
    });
    assert.ok(put.ok, await put.clone().text());
    const budget = await until(
      async () => {
        const b = (await (await stack.api('/budget', token)).json()) as { stopAt?: string | null };
        return b.stopAt ? b : null;
      },
      'GET /budget to give the stop time',
      30,
      stack,
    );
    const stopAt = Date.parse(budget.stopAt!);
    assert.ok(stopAt > Date.now(), 'the stop is still ahead: the grace period runs');
    // opening the Instance section asks the service again
    await openSidebar(page);
    await showOnly(page, 'Usage');
    await showOnly(page, 'Instance');
    const timer = section(page, 'Instance').getByRole('timer');
    await timer.getByText(/this machine stops at \d\d:\d\d, in \d:\d\d\./).waitFor();
    const status = page.locator('.jp-ngsci-status');
    await status.getByText(/ · stops at \d\d:\d\d, in \d:\d\d$/).waitFor();
    const first = await status.textContent();
    await page.waitForFunction(
      `document.querySelector('.jp-ngsci-status')?.textContent !== ${JSON.stringify(first)}`,
    );
    await screenshot(page, 'budget-countdown-light');
    // the notebook is on disk before the machine stops
    await until(
      async () => {
        const r = await fetch(
          `${stack.url}/user/researcher/api/contents/Untitled.ipynb?content=1`,
          {
            headers: { authorization: `token ${token}` },
          },
        );
        return r.ok && /saved before the budget stop/.test(await r.text()) ? true : null;
      },
      'the open notebook to be saved',
      GRACE_SECONDS,
      stack,
    );
    const running = (await (await stack.api('/instances/default', token)).json()) as {
      state: string;
    };
    assert.equal(running.state, 'running', 'saved while the machine still ran');
    const stopped = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as {
          state: string;
        };
        return i.state === 'stopped' ? i : null;
      },
      'the budget to stop the machine',
      GRACE_SECONDS + 60,
      stack,
    );
    assert.equal(stopped.state, 'stopped');
  });
});
