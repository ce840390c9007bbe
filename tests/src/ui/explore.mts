import { startStack } from '../stack.js';
import { launchBrowser, login, openLab } from './browser.js';
import { launchAndWait, openSidebar, section, dismissNews } from './helpers.js';
const stack = await startStack({ database: 'pglite' });
try {
  const token = await stack.userToken('researcher');
  await launchAndWait(stack, token);
  const browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await login(ctx, stack.url, 'researcher', stack.password);
  page.on('console', (m) => console.log('console', m.type(), m.text().slice(0, 200)));
  page.on('framenavigated', (f) => f === page.mainFrame() && console.log('nav', f.url()));
  await openLab(page, stack.url, 'researcher');
  await dismissNews(page);
  await openSidebar(page);
  await section(page, 'Instance').getByRole('button', { name: 'Resize to CPU large' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Save and resize' }).click();
  for (let i = 0; i < 12; i++) {
    await page.waitForTimeout(10000);
    const inst = await (await stack.api('/instances/default', token)).json();
    console.log(i, page.url(), inst.state, inst.size, (await section(page, 'Instance').textContent().catch(() => ''))?.slice(0, 150));
    await page.screenshot({ path: `/tmp/resize-${i}.png` });
  }
  await browser.close();
} finally { await stack.stop(); }
