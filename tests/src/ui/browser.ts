/**
 * Chromium for the UI tests and the lab-load benchmark: Debian's /usr/bin/chromium driven by
 * playwright-core (a test tool's own browser download does not work here), plus the steps every
 * UI test takes: log in through the hub's form, open JupyterLab, collect console errors.
 */
import {
  chromium,
  type Browser,
  type BrowserContext,
  type ConsoleMessage,
  type Page,
} from 'playwright-core';
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.NGSCI_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not at ${CHROMIUM}: install it (apt-get install -y chromium) or set NGSCI_CHROMIUM`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Console errors and page errors of a page, minus the ones that are the test's own doing. */
export function collectErrors(page: Page, ignore: RegExp[] = []): string[] {
  const errors: string[] = [];
  const skip = (text: string) => ignore.some((r) => r.test(text));
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error' && !skip(m.text())) errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    if (!skip(String(e))) errors.push(`pageerror: ${String(e)}`);
  });
  return errors;
}

/** Logs in through the hub's login form; the context keeps the hub's cookies. */
export async function login(
  context: BrowserContext,
  url: string,
  user: string,
  password: string,
): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${url}/hub/login`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL(/\/hub\/(home|spawn|user)/, { timeout: 30_000 });
  return page;
}

/** Opens JupyterLab of a running server and waits until the shell and the ngsci tab are there. */
export async function openLab(page: Page, url: string, user: string, server = ''): Promise<void> {
  await page.goto(`${url}/user/${user}/${server ? `${server}/` : ''}lab`);
  await waitForLab(page);
}

export async function waitForLab(page: Page, timeout = 90_000): Promise<void> {
  await page.locator('#jp-main-dock-panel').waitFor({ state: 'visible', timeout });
  await page.getByRole('tab', { name: /ngsci/i }).waitFor({ timeout });
}
