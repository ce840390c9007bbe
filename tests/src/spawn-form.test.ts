/**
 * The foundation's "done when", in a real browser: a user logs in at the hub, chooses a size with
 * its price on the spawn form, watches the progress bar and lands in JupyterLab.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT, startStack, type Stack } from './stack.js';

let stack: Stack;
let browser: Browser;

before(async () => {
  stack = await startStack({ database: 'pglite' });
  browser = await chromium.launch({
    executablePath: process.env.NGSCI_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('log in, pick a size with its price on the spawn form, see progress, land in JupyterLab', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`${stack.url}/hub/login`);
  await page.getByLabel('Username').fill(stack.users.researcher);
  await page.getByLabel('Password').fill(stack.password);
  await page.getByRole('button', { name: /sign in/i }).click();

  await page.goto(`${stack.url}/hub/spawn`);
  const large = page.locator('label.ngsci-size', { hasText: 'CPU large' });
  await large.waitFor();
  // the price per hour of each size is on the form, never rounded (issue 13): cpu-large is
  // $0.384/h (m6i.2xlarge), as the sidebar and the bill say
  assert.match((await large.innerText()).replace(/\s+/g, ' '), /\$0\.384\/h/);
  mkdirSync(join(ROOT, 'docs', 'images'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'docs', 'images', 'spawn-form.png'), fullPage: true });
  await page.locator('#ngsci-size-cpu-large').check();

  await Promise.all([
    page.waitForURL(/\/hub\/spawn-pending\/|\/user\/researcher\//, { timeout: 60_000 }),
    page.getByRole('button', { name: /start/i }).click(),
  ]);
  if (page.url().includes('spawn-pending')) {
    await page.locator('#progress-bar, .progress-bar').first().waitFor({ timeout: 30_000 });
  }
  await page.waitForURL(/\/user\/researcher\/lab/, { timeout: 120_000 });
  await page.locator('#jp-main-dock-panel, .jp-LabShell').first().waitFor({ timeout: 60_000 });

  const token = await stack.userToken('researcher');
  const inst = (await (await stack.api('/instances/default', token)).json()) as {
    size: string;
    state: string;
  };
  assert.equal(inst.state, 'running');
  assert.equal(inst.size, 'cpu-large', 'the size chosen on the form');
  assert.deepEqual(consoleErrors, []);
  await stack.api('/instances/default/stop', token, { method: 'POST' });
});
