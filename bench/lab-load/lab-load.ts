/**
 * JupyterLab's time to first render in Chromium, with and without the ngsci extension, side by
 * side in one run.
 *
 * Two `jupyter lab` servers from the project's .venv, identical except that one has the
 * extension disabled through its own page config (JUPYTER_CONFIG_DIR/labconfig/page_config.json,
 * so the shared venv is not touched). Runs alternate between them, each in a fresh browser
 * context (cold cache for the page, like a new login), after one discarded warm-up each. A run
 * is timed from navigation start to the Launcher being on screen (JupyterLab's first useful
 * render), measured inside the page with performance.now().
 *
 * The servers are plain JupyterLab without a hub, so the extension's requests to the service
 * get 404s: the figure is the extension's own cost (bundle, activation, first render of the
 * status bar item), not the service's latency, which is asynchronous and never blocks the page.
 *
 * Usage: npm run lab-load -w @ngsci/bench -- [--runs 15]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VENV = process.env.NGSCI_VENV ?? join(ROOT, '.venv');
const CHROMIUM = process.env.NGSCI_CHROMIUM ?? '/usr/bin/chromium';
const EXT = 'ngsci-labextension';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 3 || runs > 200) {
  console.error('--runs must be an integer from 3 to 200');
  process.exit(2);
}

const freePort = () =>
  new Promise<number>((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

interface Lab {
  name: string;
  url: string;
  proc: ChildProcess;
  dir: string;
}

async function startLab(name: string, disableExtension: boolean): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), `ngsci-lab-load-${name}-`));
  const config = join(dir, 'config');
  mkdirSync(join(config, 'labconfig'), { recursive: true });
  writeFileSync(
    join(config, 'labconfig', 'page_config.json'),
    JSON.stringify(disableExtension ? { disabledExtensions: { [EXT]: true } } : {}),
  );
  // the same settings for both: no news poll, no announcements in the way
  mkdirSync(join(dir, 'settings'), { recursive: true });
  writeFileSync(
    join(dir, 'settings', 'overrides.json'),
    JSON.stringify({
      '@jupyterlab/apputils-extension:notification': { fetchNews: 'false', checkForUpdates: false },
    }),
  );
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const proc = spawn(
    join(VENV, 'bin', 'jupyter'),
    [
      'lab',
      '--no-browser',
      `--port=${port}`,
      '--ip=127.0.0.1',
      `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${dir}`,
      `--LabApp.workspaces_dir=${join(dir, 'ws')}`,
      `--LabServerApp.user_settings_dir=${join(dir, 'user-settings')}`,
      '--allow-root',
    ],
    {
      env: {
        ...process.env,
        JUPYTER_CONFIG_DIR: config,
        JUPYTERLAB_SETTINGS_DIR: join(dir, 'user-settings'),
        JUPYTERLAB_WORKSPACES_DIR: join(dir, 'ws'),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/api`)).ok) break;
    } catch {
      // not up yet
    }
    if (i > 120 || proc.exitCode !== null)
      throw new Error(`jupyter lab (${name}) did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { name, url: `${url}/lab?token=${token}&reset`, proc, dir };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function bundle(): { files: number; bytes: number; gzip: number } {
  const dir = join(ROOT, 'labextension', 'ngsci_labextension', 'labextension', 'static');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  let bytes = 0;
  let gzip = 0;
  for (const f of files) {
    bytes += statSync(join(dir, f)).size;
    gzip += gzipSync(readFileSync(join(dir, f))).length;
  }
  return { files: files.length, bytes, gzip };
}

const labs = [await startLab('with', false), await startLab('without', true)];
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const times: Record<string, number[]> = { with: [], without: [] };
try {
  const once = async (lab: Lab): Promise<{ ms: number; ngsci: boolean }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(lab.url);
    await page.locator('.jp-Launcher').first().waitFor({ state: 'visible', timeout: 120_000 });
    const ms = await page.evaluate(() => performance.now());
    const ngsci =
      (await page.locator('#ngsci-sidebar').count()) > 0 ||
      (await page.getByRole('tab', { name: /ngsci/i }).count()) > 0;
    await context.close();
    return { ms, ngsci };
  };
  for (const lab of labs) {
    const warm = await once(lab); // discarded: fills the OS page cache for the server side
    if (warm.ngsci !== (lab.name === 'with'))
      throw new Error(
        `the extension is ${warm.ngsci ? 'loaded' : 'missing'} on the '${lab.name}' server`,
      );
  }
  for (let i = 0; i < runs; i++) {
    const order = i % 2 ? [labs[1]!, labs[0]!] : labs;
    for (const lab of order) times[lab.name]!.push((await once(lab)).ms);
  }
} finally {
  await browser.close();
  for (const lab of labs) {
    lab.proc.kill('SIGTERM');
    await new Promise((r) => (lab.proc.exitCode !== null ? r(null) : lab.proc.once('exit', r)));
    rmSync(lab.dir, { recursive: true, force: true });
  }
}

const withExt = median(times.with!);
const without = median(times.without!);
const b = bundle();
const fmt = (n: number) => `${n.toFixed(0)} ms`;
console.log(
  `JupyterLab time to first render (navigation start → Launcher visible), ${runs} runs each, alternating:`,
);
console.log(
  `  without ngsci: median ${fmt(without)}  (min ${fmt(Math.min(...times.without!))}, max ${fmt(Math.max(...times.without!))})`,
);
console.log(
  `  with ngsci:    median ${fmt(withExt)}  (min ${fmt(Math.min(...times.with!))}, max ${fmt(Math.max(...times.with!))})`,
);
console.log(
  `  difference:    ${withExt - without >= 0 ? '+' : ''}${fmt(withExt - without)} (target ≤ +50 ms)`,
);
console.log(
  `ngsci bundle: ${b.files} JS files, ${(b.bytes / 1024).toFixed(1)} KiB, ${(b.gzip / 1024).toFixed(1)} KiB gzipped`,
);
