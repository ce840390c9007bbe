/**
 * Local mode is honest about isolation (issue 9, section 6), on a real hub:
 * - NGSCI_LOCAL_ISOLATION=users (the service runs as root, as in CI and the image): each user's
 *   server and agent run as that user's own system account, which cannot read the service's
 *   environment (bridge secret, hub token) nor another user's home; a hub restart still adopts
 *   the server and a stop still ends it.
 * - NGSCI_LOCAL_ISOLATION=shared without the demo flag: a second user's launch is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { grantTraversal } from '../../hub-service/src/testing/traversal.js';
import { isAlive, ROOT, startStack, until, type Stack } from './stack.js';

interface Inst {
  id: string;
  state: string;
}

const isRoot = process.getuid?.() === 0;
const PREFIX = `it${process.pid % 10000}-`;

async function launch(stack: Stack, token: string): Promise<Response> {
  return stack.api('/instances', token, {
    method: 'POST',
    body: JSON.stringify({ size: 'cpu-small' }),
  });
}

async function running(stack: Stack, token: string): Promise<Inst> {
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

/** uid and gid of a process, from /proc. */
function idsOf(pid: number): { uid: number; gid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]);
  return { uid: field('Uid'), gid: field('Gid') };
}

/** Every process in a process group (the server, its kernels, the agent). */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Runs a command as the given account, as code in that user's kernel would run. */
function asAccount(ids: { uid: number; gid: number }, cmd: string[]) {
  return spawnSync(
    'setpriv',
    [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', ...cmd],
    { encoding: 'utf8' },
  );
}

function servicePid(stack: Stack): number | null {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('hub-service/dist/index.js'))
        continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.some((e) => e.startsWith('NGSCI_DATA_DIR=') && e.endsWith(stack.dataDir)))
        return Number(d);
    } catch {
      // gone
    }
  }
  return null;
}

/**
 * The accounts must reach the venv's Python; on this machine it may live under /root (0700).
 * Grant traversal (o+x, never read) on exactly the directories in the way, restored afterwards.
 */
function removeAccounts() {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const name = line.split(':')[0];
    if (name?.startsWith(PREFIX)) spawnSync('userdel', [name]);
  }
}

