/**
 * Per-resource sizes in Chromium against the real stack (hub, proxy, service, spawner-bridge, real
 * single-user JupyterLab on the local provisioner, PGlite): an admin forbids the XL CPU package
 * and the 8× H100 GPU package for the hub group `students`; the researcher, a member, picks the
 * pair M + no GPU on the spawn form (its price on this machine shown, XL shown unavailable with the
 * reason) and lands in JupyterLab on `m.none`; the sidebar's Resize combines L + no GPU and the
 * server comes back on `l.none`, XL again unavailable with the reason, and the API refuses it with
 * quota_exceeded. Then the admin panel's Cloud credits section, with a grant recorded in it, and
 * its statement per cloud. Pictures with NGSCI_SCREENSHOTS (screenshots.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { until, startStack, type Stack } from '../stack.js';
import { collectErrors, launchBrowser, login, openLab, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  screenshot,
  section,
  showOnly,
  type Inst,
} from './helpers.js';

const ACCESS = 'access:services!service=ngsci';
const ADMIN_SCOPE = 'custom:ngsci:admin';
const FORBIDDEN_REASON = "not allowed for your group 'students'";

describe('pairs of packages in the spawn form and the sidebar, with a forbidding quota', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let adminToken: string;
  let errors: string[];
  let first: Inst;

  before(async () => {
    stack = await startStack({ database: 'pglite' });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken(stack.users.admin, [ACCESS, ADMIN_SCOPE]);
    // the researcher is in the hub group `students`, which may not use XL or 8× H100
    const group = await stack.hub('/groups/students', {
      method: 'POST',
      body: JSON.stringify({ users: [stack.users.researcher] }),
    });
    assert.ok(group.ok, `hub group: ${group.status} ${await group.text()}`);
    const q = await stack.api('/admin/quotas', adminToken, {
      method: 'POST',
      body: JSON.stringify({
        subjectKind: 'group',
        subjectName: 'students',
        forbiddenSizes: ['xl.any', 'any.h100x8'],
      }),
    });
    assert.equal(q.status, 201, await q.clone().text());
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    page = await login(context, stack.url, stack.users.researcher, stack.password);
    errors = collectErrors(page);
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('the spawn form: M + no GPU with its price, XL unavailable with the reason, and it launches m.none', async () => {
    await page.goto(`${stack.url}/hub/spawn`);
    const pairs = page.locator('fieldset.ngsci-pairs');
    await pairs.waitFor();
    const price = pairs.locator('.ngsci-pair-price');
    await pairs.getByLabel('CPU').selectOption('xl');
    await pairs.getByLabel('GPU').selectOption('none');
    assert.equal(await price.textContent(), `unavailable on This machine: ${FORBIDDEN_REASON}`);
    await pairs.getByLabel('CPU').selectOption('s');
    await pairs.getByLabel('GPU').selectOption('h100x8');
    assert.equal(await price.textContent(), `unavailable on This machine: ${FORBIDDEN_REASON}`);
    // a GPU package the group may use: this machine has no GPU, and says so
    await pairs.getByLabel('GPU').selectOption('t4');
    assert.match(
      (await price.textContent()) ?? '',
      /^unavailable on This machine: this machine has no GPU/,
    );
    // M is 4 vCPU and 16 GiB: here a process priced as m6i.xlarge, $0.192/h (the catalog's figure)
    const catalog = (await (await stack.api('/catalog', token)).json()) as {
      pairs: Array<{ id: string; offers: Array<{ cloud: string; onDemandMicrosPerHour: number }> }>;
    };
    const mNone = catalog.pairs
      .find((p) => p.id === 'm.none')!
      .offers.find((o) => o.cloud === 'local')!;
    assert.equal(mNone.onDemandMicrosPerHour, 192_000);
    await pairs.getByLabel('CPU').selectOption('m');
    await pairs.getByLabel('GPU').selectOption('none');
    assert.equal(await price.textContent(), '$0.192/h on process');
    await screenshot(page, 'spawn-form-pairs');

    await Promise.all([
      page.waitForURL(/\/hub\/spawn-pending\/|\/user\/researcher\//, { timeout: 60_000 }),
      page.getByRole('button', { name: /start/i }).click(),
    ]);
    await page.waitForURL(/\/user\/researcher\/lab/, { timeout: 120_000 });
    await waitForLab(page, 120_000);
    await dismissNews(page);
    first = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as Inst;
        return i.state === 'running' ? i : null;
      },
      'the pair chosen on the form running',
      120,
      stack,
    );
    assert.equal(first.size, 'm.none', 'the pair chosen on the form');
    assert.deepEqual(errors, []);
  });

  test('the sidebar: L + no GPU priced, XL unavailable with the reason, the API refuses it, Resize lands on l.none', async () => {
    await openSidebar(page);
    await showOnly(page, 'Resize');
    const resize = section(page, 'Resize');
    const cpu = resize.getByRole('combobox', { name: 'CPU package' });
    const gpu = resize.getByRole('combobox', { name: 'GPU package' });
    const line = resize.getByTestId('ngsci-pair-offer');
    await cpu.selectOption('xl');
    await gpu.selectOption('none');
    await line
      .getByText(`Unavailable: ${FORBIDDEN_REASON} (the quota forbids xl.any)`, { exact: true })
      .waitFor();
    assert.equal(
      await resize.getByRole('button', { name: /^Resize to XL/ }).count(),
      0,
      'no Resize button for a forbidden pair',
    );
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-resize-pair-forbidden-light');
    // the service refuses it too, whatever the page shows
    const refused = await stack.api('/instances/default/resize', token, {
      method: 'POST',
      body: JSON.stringify({ cpu: 'xl', gpu: 'none' }),
    });
    assert.equal(refused.status, 403);
    const body = (await refused.json()) as { code: string; message: string };
    assert.equal(body.code, 'quota_exceeded');
    assert.match(
      body.message,
      /not allowed for your group 'students' \(the quota forbids xl\.any\)/,
    );

    await cpu.selectOption('l');
    await line.getByText('$0.384/h on process', { exact: true }).waitFor();
    const button = resize.getByRole('button', { name: 'Resize to L (8 vCPU, 32 GiB) + no GPU' });
    await button.waitFor();
    await screenshot(page.locator('#ngsci-sidebar'), 'sidebar-resize-pairs-light');
    // from here the old server goes away under the page: its calls fail until the reload
    assert.deepEqual(errors, []);
    await button.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and resize' }).click();
    await page.waitForEvent('load', { timeout: 180_000 });
    await waitForLab(page, 120_000);
    const now = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as Inst;
        return i.state === 'running' && i.size === 'l.none' ? i : null;
      },
      'the server back on l.none',
      180,
      stack,
    );
    assert.notEqual(now.id, first.id, 'a resize is a new instance');
    await dismissNews(page);
    await openSidebar(page);
    await showOnly(page, 'Instance');
    await section(page, 'Instance')
      .getByText(/\(l\.none\)/)
      .waitFor({ timeout: 30_000 });
  });

  test("the admin panel's Cloud credits: a grant recorded, its alert, and the month's statement per cloud", async () => {
    await launchAndWait(stack, adminToken, 'cpu-small');
    const admin = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
    const adminPage = await login(admin, stack.url, stack.users.admin, stack.passwords.admin!);
    const adminErrors = collectErrors(adminPage, [
      // before the admin signs in, the panel's GET /session answers 401 login_required
      /Failed to load resource: the server responded with a status of 401/,
    ]);
    await openLab(adminPage, stack.url, stack.users.admin);
    await dismissNews(adminPage);
    await openSidebar(adminPage);
    await adminPage.getByRole('button', { name: 'Admin panel' }).click();
    const panel = adminPage.locator('.jp-ngsci-admin');
    const popup = adminPage.waitForEvent('popup');
    await panel.getByRole('button', { name: 'Sign in as admin' }).click();
    await (await popup).waitForEvent('close', { timeout: 30_000 });
    await panel.getByText(/Signed in as admin until/).waitFor();
    const credits = panel.locator('section[aria-label="Cloud credits"]');
    await credits.getByText('No credit grants: every cloud is paid at list price.').waitFor();

    // a grant that ends in 10 days with all of it left: the panel warns it will expire unused
    const day = (offset: number) =>
      new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const form = credits.getByRole('form', { name: 'Record a credit grant' });
    await form.getByLabel('Cloud').selectOption('aws');
    await form.getByLabel('Amount (USD)').fill('50,000');
    await form.getByLabel(/First day/).fill(day(-20));
    await form.getByLabel(/Last day/).fill(day(10));
    await form.getByLabel('Note').fill('research credits');
    await form.getByLabel('Note').press('Enter');
    await form
      .getByText(`Recorded $50,000.00 of AWS credits, ${day(-20)} to ${day(10)}.`)
      .waitFor();
    const grants = credits.getByRole('table', { name: 'Credit grants' });
    await grants
      .getByRole('row')
      .filter({ hasText: 'research credits' })
      .getByText('$50,000.00')
      .first()
      .waitFor();
    await credits
      .getByRole('alert')
      .filter({ hasText: /expire/ })
      .first()
      .waitFor();
    const statement = credits.getByRole('table', { name: 'Credits per cloud this month' });
    await statement.getByRole('row').filter({ hasText: 'Total' }).waitFor();
    await credits.scrollIntoViewIfNeeded();
    await screenshot(credits, 'admin-panel-credits-light');
    await screenshot(statement, 'admin-credit-statement-light');
    // the same statement over the API: the month's list cost, credits and net cost per cloud
    const month = new Date().toISOString().slice(0, 7);
    const api = (await (
      await stack.api(`/admin/credits/statement/${month}`, adminToken)
    ).json()) as { listMicros: number; creditsMicros: number; netMicros: number };
    assert.equal(api.netMicros, api.listMicros - api.creditsMicros);
    assert.deepEqual(adminErrors, []);
    await admin.close();
  });
});
