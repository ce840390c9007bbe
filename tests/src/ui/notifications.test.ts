/**
 * The service's notices in JupyterLab, produced through their real paths against the real stack:
 * the meter warns an idle server (short idle settings: a 40 s idle timeout for the researcher, a
 * 35 s warning) and the researcher keeps it running from the notification; then the instance
 * agent, reading a recorded AWS spot interruption from a stand-in metadata endpoint, reports it,
 * and JupyterLab saves the open document and says the cloud may take the machine back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { agentPidOf, environOf, ROOT, startStack, until, type Stack } from '../stack.js';
import { collectErrors, launchBrowser, login, openLab, waitForLab } from './browser.js';
import { dismissNews, launchAndWait, openSidebar, section, type Inst } from './helpers.js';
import { recordedSpotNotice, type SpotMetadata } from '../spot-metadata.js';

const WARNING_SECONDS = 35;

interface Notice {
  id: number;
  kind: string;
  title: string;
  createdAt: string;
}

describe('ngsci notifications in JupyterLab', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let adminToken: string;
  let errors: string[];
  let inst: Inst;
  let quotaId = 0;
  let metadata: SpotMetadata;
  let agent: ChildProcess | null = null;
  const dataset = mkdtempSync(join(tmpdir(), 'ngsci-ui-dataset-'));

  const notices = async (): Promise<Notice[]> =>
    (
      (await (await stack.api('/notifications?limit=100', token)).json()) as {
        notifications: Notice[];
      }
    ).notifications;

  before(async () => {
    // an AWS metadata endpoint with a recorded spot interruption notice (IMDSv2)
    metadata = await recordedSpotNotice();

    // the meter cycles and culls every second and warns 35 s before an idle stop
    stack = await startStack({
      database: 'pglite',
      env: {
        NGSCI_METER_INTERVAL: '1',
        NGSCI_CULL_EVERY: '1',
        NGSCI_CULL_WARNING: String(WARNING_SECONDS),
      },
    });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken('admin');
    // the researcher's machines stop after 40 idle seconds (the hub's activity is reported every
    // 5 minutes, so a fresh server counts as idle from its start)
    const q = await stack.api('/admin/quotas', adminToken, {
      method: 'POST',
      body: JSON.stringify({
        subjectKind: 'user',
        subjectName: 'researcher',
        idleTimeoutCpuSeconds: WARNING_SECONDS + 5,
      }),
    });
    assert.equal(q.status, 201, await q.clone().text());
    quotaId = ((await q.json()) as { id: number }).id;
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await login(context, stack.url, 'researcher', stack.password);
    errors = collectErrors(page);
  });

  after(async () => {
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    await browser?.close();
    await stack?.stop();
    await metadata?.close();
    rmSync(dataset, { recursive: true, force: true });
  });

  test('an idle server is announced with Keep running, and keeping it running keeps it past its stop time', async () => {
    inst = await launchAndWait(stack, token, 'cpu-small');
    // the meter warns within seconds of the server becoming idle
    const warning = await until(
      async () => (await notices()).find((n) => n.kind === 'idle_stop') ?? null,
      'the idle-stop warning',
      30,
      stack,
    );
    await openLab(page, stack.url, 'researcher');
    await dismissNews(page);
    const toast = page
      .locator('.Toastify__toast')
      .filter({ hasText: /default is idle and stops in about \d+ min/ });
    await toast.waitFor();
    assert.match((await toast.textContent()) ?? '', /Choose "Keep running" to keep it/);
    const keep = toast.getByRole('button', { name: 'Keep running' });
    // the toast slides in, so it is never "stable" for a normal click; a DOM click does it
    await keep.dispatchEvent('click');
    await page.getByText('default keeps running.').waitFor();

    // past the stop time the warning announced, the server still runs
    const stopAt = Date.parse(warning.createdAt) + WARNING_SECONDS * 1000;
    await page.waitForTimeout(Math.max(0, stopAt - Date.now()) + 4000);
    const now = (await (await stack.api('/instances/default', token)).json()) as Inst;
    assert.equal(now.state, 'running');
    assert.equal(now.id, inst.id, 'the same instance, not a new one');
    await openSidebar(page);
    await section(page, 'Instance').getByText('Running').waitFor();
    // from here on the researcher has the default (hour-long) idle timeout
    const del = await stack.api(`/admin/quotas/${quotaId}`, adminToken, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.deepEqual(errors, []);
  });

  test('a spot interruption reported by the agent saves the open document and says so', async () => {
    // the page checks for notices every 15 s (the shortest setting) instead of every minute
    // (strings, evaluated in the page: this package's TypeScript has no DOM types)
    const saved = (await page.evaluate(`(async () => {
      const xsrf = /_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const base = location.pathname.replace(/lab.*$/, '') + 'api';
      const headers = { 'content-type': 'application/json', 'x-xsrftoken': xsrf };
      const root = location.pathname.replace(/lab.*$/, '');
      const s = await fetch(root + 'lab/api/settings/ngsci-labextension:notifications', {
        method: 'PUT',
        headers,
        body: JSON.stringify({ raw: '{"pollSeconds": 15}' }),
      });
      const f = await fetch(base + '/contents/notes.txt', {
        method: 'PUT',
        headers,
        body: JSON.stringify({ type: 'file', format: 'text', content: 'first line\\n' }),
      });
      return [s.status, f.status];
    })()`)) as number[];
    assert.deepEqual(saved, [204, 201]);
    await page.goto(`${stack.url}/user/researcher/lab/tree/notes.txt`);
    await waitForLab(page);
    await dismissNews(page);
    const editor = page.locator('.jp-FileEditor .cm-content');
    await editor.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('unsaved thought');
    const tab = page.getByRole('tab', { name: /notes\.txt/ });
    await page.locator('.lm-TabBar-tab.jp-mod-dirty', { hasText: 'notes.txt' }).waitFor();

    // the instance agent, in the server's own environment, sees the recorded interruption
    const pid = stack.pidOf(inst.id);
    assert.ok(pid, 'the server process is known');
    // ... with the agent credential of the agent the service started beside it
    const agentPid = await until(async () => agentPidOf(inst.id), 'the instance agent', 30);
    const serverEnv = {
      ...environOf(pid),
      NGSCI_AGENT_TOKEN: environOf(agentPid).NGSCI_AGENT_TOKEN!,
    };
    let agentLog = '';
    agent = spawn(
      join(ROOT, '.venv', 'bin', 'ngsci'),
      [
        'agent',
        '--dataset',
        dataset,
        '--cloud',
        'aws',
        '--metadata-url',
        metadata.url,
        '--spot-interval',
        '1s',
      ],
      { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));

    const toast = page.locator('.Toastify__toast').filter({
      hasText: 'The cloud may take this spot machine back soon. Your open documents were saved.',
    });
    await toast.waitFor({ timeout: 45_000 }).catch((err: unknown) => {
      throw new Error(`no spot notification (agent log: ${agentLog})`, { cause: err });
    });
    assert.match((await toast.textContent()) ?? '', /AWS is reclaiming your machine/);
    // the document was saved: the tab is clean and the file on the server has the typed line
    await page.locator('.lm-TabBar-tab.jp-mod-dirty', { hasText: 'notes.txt' }).waitFor({
      state: 'detached',
    });
    await tab.waitFor();
    const content = (await page.evaluate(`(async () => {
      const xsrf = /_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const base = location.pathname.replace(/lab.*$/, '') + 'api';
      const r = await fetch(base + '/contents/notes.txt?content=1', {
        headers: { 'x-xsrftoken': xsrf },
      });
      return r.status + ' ' + JSON.stringify((await r.json()).content ?? null);
    })()`)) as string;
    assert.match(content, /^200 "first line\\nunsaved thought/);
    assert.deepEqual(errors, []);
  });
});
