/**
 * bench/spawn: time from a launch request to JupyterLab answering, over N spawns, for ngsci's
 * local provisioner (request → hub → spawner-bridge → service → process → ready) and for
 * JupyterHub's own SimpleLocalProcessSpawner running the same single-user command, on the same
 * machine in one run, alternating so both see the same load. Prints medians and their ratio.
 * Usage: npm run spawn -w @ngsci/bench [-- --runs 10]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startStack, until } from '../../tests/src/stack.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 100)
  throw new Error('--runs must be a whole number from 1 to 100');

const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });

async function startPlainHub() {
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-bench-plain-'));
  const token = randomBytes(16).toString('hex');
  const port = await freePort();
  const env = {
    ...process.env,
    BENCH_DATA_DIR: dir,
    BENCH_HUB_PORT: String(port),
    BENCH_HUB_API_PORT: String(await freePort()),
    BENCH_PROXY_API_PORT: String(await freePort()),
    BENCH_CHP: join(ROOT, 'node_modules', '.bin', 'configurable-http-proxy'),
    BENCH_SINGLEUSER: join(ROOT, '.venv', 'bin', 'jupyterhub-singleuser'),
    BENCH_TOKEN: token,
  };
  const child = spawn(
    join(ROOT, '.venv', 'bin', 'jupyterhub'),
    ['-f', join(ROOT, 'bench', 'spawn', 'plain_jupyterhub_config.py')],
    {
      cwd: dir,
      env,
      stdio: 'ignore',
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/hub/api/`)).ok, 'the plain hub', 60);
  const api = (path: string, method = 'GET') =>
    fetch(`${url}/hub/api${path}`, { method, headers: { authorization: `token ${token}` } });
  return {
    url,
    api,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function timeUntilAnswers(url: string, token: string, t0: number): Promise<number> {
  await until(
    async () => {
      const r = await fetch(url, { headers: { authorization: `token ${token}` } });
      await r.body?.cancel();
      return r.status === 200;
    },
    url,
    120,
  );
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const stack = await startStack({ database: 'pglite', env: { NGSCI_LOG_LEVEL: 'warn' } });
const plain = await startPlainHub();
const ngsciTimes: number[] = [];
const plainTimes: number[] = [];
try {
  const token = await stack.userToken('researcher');
  for (let i = 0; i < runs; i++) {
    // ngsci: the user's launch request through the service
    let t0 = performance.now();
    const res = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    if (res.status !== 202) throw new Error(`launch failed: ${res.status} ${await res.text()}`);
    ngsciTimes.push(await timeUntilAnswers(`${stack.url}/user/researcher/api`, token, t0));
    await stack.api('/instances/default/stop', token, { method: 'POST' });
    await until(
      async () =>
        ((await (await stack.api('/instances/default', token)).json()) as { state: string })
          .state === 'stopped',
      'ngsci stop',
      60,
    );

    // the peer: the hub's REST spawn with SimpleLocalProcessSpawner
    t0 = performance.now();
    const r = await plain.api('/users/bench/server', 'POST');
    if (r.status !== 201 && r.status !== 202) throw new Error(`plain spawn failed: ${r.status}`);
    plainTimes.push(await timeUntilAnswers(`${plain.url}/user/bench/api`, 'none', t0));
    await plain.api('/users/bench/server', 'DELETE');
    await until(
      async () => {
        const u = (await (await plain.api('/users/bench')).json()) as {
          servers: Record<string, unknown>;
        };
        return !u.servers[''];
      },
      'plain stop',
      60,
    );
    process.stdout.write(
      `run ${i + 1}/${runs}: ngsci ${ngsciTimes.at(-1)!.toFixed(0)} ms, plain ${plainTimes.at(-1)!.toFixed(0)} ms\n`,
    );
  }
} finally {
  await stack.stop();
  await plain.stop();
}
const a = median(ngsciTimes);
const b = median(plainTimes);
console.log(`\nspawn to JupyterLab answering, median of ${runs}:`);
console.log(`  ngsci local provisioner          ${a.toFixed(0)} ms`);
console.log(`  SimpleLocalProcessSpawner (peer) ${b.toFixed(0)} ms`);
console.log(`  ratio ngsci / peer               ${(a / b).toFixed(2)}x   (target <= 1.30x)`);
