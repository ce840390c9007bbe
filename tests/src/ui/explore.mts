import { startStack } from '../stack.js';
import { launchBrowser, login, openLab } from './browser.js';
import { launchAndWait } from './helpers.js';
const stack = await startStack({ database: 'pglite' });
try {
  const token = await stack.userToken('researcher');
  await launchAndWait(stack, token);
  const browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await login(ctx, stack.url, 'researcher', stack.password);
  await openLab(page, stack.url, 'researcher');
  console.log('menubar', await page.getByRole('menuitem').allTextContents());
  await page.getByRole('menuitem', { name: 'Settings' }).first().click();
  await page.waitForTimeout(500);
  console.log('after click', await page.getByRole('menuitem').allTextContents());
  console.log('jupyterapp?', await page.evaluate(() => typeof (window as any).jupyterapp));
  await page.keyboard.press('Escape');
  await page.getByRole('menuitem', { name: 'File' }).first().click();
  await page.waitForTimeout(500);
  console.log('file', await page.getByRole('menuitem').allTextContents());
  await browser.close();
} finally { await stack.stop(); }