describe(
  'users isolation: each user their own system account',
  { skip: !isRoot && 'needs root' },
  () => {
    let stack: Stack;
    let restore = () => {};

    before(async () => {
      restore = grantTraversal([
        realpathSync(join(ROOT, '.venv', 'bin', 'python3')),
        join(ROOT, '.venv', 'bin', 'jupyterhub-singleuser'),
        join(ROOT, 'cli', 'dist', 'index.js'),
      ]);
      stack = await startStack({
        database: 'pglite',
        env: { NGSCI_LOCAL_ISOLATION: 'users', NGSCI_LOCAL_USER_PREFIX: PREFIX },
      });
    });
    after(async () => {
      await stack?.stop();
      removeAccounts();
      restore();
    });

    test("the researcher's server runs as its own account that cannot read the service's environment nor the admin's home", async () => {
      const researcher = await stack.userToken('researcher');
      const admin = await stack.userToken('admin');
      const me = (await (await stack.api('/me', researcher)).json()) as { localIsolation: unknown };
      assert.deepEqual(me.localIsolation, { mode: 'users', sharedDemo: false });

      assert.equal((await launch(stack, researcher)).status, 202);
      assert.equal((await launch(stack, admin)).status, 202, 'two users may share the machine');
      const inst = await running(stack, researcher);
      await running(stack, admin);

      const serverPid = stack.pidOf(inst.id)!;
      const ids = idsOf(serverPid);
      const passwd = spawnSync('getent', ['passwd', `${PREFIX}researcher`], { encoding: 'utf8' });
      assert.equal(passwd.status, 0, `the account ${PREFIX}researcher exists`);
      assert.equal(Number(passwd.stdout.split(':')[2]), ids.uid, 'the server runs as that account');
      assert.notEqual(ids.uid, 0);
      // the agent and everything else in the server's group runs as the account too
      const members = groupMembers(serverPid);
      assert.ok(members.length >= 2, `the server and its agent (group ${members.join(',')})`);
      for (const pid of members) assert.equal(idsOf(pid).uid, ids.uid, `process ${pid}`);

      const homes = join(stack.dataDir, 'homes');
      // a control: the account reads its own home, so the refusals below are about rights
      const own = asAccount(ids, ['ls', join(homes, 'researcher')]);
      assert.equal(own.status, 0, own.stderr);
      assert.equal(statSync(join(homes, 'researcher')).mode & 0o777, 0o700);

      const service = servicePid(stack);
      assert.ok(service, 'found the service process');
      const environ = asAccount(ids, ['cat', `/proc/${service}/environ`]);
      assert.notEqual(environ.status, 0);
      assert.match(environ.stderr, /Permission denied/);
      assert.doesNotMatch(environ.stdout, /NGSCI_BRIDGE_SECRET|JUPYTERHUB_API_TOKEN/);

      const adminHome = asAccount(ids, ['ls', join(homes, 'admin')]);
      assert.notEqual(adminHome.status, 0);
      assert.match(adminHome.stderr, /Permission denied/);
      for (const secret of ['local-login.json', 'stack.log', 'pglite', 'hub', 'run']) {
        const r = asAccount(ids, ['cat', join(stack.dataDir, secret)]);
        assert.notEqual(r.status, 0, `${secret} is not readable by the account`);
      }
      const list = asAccount(ids, ['ls', homes]);
      assert.notEqual(list.status, 0, 'the homes dir cannot be listed');

      // a hub restart: the new service (root) adopts the server by its environment...
      const oldService = service;
      process.kill(stack.pid, 'SIGUSR2');
      await until(
        async () => {
          const p = servicePid(stack);
          return (
            p &&
            p !== oldService &&
            (await fetch(`${stack.url}/services/ngsci/health`)).ok &&
            (await fetch(`${stack.url}/hub/api/`)).ok
          );
        },
        'the hub and the service to come back',
        90,
        stack,
      );
      await until(
        async () => stack.logTail(400).includes('adopted a running local instance'),
        'the new service to adopt the server',
        30,
        stack,
      );
      assert.ok(isAlive(serverPid), 'the same process outlived the restart');
      // ...and its stop ends the whole group
      const stop = await stack.api('/instances/default/stop', researcher, { method: 'POST' });
      assert.ok(stop.ok, await stop.text());
      await until(async () => members.every((p) => !isAlive(p)), 'the group to end', 30, stack);
    });
  },
);

describe('shared isolation without the demo flag: one user at most', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      database: 'pglite',
      env: { NGSCI_LOCAL_ISOLATION: 'shared', NGSCI_LOCAL_SHARED_DEMO: 'false' },
    });
  });
  after(async () => stack?.stop());

  test("a second user's launch gets 403 local_single_user and nothing starts", async () => {
    assert.deepEqual(stack.localIsolation, { mode: 'shared', sharedDemo: false });
    assert.notEqual(stack.passwords.researcher, stack.passwords.admin, 'each user their own');
    const researcher = await stack.userToken('researcher');
    const admin = await stack.userToken('admin');
    assert.equal((await launch(stack, researcher)).status, 202);
    await running(stack, researcher);

    const res = await launch(stack, admin);
    assert.equal(res.status, 403);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'local_single_user');
    assert.match(body.message, /NGSCI_LOCAL_ISOLATION/);
    const server = (await (await stack.hub('/users/admin')).json()) as {
      servers: Record<string, unknown>;
    };
    assert.deepEqual(server.servers, {}, 'the hub was never asked to start a server');
    const me = (await (await stack.api('/me', admin)).json()) as { localIsolation: unknown };
    assert.deepEqual(me.localIsolation, { mode: 'shared', sharedDemo: false });
  });
});
