import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../logger.js';
import { BUILT_IN_SIZES } from '../catalog.js';
import { LocalProvisioner, homeDirName, isAlive } from './local.js';
import { SystemAccounts } from './local-policy.js';
import { grantTraversal } from '../testing/traversal.js';
import type { ExitReport, ProvisionContext, ProvisionRequest } from './types.js';

const FAKE = fileURLToPath(new URL('../testing/fake-singleuser.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ngsci-local-'));
const size = BUILT_IN_SIZES.find((s) => s.id === 'cpu-large')!;

function provisioner(
  extraEnv: Record<string, string> = {},
  readyTimeoutSeconds = 10,
  agentCommand?: string,
  accounts?: SystemAccounts,
) {
  return new LocalProvisioner({
    accounts,
    agentCommand,
    command: process.execPath,
    args: [FAKE],
    homesDir: join(dir, 'homes'),
    runDir: join(dir, 'run'),
    logger: createLogger('silent'),
    baseEnv: { PATH: process.env.PATH ?? '', ...extraEnv },
    readyTimeoutSeconds,
  });
}

let n = 0;
function request(user = 'alice', env: Record<string, string> = {}): ProvisionRequest {
  n += 1;
  return {
    instanceId: `00000000-0000-4000-8000-00000000000${n}`,
    user,
    server: 'default',
    size,
    offer: size.offers[0]!,
    spot: false,
    env: { JUPYTERHUB_API_TOKEN: 'secret', ...env },
    baseUrl: `/user/${user}/`,
  };
}

function ctx(signal = new AbortController().signal): ProvisionContext & { reports: string[] } {
  const reports: string[] = [];
  return {
    reports,
    signal,
    report: async (r) => void reports.push(`${r.state ?? ''}:${r.message}`),
  };
}

const alive = isAlive;

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup) await c();
});

