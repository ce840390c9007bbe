/**
 * The sidebar's "Idle timeout" section in Chromium against the real stack (issue 15, part 4): it
 * shows the admin's timeout and the bounds; a value inside them is saved (the service answers it
 * back, and the Resize section's runway line says the new timeout); a value outside them is
 * refused with the bounds and nothing is sent; when the admin narrows the bounds, the section
 * says the choice is outside them and which value applies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { startStack, type Stack } from '../stack.js';
import { collectErrors, launchBrowser, login, openLab } from './browser.js';
import { dismissNews, launchAndWait, openSidebar, screenshot, section } from './helpers.js';

const ACCESS = 'access:services!service=ngsci';
const ADMIN_SCOPE = 'custom:ngsci:admin';

describe('the idle timeout in the sidebar', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let adminToken: string;
  let quotaId: number;
  let errors: string[];
  const puts: number[] = [];

  const quota = (max: number) => ({
    subjectKind: 'default',
    subjectName: '',
    idleTimeoutCpuSeconds: 3600,
    idleTimeoutGpuSeconds: 1800,
    idleTimeoutCpuMinSeconds: 600,
    idleTimeoutCpuMaxSeconds: max,
    idleTimeoutGpuMinSeconds: 300,
    idleTimeoutGpuMaxSeconds: 3600,
  });

  before(async () => {
    stack = await startStack({ database: 'postgres', env: { NGSCI_METER_INTERVAL: '2' } });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken(stack.users.admin, [ACCESS, ADMIN_SCOPE]);
    const q = await stack.api('/admin/quotas', adminToken, {
      method: 'POST',
      body: JSON.stringify(quota(14_400)),
    });
    assert.ok(q.ok, await q.clone().text());
    quotaId = ((await q.json()) as { id: number }).id;
    browser = await launchBrowser();
    await launchAndWait(stack, token, 'cpu-small');
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await login(context, stack.url, 'researcher', stack.password);
    errors = collectErrors(page);
    page.on('request', (r) => {
      if (r.method() === 'PUT' && r.url().includes('/me/idle-timeout')) puts.push(Date.now());
    });
    await openLab(page, stack.url, 'researcher');
    await dismissNews(page);
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const idleSection = (): Locator =>
    page.locator('#ngsci-sidebar .jp-ngsci-section[aria-label="Idle timeout"]');

  const titleOf = (name: string) =>
    page.locator('#ngsci-sidebar .lm-AccordionPanel-title', { hasText: name });

  /** Folds every other section and unfolds `name`, so it has the sidebar's height. */
  async function only(name: string): Promise<void> {
    await openSidebar(page);
    await dismissNews(page);
    for (const other of ['Instance', 'Resize', 'Usage', 'Billing', 'Idle timeout']) {
      const expanded = (await titleOf(other).getAttribute('aria-expanded')) === 'true';
      if (expanded !== (other === name)) await titleOf(other).click();
    }
  }

  /** Unfolds the section (it starts folded) and waits for the service's answer in it. */
  async function openIdle(): Promise<Locator> {
    await only('Idle timeout');
    const s = idleSection();
    await s.locator('.jp-ngsci-idle-cpu').getByText('You may choose 10 min to 4 h.').waitFor();
    return s;
  }

  test("shows the admin's timeout and bounds; saves a value inside them", async () => {
    const s = await openIdle();
    await s.locator('.jp-ngsci-idle-cpu').getByText('1 h', { exact: true }).waitFor();
    assert.match(
      (await s.locator('.jp-ngsci-idle-cpu').textContent()) ?? '',
      /1 h \(the admin's\)/,
    );
    assert.match(
      (await s.locator('.jp-ngsci-idle-gpu').textContent()) ?? '',
      /30 min \(the admin's\).*You may choose 5 min to 1 h\./,
    );
    const cpu = s.getByRole('textbox', { name: 'Your idle timeout for CPU sizes' });
    await cpu.fill('45m');
    await s.getByRole('button', { name: 'Save' }).click();
    await s
      .getByRole('status')
      .getByText('Saved: idle servers stop after 45 min on CPU sizes, 30 min on GPU sizes.')
      .waitFor();
    await s.locator('.jp-ngsci-idle-cpu').getByText('45 min', { exact: true }).waitFor();
    assert.match((await s.locator('.jp-ngsci-idle-cpu').textContent()) ?? '', /\(your choice\)/);
    // the service has it
    const res = await stack.api('/me/idle-timeout', token);
    const body = (await res.json()) as { cpu: { chosenSeconds: number; effectiveSeconds: number } };
    assert.equal(body.cpu.chosenSeconds, 2700);
    assert.equal(body.cpu.effectiveSeconds, 2700);
    // the Resize section's runway line names the timeout that now applies
    await screenshot(s, 'sidebar-idle-light');
    await only('Resize');
    await section(page, 'Resize')
      .locator('.jp-ngsci-size-option', { hasText: 'CPU small' })
      .getByText(/stops after 45 min idle/)
      .waitFor({ timeout: 60_000 });
  });

  test('a value outside the bounds is refused with the bounds, and nothing is sent', async () => {
    const s = await openIdle();
    const before = puts.length;
    const gpu = s.getByRole('textbox', { name: 'Your idle timeout for GPU sizes' });
    await gpu.fill('2h');
    await s.getByRole('button', { name: 'Save' }).click();
    await s
      .getByRole('status')
      .getByText('2 h is outside the bounds for GPU sizes: 5 min to 1 h.')
      .waitFor();
    assert.equal(puts.length, before, 'refused in the page, before any request');
    const res = await stack.api('/me/idle-timeout', token);
    assert.equal(((await res.json()) as { gpu: { chosenSeconds: null } }).gpu.chosenSeconds, null);
    await gpu.fill('');
  });

  test('when the admin narrows the bounds, the section says the choice is outside them and what applies', async () => {
    const s = await openIdle();
    const r = await stack.api(`/admin/quotas/${quotaId}`, adminToken, {
      method: 'PUT',
      body: JSON.stringify(quota(1200)),
    });
    assert.ok(r.ok, await r.clone().text());
    // folding and unfolding asks again (as does the periodic refresh)
    await titleOf('Idle timeout').click();
    await titleOf('Idle timeout').click();
    await s
      .getByRole('status')
      .getByText(
        'Your admin narrowed the bounds for CPU sizes (10 min to 20 min): your 45 min is outside them, so 20 min applies.',
      )
      .waitFor();
    await s.locator('.jp-ngsci-idle-cpu').getByText('20 min', { exact: true }).waitFor();
    // back to the admin's: the warning goes
    await s.getByRole('button', { name: "Use the admin's" }).click();
    await s
      .locator('.jp-ngsci-idle-cpu')
      .getByText(/\(the admin's\)/)
      .waitFor();
    assert.equal(await s.getByText(/narrowed the bounds/).count(), 0);
    assert.deepEqual(errors, []);
  });
});
