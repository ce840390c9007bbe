/**
 * The ngsci JupyterLab extension in Chromium against the real stack (hub, proxy, service,
 * real single-user JupyterLab, PGlite): a researcher logs in through the hub's form, opens the
 * sidebar, watches the cost tick, an admin sets the researcher's budget in the admin panel and
 * the researcher sees it, the researcher resizes from the sidebar and lands back in JupyterLab
 * on the new size, then stops the machine. No console errors along the way; light and dark.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startStack, until, type Stack } from '../stack.js';
import { collectErrors, login, openLab, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  researcherInLab,
  screenshot,
  section,
  setTheme,
  showOnly,
  type Inst,
} from './helpers.js';

describe('the ngsci sidebar in JupyterLab', () => {
  let stack: Stack;
  let browser: Browser;
  let researcher: BrowserContext;
  let page: Page;
  let token: string;
  let errors: string[];

  before(async () => {
    stack = await startStack({ database: 'pglite' });
    token = await stack.userToken('researcher');
    ({ browser, context: researcher, page, errors } = await researcherInLab(stack, token));
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('the sidebar shows this machine: size, cloud, state, rate; the status bar says what today cost', async () => {
    await openSidebar(page);
    const instance = section(page, 'Instance');
    await assert.doesNotReject(instance.getByText('CPU small (cpu-small)').waitFor());
    await instance.getByText('Running').waitFor();
    await instance.getByText('local · localhost').waitFor();
    await instance
      .getByRole('definition')
      .filter({ hasText: /^\$0\.096\/h$/ })
      .waitFor();
    const status = page.locator('.jp-ngsci-status');
    await status.waitFor();
    assert.match(
      (await status.textContent()) ?? '',
      /^(< )?\$[\d.]+ today · cpu-small · \d+(s|m \d\ds)$/,
    );
    // the other sizes with their price and what they do to the month
    // the sizes are their own section (Resize)
    await section(page, 'Resize').getByRole('button', { name: 'Resize to CPU large' }).waitFor();
    assert.match(
      (await section(page, 'Resize')
        .locator('.jp-ngsci-size-option', { hasText: 'CPU large' })
        .textContent()) ?? '',
      /\$0\.384\/h/,
    );
    await showOnly(page, 'Instance');
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-instance-light');
    await showOnly(page, 'Usage');
    await section(page, 'Usage')
      .getByRole('img', { name: /Cost per day by size/ })
      .waitFor();
    await showOnly(page, 'Billing');
    await section(page, 'Billing').getByText('Private').waitFor();
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-billing-light');
    await screenshot(page, 'lab-light');
    assert.deepEqual(errors, []);
  });

  test('an admin sets the researcher a budget in the admin panel, and the researcher sees it', async () => {
    const adminToken = await stack.userToken('admin');
    await launchAndWait(stack, adminToken, 'cpu-small');
    const admin = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const adminPage = await login(admin, stack.url, 'admin', stack.passwords.admin!);
    // the panel's forms are shown the service's refusals on purpose (an id with capitals, an
    // unknown size, an assigned plan): Chromium logs each of those 400 answers
    const adminErrors = collectErrors(adminPage, [
      /Failed to load resource: the server responded with a status of 400/,
      // before the admin signs in, the panel's GET /session answers 401 login_required
      /Failed to load resource: the server responded with a status of 401/,
    ]);
    await openLab(adminPage, stack.url, 'admin');
    await dismissNews(adminPage);
    await openSidebar(adminPage);
    await adminPage.getByRole('button', { name: 'Admin panel' }).click();
    const panel = adminPage.locator('.jp-ngsci-admin');
    // the page's token never carries the admin scope: the panel signs in to the service itself,
    // in a popup that goes through the hub's OAuth (no login form: the hub knows this browser)
    // and closes itself when done
    const popup = adminPage.waitForEvent('popup');
    await panel.getByRole('button', { name: 'Sign in as admin' }).click();
    await (await popup).waitForEvent('close', { timeout: 30_000 });
    await panel.getByText(/Signed in as admin until/).waitFor();
    await panel.getByRole('table', { name: 'Running instances' }).waitFor();
    // npm start's local demo: the panel says plainly that every user shares one account
    await panel.getByRole('alert').filter({ hasText: 'share one system account' }).waitFor();
    await panel.getByText(/agent runs as the same account as the notebook/).waitFor();
    // both running machines, each with a Stop button
    await panel.getByRole('button', { name: 'Stop researcher/default' }).waitFor();
    await panel.getByRole('button', { name: 'Stop admin/default' }).waitFor();
    await panel
      .getByRole('table', { name: 'Users' })
      .getByRole('cell', { name: 'researcher', exact: true })
      .waitFor();

    const form = panel.getByRole('form', { name: 'Set a monthly budget' });
    await form.getByLabel('Name').fill('researcher');
    await form.getByLabel(/Budget \(USD/).fill('abc');
    await form.getByRole('button', { name: 'Save budget' }).click();
    await form.getByText(/'abc' is not an amount in dollars/).waitFor();
    await form.getByLabel(/Budget \(USD/).fill('25');
    await form.getByRole('button', { name: 'Save budget' }).click();
    await form.getByText('Saved: user researcher has $25.00 a month.').waitFor();
    await panel
      .getByRole('table', { name: 'Quotas' })
      .getByRole('cell', { name: 'user researcher' })
      .waitFor();

    // plans: the built-in ones stay, a custom one is created, changed, assigned and deleted
    const plans = panel.getByRole('table', { name: 'Plans' });
    await plans
      .getByRole('row')
      .filter({ hasText: 'nonprofit' })
      .getByText('Built-in: cannot be deleted')
      .waitFor();
    await plans.getByRole('row').filter({ hasText: 'private' }).getByText('Built-in').waitFor();
    assert.equal(await plans.getByRole('button', { name: /Delete plan/ }).count(), 0);
    const planForm = panel.getByRole('form', { name: 'Create or change a plan' });
    await planForm.getByLabel('Id').fill('Academic Partners');
    await planForm.getByLabel('Label').fill('Academic partners');
    await planForm.getByLabel(/Price multiplier/).fill('80');
    await planForm.getByRole('button', { name: 'Save plan' }).click();
    await planForm.getByText(/'80' is ambiguous: write 80% or ×80/).waitFor();
    await planForm.getByLabel(/Price multiplier/).fill('80%');
    await planForm.getByRole('button', { name: 'Save plan' }).click();
    // the service's own validation message, next to the form
    await planForm
      .getByText(/invalid request: id: lower-case letters, digits and dashes/)
      .waitFor();
    await planForm.getByLabel('Id').fill('academic');
    await planForm.getByRole('button', { name: 'Save plan' }).click();
    await planForm.getByText('Created plan academic: ×0.8 (80%) of the list price.').waitFor();
    await plans.getByRole('row').filter({ hasText: 'academic' }).getByText('×0.8 (80%)').waitFor();
    await planForm.getByLabel(/Price multiplier/).fill('×0.5');
    await planForm.getByRole('button', { name: 'Save plan' }).click();
    await planForm.getByText('Changed plan academic: ×0.5 (50%) of the list price.').waitFor();
    await plans.getByRole('row').filter({ hasText: 'academic' }).getByText('×0.5 (50%)').waitFor();

    const assignForm = panel.getByRole('form', { name: 'Assign a plan' });
    await assignForm.getByLabel('For').selectOption('group');
    await assignForm.getByLabel('Name').fill('visitors');
    await assignForm.getByLabel('Plan').selectOption('academic');
    await assignForm.getByRole('button', { name: 'Assign plan' }).click();
    await assignForm.getByText('group visitors is on plan academic.').waitFor();
    const assignments = panel.getByRole('table', { name: 'Plan assignments' });
    await assignments
      .getByRole('row')
      .filter({ hasText: 'group visitors' })
      .getByText('Academic partners')
      .waitFor();
    // an assigned plan cannot go; the service says why, next to the plan form
    await plans.getByRole('button', { name: 'Delete plan academic' }).click();
    await planForm
      .getByText("plan 'academic' is assigned 1 time(s); remove the assignments first")
      .waitFor();
    await assignments.getByRole('button', { name: 'Remove the plan of group visitors' }).click();
    await assignForm.getByText('group visitors is back on the default plan.').waitFor();
    await plans.getByRole('button', { name: 'Delete plan academic' }).click();
    await planForm.getByText('Deleted plan academic.').waitFor();
    await plans.getByRole('row').filter({ hasText: 'academic' }).waitFor({ state: 'detached' });

    // a price override, entered in dollars, then removed (back to the catalog price)
    const priceForm = panel.getByRole('form', { name: 'Set a price override' });
    await priceForm.getByLabel('Size').fill('no-such-size');
    await priceForm.getByLabel('Cloud').selectOption('aws');
    await priceForm.getByLabel(/On-demand/).fill('0.50');
    await priceForm.getByLabel(/Spot/).fill('0.15');
    // Enter in a field submits the form (a toast may cover the panel's bottom for the mouse)
    await priceForm.getByLabel(/Spot/).press('Enter');
    await priceForm.getByText("unknown size 'no-such-size'").waitFor();
    await priceForm.getByLabel('Size').fill('cpu-large');
    await priceForm.getByLabel('Size').press('Enter');
    await priceForm.getByText('cpu-large on aws costs $0.50/h (spot $0.15/h).').waitFor();
    const overrides = panel.getByRole('table', { name: 'Price overrides' });
    await overrides
      .getByRole('row')
      .filter({ hasText: 'cpu-large' })
      .getByText('$0.15/h')
      .waitFor();
    await screenshot(adminPage, 'admin-panel-plans-light');
    // keyboard: the Remove button is reached and pressed without a mouse
    await overrides
      .getByRole('button', { name: 'Remove the price override for cpu-large on aws' })
      .focus();
    await adminPage.keyboard.press('Enter');
    await priceForm.getByText('cpu-large on aws is back to the catalog price.').waitFor();
    await panel.getByText('The catalog list prices apply: no overrides.').waitFor();
    // the pressed button is gone; focus stays in the panel, on the price form
    assert.equal(
      await adminPage.evaluate('document.activeElement?.getAttribute("name")'),
      'priceSize',
    );
    await screenshot(adminPage, 'admin-panel-light');
    await setTheme(adminPage, 'JupyterLab Dark');
    await screenshot(adminPage, 'admin-panel-dark');
    assert.deepEqual(adminErrors, []);

    // the researcher's Billing section shows it on its next refresh (opening the section refreshes)
    await showOnly(page, 'Instance');
    await showOnly(page, 'Billing');
    const billing = section(page, 'Billing');
    await billing
      .getByRole('meter', { name: /Budget: \$[\d.]+ of \$25\.00/ })
      .waitFor({ timeout: 30_000 });
    await billing.getByText(/At the current rate the budget (runs out|lasts the month)/).waitFor();
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-billing-budget-light');
    // the admin's machine is not needed any more: stopped from the panel (a signed-in change)
    await setTheme(adminPage, 'JupyterLab Light');
    await panel.getByRole('button', { name: 'Stop admin/default' }).click();
    await adminPage.getByRole('dialog').getByRole('button', { name: 'Stop' }).click();
    await until(
      async () => {
        const i = (await (await stack.api('/instances/default', adminToken)).json()) as Inst;
        return i.state === 'stopped' ? i : null;
      },
      "the admin's machine to stop",
      60,
      stack,
    );
    await admin.close();
  });

  test('the cost so far ticks live in light and dark', async () => {
    await showOnly(page, 'Instance');
    const cost = section(page, 'Instance').getByTestId('ngsci-cost');
    const first = await cost.textContent();
    // billing has a 60 s minimum, so the figure moves once the first minute is over
    await page.waitForFunction(
      `document.querySelector('[data-testid="ngsci-cost"]')?.textContent !== ${JSON.stringify(first)}`,
      undefined,
      { timeout: 90_000 },
    );
    const later = await cost.textContent();
    // "$0.0012 (60 s minimum billed at the stop)": the amount is the first figure
    const amount = (t: string | null) => Number(/\$([\d.]+)/.exec(t ?? '')?.[1] ?? NaN);
    assert.ok(amount(later) > amount(first), `${first} → ${later}`);
    await setTheme(page, 'JupyterLab Dark');
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-instance-dark');
    await showOnly(page, 'Billing');
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-billing-dark');
    await screenshot(page, 'lab-dark');
    await setTheme(page, 'JupyterLab Light');
    await showOnly(page, 'Instance');
    assert.deepEqual(errors, []);
  });

  test('the sidebar is keyboard accessible and says plainly when the service cannot be reached', async () => {
    const probe = await researcher.newPage();
    const probeErrors = collectErrors(probe, [/Failed to load resource/, /net::ERR_FAILED/]);
    await probe.route('**/services/ngsci/**', (route) => route.abort());
    await probe.goto(`${stack.url}/user/researcher/lab`);
    await waitForLab(probe);
    await dismissNews(probe);
    await openSidebar(probe);
    await section(probe, 'Instance')
      .getByRole('alert')
      .getByText(/cannot be reached/)
      .waitFor();
    assert.match((await probe.locator('.jp-ngsci-status').textContent()) ?? '', /unavailable/);
    await probe.close();
    assert.deepEqual(probeErrors, []);

    // Resize buttons are reachable with Tab and open the confirm dialog with Enter
    await showOnly(page, 'Resize');
    const button = section(page, 'Resize').getByRole('button', { name: 'Resize to CPU large' });
    await button.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Resize to CPU large?').waitFor();
    await dialog.getByText(/This month: \$[\d.,]+ → \$[\d.,]+ at the new rate/).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  test('resize from the sidebar: documents saved, progress followed, back in JupyterLab on the new size', async () => {
    const before = (await (await stack.api('/instances/default', token)).json()) as Inst;
    // an unsaved notebook: the resize saves it first
    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    const kernel = page.getByRole('dialog');
    if (await kernel.isVisible({ timeout: 3000 }).catch(() => false))
      await kernel.getByRole('button', { name: 'Select' }).click();
    await page.locator('.jp-Notebook .jp-Cell .cm-content').first().click();
    await page.keyboard.type('print("kept across the resize")');
    await openSidebar(page);
    await showOnly(page, 'Resize');
    await section(page, 'Resize').getByRole('button', { name: 'Resize to CPU large' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and resize' }).click();
    const restarting = page.getByRole('dialog', { name: 'Your machine is restarting' });
    await restarting
      .getByRole('progressbar', { name: /Resizing to cpu-large|cpu-large is running/ })
      .waitFor();
    await screenshot(page, 'resize-progress-light');
    // the page reloads into JupyterLab on the new server
    await page.waitForEvent('load', { timeout: 180_000 });
    await waitForLab(page, 120_000);
    // the restored notebook's old kernel died with the old machine: JupyterLab may ask for one
    const selectKernel = page.locator('dialog.jp-Dialog', { hasText: 'Select Kernel' });
    await selectKernel
      .waitFor({ timeout: 15_000 })
      .then(() => selectKernel.getByRole('button', { name: 'Select' }).click())
      .catch(() => undefined);
    await openSidebar(page);
    // JupyterLab restores the folded sections: only Resize was open
    await showOnly(page, 'Instance');
    await section(page, 'Instance').getByText('CPU large (cpu-large)').waitFor({ timeout: 30_000 });
    const now = (await (await stack.api('/instances/default', token)).json()) as Inst;
    assert.equal(now.size, 'cpu-large');
    assert.equal(now.state, 'running');
    assert.notEqual(now.id, before.id, 'a resize is a new instance');
    const contents = await fetch(
      `${stack.url}/user/researcher/api/contents/Untitled.ipynb?content=1`,
      { headers: { authorization: `token ${token}` } },
    );
    assert.equal(contents.status, 200, 'the notebook was saved before the machine restarted');
    assert.match(await contents.text(), /kept across the resize/);
    // the stopped cpu-small interval is in the ledger now: the Usage section lists it
    await showOnly(page, 'Usage');
    await section(page, 'Usage')
      .getByRole('table', { name: 'Usage by size' })
      .getByRole('cell', { name: 'cpu-small' })
      .waitFor({ timeout: 30_000 });
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-usage-light');
    await setTheme(page, 'JupyterLab Dark');
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-usage-dark');
    await showOnly(page, 'Instance');
  });

  test('stop from the sidebar: confirm, the machine stops, the page goes to the hub', async () => {
    await dismissNews(page);
    const instance = section(page, 'Instance');
    await instance.getByRole('button', { name: 'Stop this machine…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and stop' }).click();
    await page.waitForURL(/\/hub\/home/, { timeout: 60_000 });
    const stopped = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as Inst;
        return i.state === 'stopped' ? i : null;
      },
      'the instance to stop',
      60,
      stack,
    );
    assert.equal(stopped.size, 'cpu-large');
  });
});
