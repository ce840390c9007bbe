/**
 * `%%ngsci stop_after` as a researcher uses it: in JupyterLab (Chromium) against the real stack, a
 * notebook runs a cell under the magic. The notebook is saved with the cell's output before the
 * machine stops, the output holds no traceback, the machine is stopped, and the page says what
 * happened (no "server unavailable" dialog). Before that, `%ngsci budget` rendered in JupyterLab
 * keeps its dollar amounts as text: MathJax makes no formula of them.
 * Then the same magic in a kernel with no page (jupyter_client): the service stops the machine
 * when the grace is over, and the cell's output has no traceback either.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { environOf, isAlive, startStack, until, type Stack } from './stack.js';
import { launchBrowser, login, waitForLab } from './ui/browser.js';
import { dismissNews, launchAndWait, screenshot, type Inst } from './ui/helpers.js';
import { runKernelDriver } from './kernel-driver.js';

interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
}
interface Notebook {
  cells: Array<{ source: string | string[]; outputs?: NotebookOutput[] }>;
}

const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));

describe('%%ngsci stop_after', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;

  before(async () => {
    stack = await startStack({ database: 'postgres' });
    token = await stack.userToken('researcher');
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const instance = async () =>
    (await (await stack.api('/instances/default', token)).json()) as Inst & {
      stoppedAt: string | null;
    };

  test('in JupyterLab: the notebook is saved with the output, then the machine stops, and the page says so', async () => {
    const inst = await launchAndWait(stack, token, 'cpu-small');
    const pid = stack.pidOf(inst.id);
    assert.ok(pid && isAlive(pid));
    const home = environOf(pid).HOME!;
    page = await login(context, stack.url, 'researcher', stack.password);

    // a notebook with two cells, written through the contents API as a user's file would be
    const notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {
        kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      },
      cells: [
        {
          cell_type: 'code',
          id: 'c1',
          metadata: {},
          source: '%ngsci budget',
          outputs: [],
          execution_count: null,
        },
        {
          cell_type: 'code',
          id: 'c2',
          metadata: {},
          source: '%%ngsci stop_after\nanswer = 6 * 7\nprint("trained:", answer)',
          outputs: [],
          execution_count: null,
        },
      ],
    };
    await page.goto(`${stack.url}/user/researcher/lab`);
    await waitForLab(page);
    const put = (await page.evaluate(`(async () => {
      const xsrf = /_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const base = location.pathname.replace(/lab.*$/, '') + 'api';
      const r = await fetch(base + '/contents/train.ipynb', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf },
        body: JSON.stringify({ type: 'notebook', format: 'json', content: ${JSON.stringify(notebook)} }),
      });
      return r.status;
    })()`)) as number;
    assert.equal(put, 201);
    await page.goto(`${stack.url}/user/researcher/lab/tree/train.ipynb`);
    await waitForLab(page);
    await dismissNews(page);
    // the kernel is up when the status bar says idle (a cell run before that does not run)
    await page.locator('.jp-Notebook').first().waitFor({ state: 'visible', timeout: 60_000 });
    await page.getByText(/Python 3 \(ipykernel\) \| Idle/).waitFor({ timeout: 90_000 });
    await dismissNews(page);

    // %ngsci budget: the dollar amounts stay text (MathJax would make "$0.09, burning $0.38" a formula)
    const cells = page.locator('.jp-Notebook .jp-Cell');
    await cells.nth(0).locator('.cm-content').click();
    await page.keyboard.press('Shift+Enter');
    const table = cells.nth(0).locator('.jp-OutputArea-output table.jp-ngsci-table');
    await table.waitFor({ timeout: 60_000 }).catch(async (err: unknown) => {
      await page.screenshot({ path: join(tmpdir(), 'ngsci-stop-after-budget.png') });
      throw new Error(`no %ngsci budget table; the cell shows: ${await cells.nth(0).innerText()}`, {
        cause: err,
      });
    });
    await page.waitForTimeout(1500); // MathJax typesets asynchronously
    assert.equal(await cells.nth(0).locator('mjx-container, .MathJax').count(), 0, 'no formula');
    const caption = (await table.locator('caption').textContent()) ?? '';
    assert.match(caption, /spent \$[\d.,]+.*burning \$[\d.]+\/h/, caption);

    // %%ngsci stop_after
    await cells.nth(1).locator('.cm-content').click();
    await page.keyboard.press('Shift+Enter');
    const said = page.locator('.jp-ngsci-stopped .jp-ngsci-stopped-headline');
    await said.waitFor({ timeout: 90_000 });
    const stopped = await until(
      async () => {
        const i = await instance();
        return i.state === 'stopped' ? i : null;
      },
      'the instance to stop',
      90,
      stack,
    );
    assert.equal(isAlive(pid), false, 'the server process is gone');
    await page
      .locator('.jp-ngsci-stopped-headline', { hasText: /^Stopped by/ })
      .waitFor({ timeout: 60_000 });
    const headline = (await said.textContent()) ?? '';
    assert.match(
      headline,
      /^Stopped by %%ngsci stop_after at \d\d:\d\d after the cell finished; this run cost (\$[\d.,]+|< \$0\.0001)$/,
    );
    assert.ok(!headline.endsWith('$0.00'), 'a run that cost something never reads $0.00');
    assert.ok(stopped.stoppedAt);
    await page.getByRole('link', { name: 'Start again' }).waitFor();
    await screenshot(page, 'stop-after');
    assert.equal(
      await page.getByText(/Server unavailable or unreachable/i).count(),
      0,
      'no "server unavailable" dialog',
    );

    // the notebook on disk has the cell's output and no traceback
    const saved = JSON.parse(readFileSync(join(home, 'train.ipynb'), 'utf8')) as Notebook;
    const outputs = saved.cells[1]!.outputs ?? [];
    const all = outputs
      .map(
        (o) =>
          text(o.text) +
          Object.values(o.data ?? {})
            .map(text)
            .join(''),
      )
      .join('\n');
    assert.match(all, /trained: 42/, 'the cell output was saved before the stop');
    assert.match(all, /stops once JupyterLab has saved the open documents/);
    assert.ok(!outputs.some((o) => o.output_type === 'error'), JSON.stringify(outputs));
    assert.doesNotMatch(all, /Traceback|KeyboardInterrupt/);
    const budget = (saved.cells[0]!.outputs ?? []).map((o) => text(o.data?.['text/html'])).join('');
    assert.ok(budget.includes('&#36;') && !budget.includes('$'), 'the saved HTML has no raw $');
  });

  test('in a kernel with no page: the service stops the machine after the grace; no traceback', async () => {
    if ((await instance()).state !== 'stopped') {
      await stack.api('/instances/default/stop', token, { method: 'POST' });
      await until(
        async () => ((await instance()).state === 'stopped' ? true : null),
        'the first machine to stop',
        60,
        stack,
      );
    }
    const inst = await launchAndWait(stack, token, 'cpu-small');
    const pid = stack.pidOf(inst.id);
    assert.ok(pid && isAlive(pid));
    const env = environOf(pid);
    const res = await runKernelDriver({
      env,
      cwd: env.HOME,
      cells: ['%%ngsci stop_after --grace 5s\nanswer = 6 * 7\nprint("trained:", answer)'],
    });
    assert.equal(res.status, 0, res.stderr);
    const cell = JSON.parse(res.stdout.trim().split('\n')[0]!) as {
      stdout: string;
      stderr: string;
      error: string | null;
    };
    assert.equal(cell.error, null, cell.stderr);
    assert.match(cell.stdout, /trained: 42/);
    assert.match(cell.stdout, /within 5 s/);
    assert.doesNotMatch(cell.stdout + cell.stderr, /Traceback|KeyboardInterrupt/);
    // the driver's kernel ended with the cell; the machine stops by itself once the grace is over
    const stopped = await until(
      async () => {
        const i = await instance();
        return i.id === inst.id && i.state === 'stopped' ? i : null;
      },
      'the stop after the grace',
      60,
      stack,
    );
    assert.equal(stopped.state, 'stopped');
    assert.equal(isAlive(pid), false);
  });
});
