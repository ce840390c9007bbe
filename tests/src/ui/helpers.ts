/** Steps the UI tests share: launching through the API, sections of the sidebar, themes, screenshots. */
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { until, type Stack } from '../stack.js';
import { collectErrors, launchBrowser, login, openLab } from './browser.js';

export interface Inst {
  id: string;
  state: string;
  size: string;
}

export async function launchAndWait(
  stack: Stack,
  token: string,
  size = 'cpu-small',
): Promise<Inst> {
  const res = await stack.api('/instances', token, {
    method: 'POST',
    body: JSON.stringify({ size }),
  });
  if (res.status !== 202) throw new Error(`launch: ${res.status} ${await res.text()}`);
  return until(
    async () => {
      const i = (await (await stack.api('/instances/default', token)).json()) as Inst;
      if (i.state === 'failed') throw new Error(`the instance failed: ${JSON.stringify(i)}`);
      return i.state === 'running' ? i : null;
    },
    'the instance to run',
    120,
    stack,
  );
}

export interface LabSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** console errors the page has logged so far */
  errors: string[];
}

/**
 * The set-up most UI tests start from: `user`'s machine launched through the API and running,
 * and that user signed in through the hub's form with JupyterLab open in Chromium.
 */
export async function researcherInLab(
  stack: Stack,
  token: string,
  opts: { user?: string; size?: string; viewport?: { width: number; height: number } } = {},
): Promise<LabSession> {
  const user = opts.user ?? 'researcher';
  const browser = await launchBrowser();
  await launchAndWait(stack, token, opts.size ?? 'cpu-small');
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 860 },
  });
  const page = await login(context, stack.url, user, stack.password);
  const errors = collectErrors(page);
  await openLab(page, stack.url, user);
  await dismissNews(page);
  return { browser, context, page, errors };
}

/** Opens the ngsci sidebar (its tab in the left bar) and returns it. */
export async function openSidebar(page: Page): Promise<Locator> {
  const sidebar = page.locator('#ngsci-sidebar');
  if (!(await sidebar.isVisible())) await page.getByRole('tab', { name: /ngsci/i }).click();
  await sidebar.waitFor({ state: 'visible' });
  return sidebar;
}

export type SectionName = 'Instance' | 'Resize' | 'Usage' | 'Billing';

/** One section of the sidebar (Instance, Resize, Usage, Billing) as a region of the page. */
export function section(page: Page, name: SectionName): Locator {
  return page.locator(`#ngsci-sidebar .jp-ngsci-section[aria-label="${name}"]`);
}

/** Expands only `name`, so it has the sidebar's whole height. */
export async function showOnly(page: Page, name: SectionName): Promise<void> {
  await dismissNews(page);
  for (const other of ['Instance', 'Resize', 'Usage', 'Billing'] as const) {
    const title = page.locator('#ngsci-sidebar .lm-AccordionPanel-title', { hasText: other });
    const expanded = (await title.getAttribute('aria-expanded')) === 'true';
    if (expanded !== (other === name)) await title.click();
  }
}

/** Runs a command through the command palette, as a keyboard user would. */
export async function runFromPalette(page: Page, label: string): Promise<void> {
  const input = page.locator('#command-palette .lm-CommandPalette-input');
  // Ctrl+Shift+C toggles the palette; focus may be in an editor that swallows the first press
  for (let i = 0; i < 4 && !(await input.isVisible()); i++) {
    await page.keyboard.press('Control+Shift+C');
    await input.waitFor({ state: 'visible', timeout: 2000 }).catch(() => undefined);
  }
  await input.fill(label);
  await page
    .locator('#command-palette .lm-CommandPalette-item', { hasText: label })
    .first()
    .click();
}

export async function setTheme(
  page: Page,
  theme: 'JupyterLab Light' | 'JupyterLab Dark',
): Promise<void> {
  await runFromPalette(page, `Use Theme: ${theme}`);
  // a string, evaluated in the page: this package's TypeScript has no DOM types
  await page.waitForFunction(
    `document.body.dataset.jpThemeLight === '${theme.includes('Dark') ? 'false' : 'true'}'`,
  );
  await page.waitForTimeout(400);
}

/** JupyterLab's "get notified about news?" toast: answered no, so it covers nothing. */
export async function dismissNews(page: Page): Promise<void> {
  const no = page.locator('.Toastify').getByRole('button', { name: 'No', exact: true });
  // the toast slides in, so it is never "stable" for a normal click; a DOM click does it
  if (await no.isVisible().catch(() => false))
    await no.dispatchEvent('click').catch(() => undefined);
  await no.waitFor({ state: 'detached', timeout: 5000 }).catch(() => undefined);
}

/** Screenshots go to docs/images only when NGSCI_SCREENSHOTS names that folder (the screenshot script). */
export async function screenshot(target: Page | Locator, name: string): Promise<void> {
  const dir = process.env.NGSCI_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await dismissNews('page' in target ? target.page() : target);
  await target.screenshot({ path: join(dir, `${name}.png`), animations: 'disabled' });
}

/** An answer of the ngsci API the page received: its path (no query), status, and when. */
export interface ApiCall {
  path: string;
  status: number;
  at: number;
}

/**
 * Follows the page's calls to the ngsci API (its event streams aside, which stay open):
 * `answered(since)` lists those answered since then, and `quiet()` waits until none is under way
 * for half a second (so the figures on the page are those of the answers).
 */
export function trackApiCalls(
  page: Page,
  hubUrl: string,
): { answered(since: number): ApiCall[]; quiet(timeoutMs?: number): Promise<void> } {
  const prefix = `${hubUrl}/services/ngsci/api/v1`;
  const followed = (url: string) => url.startsWith(prefix) && !/\/events(\?|$)/.test(url);
  const pending = new Set<unknown>();
  const calls: ApiCall[] = [];
  let lastChange = Date.now();
  page.on('request', (r) => {
    if (!followed(r.url())) return;
    pending.add(r);
    lastChange = Date.now();
  });
  const done = (r: { url(): string }) => {
    if (pending.delete(r)) lastChange = Date.now();
  };
  page.on('requestfinished', done);
  page.on('requestfailed', done);
  page.on('response', (r) => {
    if (!followed(r.url())) return;
    calls.push({
      path: r.url().slice(prefix.length).split('?')[0]!,
      status: r.status(),
      at: Date.now(),
    });
  });
  return {
    answered: (since) => calls.filter((c) => c.at >= since),
    async quiet(timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      while (pending.size || Date.now() - lastChange < 500) {
        if (Date.now() > end)
          throw new Error(`the page's ngsci calls did not end in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
