/**
 * Kernel variables kept across a resize, as a researcher does it, in Chromium against the real
 * stack (hub, proxy, service, the local provisioner's real single-user JupyterLab and kernels):
 * a notebook defines `x = 42`, a numpy array, a pandas DataFrame and an open file; the resize
 * dialog's "Keep my variables" lists what is kept and that the open file is not, before the user
 * confirms; on the new size the notebook's new kernel has them back (the page says so) and the
 * snapshot is gone. Then the same from the notebook with `%ngsci resize SIZE --keep-state`: a
 * generator is listed and nothing resized until it is gone; the snapshot on the persistent home
 * is readable only by the user; reopened on the new size, the variables are back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { environOf, startStack, until, type Stack } from '../stack.js';
import { launchBrowser, login, waitForLab } from './browser.js';
import {
  dismissNews,
  launchAndWait,
  openSidebar,
  screenshot,
  section,
  showOnly,
  type Inst,
} from './helpers.js';

const NOTEBOOK = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {
    kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
  },
  cells: [
    [
      'import numpy as np, pandas as pd',
      'x = 42',
      'arr = np.arange(1_000_000, dtype="float64")',
      'df = pd.DataFrame({"city": ["Lyon", "Oslo"], "t": [12.5, 3.0]})',
      'log = open("keep-state.log", "w")',
      'print("defined")',
    ].join('\n'),
    'print("values:", x, arr.sum(), df.loc[1, "city"], df.t.sum())',
    'gen = (i for i in range(3))\n%ngsci resize cpu-small --keep-state',
    'del gen\n%ngsci resize cpu-small --keep-state',
    'print("again:", x, arr.sum(), df.loc[1, "city"], df.t.sum())',
  ].map((source, i) => ({
    cell_type: 'code',
    id: `c${i + 1}`,
    metadata: {},
    source,
    outputs: [],
    execution_count: null,
  })),
};

describe('kernel variables kept across a resize', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let token: string;
  const consoleLines: string[] = [];

  before(async () => {
    stack = await startStack({ database: 'pglite' });
    token = await stack.userToken('researcher');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const instance = async () =>
    (await (await stack.api('/instances/default', token)).json()) as Inst;

  const cells = () => page.locator('.jp-Notebook .jp-Cell');

  /** Runs cell `n` (0-based) and waits for its output to match. */
  async function run(n: number, expect: RegExp, timeout = 90_000): Promise<string> {
    await cells().nth(n).locator('.cm-content').click();
    await page.keyboard.press('Shift+Enter');
    const out = cells().nth(n).locator('.jp-OutputArea-output');
    try {
      await out.filter({ hasText: expect }).first().waitFor({ timeout });
    } catch (err) {
      throw new Error(`cell ${n + 1} shows: ${await cells().nth(n).innerText()}`, { cause: err });
    }
    return out.allInnerTexts().then((t) => t.join('\n'));
  }

  /** Opens the notebook and waits for its kernel (and the restore, when `restored`). */
  async function openNotebook(restored?: RegExp): Promise<void> {
    await page.goto(`${stack.url}/user/researcher/lab/tree/keep.ipynb`);
    await notebookReady(restored);
  }

  async function notebookReady(restored?: RegExp): Promise<void> {
    // the page's notice of the restore comes as soon as the kernel runs: watched from the start
    const notice = restored
      ? page
          .locator('.Toastify')
          .getByText(restored)
          .first()
          .waitFor({ timeout: 180_000 })
          .then(() => null)
          .catch((err: unknown) => err as Error)
      : Promise.resolve(null);
    await waitForLab(page, 120_000);
    await pickKernelIfAsked();
    await dismissNews(page);
    await page.locator('.jp-Notebook').first().waitFor({ state: 'visible', timeout: 60_000 });
    await page.getByText(/Python 3 \(ipykernel\) \| Idle/).waitFor({ timeout: 90_000 });
    const failed = await notice;
    if (failed) {
      await page.screenshot({ path: join(tmpdir(), 'ngsci-keep-state-restore.png') });
      const toasts = await page.locator('.Toastify').allInnerTexts();
      const home = environOf(stack.pidOf((await instance()).id)!).HOME!;
      const state = join(home, '.ngsci', 'state');
      throw new Error(
        `no notice of the restore; notices: ${JSON.stringify(toasts)}; ` +
          `${state}: ${JSON.stringify(existsSync(state) ? readdirSync(state) : null)}; ` +
          `console: ${JSON.stringify(consoleLines.slice(-20))}`,
        {
          cause: failed,
        },
      );
    }
  }

  /** The reopened notebook's old kernel died with the old machine: JupyterLab may ask for one. */
  async function pickKernelIfAsked(): Promise<void> {
    const select = page.locator('dialog.jp-Dialog', { hasText: 'Select Kernel' });
    await select
      .waitFor({ timeout: 8_000 })
      .then(() => select.getByRole('button', { name: 'Select' }).click())
      .catch(() => undefined);
  }

  test('from the resize dialog: what is kept is listed before confirming, and comes back on the new size', async () => {
    const first = await launchAndWait(stack, token, 'cpu-small');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await login(context, stack.url, 'researcher', stack.password);
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.goto(`${stack.url}/user/researcher/lab`);
    await waitForLab(page);
    const put = (await page.evaluate(`(async () => {
      const xsrf = /_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const base = location.pathname.replace(/lab.*$/, '') + 'api';
      const r = await fetch(base + '/contents/keep.ipynb', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf },
        body: JSON.stringify({ type: 'notebook', format: 'json', content: ${JSON.stringify(NOTEBOOK)} }),
      });
      return r.status;
    })()`)) as number;
    assert.equal(put, 201);
    await openNotebook();
    await run(0, /defined/);

    await openSidebar(page);
    await showOnly(page, 'Resize');
    await section(page, 'Resize').getByRole('button', { name: 'Resize to CPU large' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Resize to CPU large?').waitFor();
    await dialog.getByLabel('Keep my variables').check();
    const kept = dialog.getByRole('list', { name: 'Variables kept' });
    await kept.waitFor({ timeout: 60_000 });
    const keptText = await kept.innerText();
    for (const name of ['x', 'arr', 'df', 'np', 'pd'])
      assert.match(keptText, new RegExp(`keep\\.ipynb: .*\\b${name}\\b`), keptText);
    assert.doesNotMatch(keptText, /\blog\b/);
    const notKept = await dialog.getByRole('list', { name: 'Variables not kept' }).innerText();
    assert.match(
      notKept,
      /keep\.ipynb: log — an open file/,
      'the open file is listed, not dropped',
    );
    await screenshot(page, 'resize-keep-state-light');
    await dialog.getByRole('button', { name: 'Save and resize' }).click();

    // the page follows the resize and reloads into JupyterLab on the new size
    await page.waitForEvent('load', { timeout: 180_000 }).catch(async (err: unknown) => {
      // what the page showed, and where the resize was, say why it did not come back
      const overlay = await page
        .locator('.jp-ngsci-overlay')
        .innerText({ timeout: 2000 })
        .catch(() => null);
      throw new Error(
        `the page did not come back after the resize: overlay ${JSON.stringify(overlay)}; ` +
          `instance ${JSON.stringify(await instance())}; ` +
          `console: ${JSON.stringify(consoleLines.slice(-20))}`,
        { cause: err },
      );
    });
    await waitForLab(page, 120_000);
    const now = await instance();
    assert.equal(now.size, 'cpu-large');
    assert.notEqual(now.id, first.id, 'a resize is a new instance');
    // JupyterLab reopens the notebook; its new kernel restores (and the page says so)
    await notebookReady(/keep\.ipynb: restored .*\bdf\b/);
    const values = await run(1, /values:/);
    assert.match(values, /values: 42 499999500000\.0 Oslo 15\.5/);

    // the snapshot is deleted once restored
    const home = environOf(stack.pidOf(now.id)!).HOME!;
    assert.deepEqual(readdirSync(join(home, '.ngsci', 'state')), []);
  });

  test('from the notebook: %ngsci resize --keep-state lists what it cannot keep, then keeps the rest', async () => {
    const before = await instance();
    const refused = await run(2, /Nothing was resized/);
    assert.match(refused, /keep\.ipynb\s+gen\s+generator\s+a generator or coroutine/, refused);
    assert.equal((await instance()).id, before.id, 'nothing resized before the user says so');

    const said = await run(3, /resizing server 'default'/);
    assert.match(said, /ngsci: saved 5 variables of 1 notebook \([\d.]+ MB in ~\/\.ngsci\/state\)/);
    const moved = await until(
      async () => {
        const i = await instance();
        return i.id !== before.id && i.state === 'running' ? i : null;
      },
      'the new cpu-small instance to run',
      180,
      stack,
    );
    assert.equal(moved.size, 'cpu-small');
    // the snapshot waits on the persistent home, readable by the user only
    const home = environOf(stack.pidOf(moved.id)!).HOME!;
    const dir = join(home, '.ngsci', 'state');
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^[0-9a-f]{32}\.pkl$/, 'the name says nothing of the notebook');
    assert.equal(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    await openNotebook(/keep\.ipynb: restored .*\barr\b/);
    assert.match(await run(4, /again:/), /again: 42 499999500000\.0 Oslo 15\.5/);
    assert.deepEqual(readdirSync(dir), [], 'deleted once restored');
  });
});