describe('local provisioner (fake single-user process)', () => {
  test('starts a process that answers, with the size as MEM_LIMIT and CPU_LIMIT, and stops it', async () => {
    const p = provisioner();
    cleanup.push(() => p.close({ stopInstances: true }));
    const req = request();
    const c = ctx();
    const { targetUrl, ref } = await p.start(req, c);
    assert.match(targetUrl, /^http:\/\/127\.0\.0\.1:\d+\/user\/alice\/$/);
    const api = (await (await fetch(`${targetUrl}api`)).json()) as { mem: string; cpu: string };
    assert.equal(api.mem, String(32 * 1024 ** 3));
    assert.equal(api.cpu, '8');
    assert.ok(c.reports.some((r) => r.startsWith('starting:')));
    const pid = ref.pid as number;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    assert.ok(environ.includes(`NGSCI_INSTANCE_ID=${req.instanceId}`));
    assert.ok(existsSync(join(dir, 'homes', 'alice')));
    await p.stop(req.instanceId, ref, c);
    assert.equal(alive(pid), false);
  });

  test('a crash after start is reported once, with the exit code', async () => {
    const p = provisioner({ FAKE_EXIT_AFTER_MS: '1500', FAKE_EXIT_CODE: '7' });
    cleanup.push(() => p.close({ stopInstances: true }));
    const reports: ExitReport[] = [];
    p.onExit((r) => reports.push(r));
    const req = request('bob');
    await p.start(req, ctx());
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(reports.length, 1);
    assert.equal(reports[0]?.exitCode, 7);
    assert.equal(reports[0]?.errorCode, 'process_exited');
  });

  test('an exit before ready fails the start with process_exited', async () => {
    const p = provisioner({ FAKE_EXIT_AFTER_MS: '10', FAKE_EXIT_CODE: '3', FAKE_NEVER_READY: '1' });
    await assert.rejects(
      p.start(request('carol'), ctx()),
      (err: Error & { code?: string }) =>
        err.code === 'process_exited' && /code 3/.test(err.message),
    );
  });

  test('a server that never answers is killed at the ready timeout', async () => {
    const p = provisioner({ FAKE_NEVER_READY: '1' }, 2);
    await assert.rejects(
      p.start(request('dan'), ctx()),
      (err: Error & { code?: string }) => err.code === 'ready_timeout',
    );
    assert.deepEqual(p.instanceIds(), []);
  });

  test('a cancelled start kills the process', async () => {
    const p = provisioner({ FAKE_NEVER_READY: '1' }, 30);
    const ac = new AbortController();
    const started = p.start(request('erin'), ctx(ac.signal));
    setTimeout(() => ac.abort(new Error('stop requested')), 1500);
    await assert.rejects(started, /stop requested/);
    assert.deepEqual(p.instanceIds(), []);
  });

  test('a new provisioner adopts a running process after a restart, and sees it die', async () => {
    const first = provisioner();
    const req = request('fay');
    const { ref } = await first.start(req, ctx());
    await first.close({ stopInstances: false });
    const second = provisioner();
    cleanup.push(() => second.close({ stopInstances: true }));
    const reports: ExitReport[] = [];
    second.onExit((r) => reports.push(r));
    assert.equal(await second.adopt(req.instanceId, ref), true);
    assert.equal(
      await second.adopt('00000000-0000-4000-8000-999999999999', ref),
      false,
      'a pid of another instance is not adopted',
    );
    process.kill(-(ref.pid as number), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(reports[0]?.errorCode, 'process_lost');
  });

  test('the agent runs beside the server with its instance id, and a stop ends both', async () => {
    const out = join(dir, 'agent.json');
    const agent = fileURLToPath(new URL('../testing/fake-agent.mjs', import.meta.url));
    const p = provisioner({ FAKE_AGENT_OUT: out }, 10, agent);
    const req = request('gil');
    const { ref } = await p.start(req, ctx());
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { pid: number; instance: string };
    assert.equal(seen.instance, req.instanceId);
    assert.ok(alive(seen.pid));
    const api = await fetch(`http://127.0.0.1:${ref.port as number}/user/gil/api`);
    assert.equal(api.status, 200, 'the server itself answers, under the same pid');
    assert.ok(
      readFileSync(`/proc/${ref.pid as number}/cmdline`, 'utf8').includes('fake-singleuser'),
    );
    await p.stop(req.instanceId, ref, ctx());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(alive(seen.pid), false, 'the agent is gone too');
  });

  test('a server that dies on its own takes its agent with it', async () => {
    const out = join(dir, 'agent-crash.json');
    const agent = fileURLToPath(new URL('../testing/fake-agent.mjs', import.meta.url));
    const p = provisioner({ FAKE_AGENT_OUT: out }, 10, agent);
    cleanup.push(() => p.close({ stopInstances: true }));
    const reports: ExitReport[] = [];
    p.onExit((r) => reports.push(r));
    const req = request('hal');
    const { ref } = await p.start(req, ctx());
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { pid: number };
    assert.ok(alive(seen.pid));
    // the server alone is killed, as a crash (or a cloud taking the machine) would end it
    process.kill(ref.pid as number, 'SIGKILL');
    for (let i = 0; i < 50 && alive(seen.pid); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(reports.length, 1, 'the exit is reported');
    assert.equal(alive(seen.pid), false, 'the agent did not outlive its server');
  });

  test("the agent's own variables (a recorded nvidia-smi, its GPU interval) reach the agent, not the server", async () => {
    const out = join(dir, 'agent-env.json');
    const agent = fileURLToPath(new URL('../testing/fake-agent.mjs', import.meta.url));
    const p = new LocalProvisioner({
      agentCommand: agent,
      agentEnv: { NGSCI_NVIDIA_SMI: '/opt/recorded/nvidia-smi', NGSCI_GPU_INTERVAL: '2s' },
      command: process.execPath,
      args: [FAKE],
      homesDir: join(dir, 'homes'),
      runDir: join(dir, 'run'),
      logger: createLogger('silent'),
      baseEnv: { PATH: process.env.PATH ?? '', FAKE_AGENT_OUT: out },
      readyTimeoutSeconds: 10,
    });
    const req = { ...request('ida'), agentToken: 'agent-credential' };
    const { ref } = await p.start(req, ctx());
    const environ = (pid: number) =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { pid: number };
    const a = environ(seen.pid);
    assert.equal(a.NGSCI_NVIDIA_SMI, '/opt/recorded/nvidia-smi');
    assert.equal(a.NGSCI_GPU_INTERVAL, '2s');
    assert.equal(a.NGSCI_AGENT_TOKEN, 'agent-credential');
    const server = environ(ref.pid as number);
    assert.equal(server.NGSCI_INSTANCE_ID, req.instanceId);
    for (const k of ['NGSCI_NVIDIA_SMI', 'NGSCI_GPU_INTERVAL', 'NGSCI_AGENT_TOKEN'])
      assert.equal(server[k], undefined, `the server has no ${k}`);
    await p.stop(req.instanceId, ref, ctx());
  });

  test('home directory names are safe for any user name', () => {
    assert.equal(homeDirName('alice'), 'alice');
    assert.equal(homeDirName('a/../b'), 'a_2f_.._2f_b');
    assert.equal(homeDirName('名'), '_540d_');
  });
});

const uidOf = (pid: number) =>
  Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe(
  'local provisioner with users isolation (a real system account)',
  {
    skip: process.getuid?.() !== 0 && 'needs root (useradd, setuid)',
  },
  () => {
    const prefix = `ut${process.pid % 10000}-`;
    let restore = () => {};
    after(() => {
      spawnSync('userdel', [`${prefix}hana`]);
      restore();
    });

    test("the server and its agent run as the user's own account; a restarted provisioner adopts and stops them", async () => {
      // the account must reach its home under the test dir (mkdtemp makes it 0700)
      chmodSync(dir, 0o711);
      const accounts = new SystemAccounts({ prefix, logger: createLogger('silent') });
      const agent = fileURLToPath(new URL('../testing/fake-agent.mjs', import.meta.url));
      // and the server and agent scripts, wherever the checkout is (mktemp -d clones are 0700)
      restore = grantTraversal([FAKE, agent, process.execPath]);
      const home = join(dir, 'homes', 'hana');
      const env = { FAKE_AGENT_OUT: join(home, 'agent.json') };
      const first = provisioner(env, 10, agent, accounts);
      const req = request('hana');
      const { ref } = await first.start(req, ctx());
      const pid = ref.pid as number;
      const entry = spawnSync('getent', ['passwd', `${prefix}hana`], { encoding: 'utf8' });
      const uid = Number(entry.stdout.split(':')[2]);
      assert.ok(uid > 0, 'the account was created');
      assert.equal(uidOf(pid), uid, 'the server runs as the account');
      assert.doesNotMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /allow-root/);
      const seen = JSON.parse(readFileSync(env.FAKE_AGENT_OUT, 'utf8')) as { pid: number };
      assert.equal(uidOf(seen.pid), uid, 'the agent runs as the account too');
      assert.equal(statSync(home).uid, uid);
      assert.equal(statSync(home).mode & 0o777, 0o700);

      await first.close({ stopInstances: false });
      const second = provisioner(env, 10, agent, accounts);
      assert.equal(await second.adopt(req.instanceId, ref), true, 'root reads the environment');
      await second.stop(req.instanceId, ref, ctx());
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(alive(pid), false);
      assert.equal(alive(seen.pid), false, 'the stop ended the whole group');
    });
  },
);
